"""Schedules in the run store: ``Schedules(store).add/list/get/pause/resume/remove``, claims, history.

Everything goes through :meth:`RunStore.immediate` (``BEGIN IMMEDIATE``): each call sees what every
other process committed, and a claim is one ``INSERT`` on the unique key (schedule, occurrence), so
two schedulers sharing a store can never both take the same occurrence.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sysflow.clock import utc
from sysflow.engine.store import RunStore
from sysflow.errors import StoreError
from sysflow.model.inventory import Inventory
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.schedule.model import (
    Claim,
    ClaimState,
    HistoryEntry,
    Schedule,
    ScheduleSpec,
    ScheduleState,
)
from sysflow.schedule.recurrence import occurrences

__all__ = ["Schedules"]

_HORIZON_CHECK_DAYS = 400  # a new schedule must fire at least once in this many days

# aliases: inside the class, ``list`` is the method
_Rows = list[tuple[Any, ...]]
_Claims = list[Claim]
_Entries = list[HistoryEntry]
_All = list[Schedule]
_NO_ARGS: tuple[Any, ...] = ()


class Schedules:
    """The schedules of one run store."""

    def __init__(self, store: RunStore) -> None:
        self.store = store

    # -- definitions ------------------------------------------------------------------------------

    def add(
        self,
        spec: ScheduleSpec,
        workflow: MaintenanceWorkflow,
        inventory: Inventory,
        *,
        now: datetime,
        replace: bool = False,
    ) -> Schedule:
        """Store a schedule; it fires for occurrences after ``now``. Refuses a name in use unless ``replace``."""
        _check_fires(spec, workflow, now)
        row = (
            spec.name,
            spec.model_dump_json(),
            workflow.to_json(),  # indented: the loader reads one-line text as a path
            inventory.model_dump_json(),
            ScheduleState.ACTIVE.value,
            utc(now).isoformat(),
            utc(now).isoformat(),
        )
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        with self.store.immediate() as db:
            try:
                db.execute(f"{verb} INTO schedules VALUES (?,?,?,?,?,?,?)", row)
            except sqlite3.IntegrityError:
                raise StoreError(
                    f"a schedule named {spec.name!r} exists (remove it, or replace it)"
                ) from None
        return self.get(spec.name)

    def get(self, name: str) -> Schedule:
        rows = self._select("SELECT * FROM schedules WHERE name=?", (name,))
        if not rows:
            raise StoreError(f"no schedule named {name!r}")
        return _schedule(rows[0])

    def list(self) -> _All:
        return [_schedule(r) for r in self._select("SELECT * FROM schedules ORDER BY name")]

    def pause(self, name: str) -> Schedule:
        return self._set_state(name, ScheduleState.PAUSED)

    def resume(self, name: str, *, now: datetime | None = None) -> Schedule:
        """Make a paused schedule fire again; with ``now``, what passed while paused is not missed."""
        self._set_state(name, ScheduleState.ACTIVE)
        if now is not None:
            self.advance(name, now)
        return self.get(name)

    def remove(self, name: str) -> None:
        """Forget a schedule and its pending claims; its history stays."""
        with self.store.immediate() as db:
            if db.execute("DELETE FROM schedules WHERE name=?", (name,)).rowcount == 0:
                raise StoreError(f"no schedule named {name!r}")
            db.execute(
                "DELETE FROM schedule_claims WHERE schedule=? AND state=?", (name, ClaimState.POSTPONED)
            )

    def _set_state(self, name: str, state: ScheduleState) -> Schedule:
        with self.store.immediate() as db:
            if db.execute("UPDATE schedules SET state=? WHERE name=?", (state.value, name)).rowcount == 0:
                raise StoreError(f"no schedule named {name!r}")
        return self.get(name)

    def advance(self, name: str, cursor: datetime) -> None:
        """Mark every occurrence up to ``cursor`` handled (never moves the cursor back)."""
        with self.store.immediate() as db:
            db.execute(
                "UPDATE schedules SET cursor=? WHERE name=? AND cursor<?",
                (utc(cursor).isoformat(), name, utc(cursor).isoformat()),
            )

    # -- claims -----------------------------------------------------------------------------------

    def claim(
        self, name: str, occurrence: datetime, *, state: ClaimState, due: datetime, owner: str, at: datetime
    ) -> bool:
        """Take ``occurrence`` of schedule ``name``: True for the one caller that inserted the claim."""
        row = (
            name,
            utc(occurrence).isoformat(),
            state.value,
            utc(due).isoformat(),
            owner,
            utc(at).isoformat(),
        )
        with self.store.immediate() as db:
            try:
                db.execute("INSERT INTO schedule_claims VALUES (?,?,?,?,?,?,NULL)", row)
            except sqlite3.IntegrityError:
                return False
        return True

    def take_postponed(self, name: str, occurrence: datetime, *, owner: str) -> bool:
        """Move a postponed claim to starting: True for the one caller that did."""
        with self.store.immediate() as db:
            cur = db.execute(
                "UPDATE schedule_claims SET state=?, owner=? WHERE schedule=? AND occurrence=? AND state=?",
                (ClaimState.STARTING, owner, name, utc(occurrence).isoformat(), ClaimState.POSTPONED),
            )
            return cur.rowcount == 1

    def set_claim(
        self, name: str, occurrence: datetime, state: ClaimState, *, run_id: str | None = None
    ) -> None:
        with self.store.immediate() as db:
            db.execute(
                "UPDATE schedule_claims SET state=?, run_id=COALESCE(?, run_id) WHERE schedule=? AND occurrence=?",
                (state.value, run_id, name, utc(occurrence).isoformat()),
            )

    def claims(self, name: str | None = None, *, state: ClaimState | None = None) -> _Claims:
        sql, args = "SELECT * FROM schedule_claims WHERE 1=1", _NO_ARGS
        if name is not None:
            sql, args = sql + " AND schedule=?", (*args, name)
        if state is not None:
            sql, args = sql + " AND state=?", (*args, state.value)
        return [_claim(r) for r in self._select(sql + " ORDER BY occurrence", args)]

    # -- history ----------------------------------------------------------------------------------

    def record(
        self,
        name: str,
        occurrence: datetime,
        event: str,
        *,
        at: datetime,
        run_id: str | None = None,
        detail: str = "",
    ) -> None:
        row = (name, utc(occurrence).isoformat(), utc(at).isoformat(), event, run_id, detail)
        with self.store.immediate() as db:
            db.execute(
                "INSERT INTO schedule_history (schedule, occurrence, at, event, run_id, detail) VALUES (?,?,?,?,?,?)",
                row,
            )

    def history(self, name: str) -> _Entries:
        rows = self._select(
            "SELECT schedule, occurrence, at, event, run_id, detail FROM schedule_history"
            " WHERE schedule=? ORDER BY id",
            (name,),
        )
        return [
            HistoryEntry(str(s), _dt(o), _dt(a), str(e), None if r is None else str(r), str(d))
            for s, o, a, e, r, d in rows
        ]

    def _select(self, sql: str, args: Sequence[Any] = ()) -> _Rows:
        with self.store.immediate() as db:
            return list(db.execute(sql, args).fetchall())


def _check_fires(spec: ScheduleSpec, workflow: MaintenanceWorkflow, now: datetime) -> None:
    from datetime import timedelta

    found = occurrences(spec.recurrence, workflow.windows, now, now + timedelta(days=_HORIZON_CHECK_DAYS))
    if not found:
        raise StoreError(
            f"schedule {spec.name!r} ({spec.recurrence.describe()}) never fires in the next "
            f"{_HORIZON_CHECK_DAYS} days"
        )


def _dt(text: Any) -> datetime:
    return datetime.fromisoformat(str(text))


def _schedule(row: Sequence[Any]) -> Schedule:
    _name, spec, wf, inv, state, cursor, created = row
    return Schedule(
        ScheduleSpec.model_validate_json(spec),
        str(wf),
        str(inv),
        ScheduleState(state),
        _dt(cursor),
        _dt(created),
    )


def _claim(row: Sequence[Any]) -> Claim:
    name, occ, state, due, owner, _claimed, run_id = row
    return Claim(
        str(name), _dt(occ), ClaimState(state), _dt(due), str(owner), None if run_id is None else str(run_id)
    )
