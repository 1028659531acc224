"""The run store: every state change of a run, in SQLite, written before it is acted on.

One file per machine and user by default (:func:`default_store_path`), in WAL mode: runs (with the
workflow and inventory they ran, so ``resume`` needs nothing else, and the controller that owns
them), plan versions, operations and their states, gate verdicts and approvals, learned durations,
and host leases. The schema carries a version (``PRAGMA user_version``) and migrations run forward
on open. Controllers on several machines share leases and ownership by sharing one store file.

Ownership: a run is owned by one live controller process (host name, pid, process start time from
``/proc/<pid>/stat`` so a reused pid is not mistaken for it, and a heartbeat it refreshes while the
run executes). :meth:`RunStore.claim_run` takes a run over only when its owner is gone (same host,
process not alive or started at another time) or silent (heartbeat older than the TTL), else it
raises ``RunOwned`` naming the owner. The write-ahead record of every operation is *fenced*: it is
written only while this process still owns the run, inside the transaction that makes it durable,
so a controller that lost its run to a takeover never sends another command.

Write-ahead: the engine records an operation as *running* before its command is sent. Writes made in
the same event-loop tick share one commit (:meth:`RunStore.commit`), so the cost per operation stays
small while nothing is acted on before it is durable against a crash of the process.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sysflow.engine.owners import (
    DEFAULT_OWNER_TTL,
    Owner,
    owned_error,
    owner_alive,
    owner_values,
    pid_alive,
    process_start,
)
from sysflow.engine.result import OpRecord
from sysflow.engine.states import OpState, RunStatus
from sysflow.engine.store_file import STORE_ENV, default_store_path
from sysflow.engine.store_leases import LeaseTable
from sysflow.engine.store_ownership import OwnershipTable
from sysflow.engine.store_schema import (
    OUTPUT_KEEP,
    RUN_COLUMNS,
    SCHEMA_VERSION,
    RunRow,
    op_record,
    run_row,
)
from sysflow.errors import StoreError

__all__ = [
    "DEFAULT_OWNER_TTL",
    "SCHEMA_VERSION",
    "STORE_ENV",
    "Owner",
    "RunRow",
    "RunStore",
    "default_store_path",
    "owner_alive",
    "pid_alive",
    "process_start",
]


class RunStore(OwnershipTable, LeaseTable):
    """Runs, operations, gates, plans, durations and leases in one SQLite file (or ``:memory:``)."""

    # -- runs -------------------------------------------------------------------------------------

    def create_run(
        self,
        run_id: str,
        workflow: str,
        workflow_json: str,
        inventory_json: str,
        ops: Iterable[OpRecord],
        *,
        at: datetime,
        options: Mapping[str, Any] | None = None,
        owner: Owner | None = None,
    ) -> None:
        """Record a new run and all its operations (pending), durably; ``owner`` owns it from here.

        A run id already in the store is refused: ``RunOwned`` while a live controller owns it,
        else ``StoreError`` (continue it with ``resume``)."""
        now = at.isoformat()
        with self._lock:
            self.commit()
            row = self._db.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE id=?", (run_id,)).fetchone()
            if row is not None:
                found = run_row(row)
                if found.owner is not None and owner_alive(
                    found.owner, found.heartbeat, now=time.time(), ttl=DEFAULT_OWNER_TTL
                ):
                    raise owned_error(run_id, found.owner, found.heartbeat)
                raise StoreError(f"run {run_id!r} is already in {self.path}: resume it instead")
        self._write(
            "INSERT INTO runs (id, workflow, workflow_json, inventory_json, status, created, updated, pid,"
            " options_json, owner_host, owner_pid, owner_start, owner_token, owner_since, heartbeat)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                run_id,
                workflow,
                workflow_json,
                inventory_json,
                RunStatus.PENDING.value,
                now,
                now,
                os.getpid(),
                json.dumps(dict(options or {})),
                *(owner_values(owner) if owner is not None else (None,) * 5),
                time.time() if owner is not None else None,
            ),
        )
        if owner is not None:
            self._claims[run_id] = owner.token
        self._writemany(
            "INSERT INTO ops (run_id, op_id, host, task, wave, state, command) VALUES (?,?,?,?,?,?,?)",
            ((run_id, r.op_id, r.host, r.task, r.wave, r.state.value, r.command) for r in ops),
        )
        self.commit()

    def set_status(self, run_id: str, status: RunStatus, *, at: datetime, reason: str = "") -> None:
        """The run's status; a controller that lost the run to a takeover writes nothing."""
        token = self._claims.get(run_id)
        self._write(
            "UPDATE runs SET status=?, updated=?, reason=CASE WHEN ?='' THEN reason ELSE ? END, pid=? WHERE id=?"
            + (" AND owner_token=?" if token is not None else ""),
            (status.value, at.isoformat(), reason, reason, os.getpid(), run_id)
            + ((token,) if token is not None else ()),
        )
        self.commit()

    def set_position(
        self, run_id: str, wave: int, *, failed_wave: int | None = None, reason: str = ""
    ) -> None:
        self._write(
            "UPDATE runs SET wave=?, failed_wave=COALESCE(?, failed_wave),"
            " reason=CASE WHEN ?='' THEN reason ELSE ? END WHERE id=?",
            (wave, failed_wave, reason, reason, run_id),
        )

    def run(self, run_id: str) -> RunRow:
        row = self._db.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            raise StoreError(f"no run {run_id!r} in {self.path}")
        return run_row(row)

    def runs(self, *, status: RunStatus | None = None) -> list[RunRow]:
        sql = f"SELECT {RUN_COLUMNS} FROM runs" + (" WHERE status=?" if status else "") + " ORDER BY created"
        return [run_row(r) for r in self._db.execute(sql, (status.value,) if status else ())]

    # -- operations -------------------------------------------------------------------------------

    def add_op(self, run_id: str, record: OpRecord) -> None:
        """An operation created while running (an ``on_failure`` branch task): pending until started."""
        self._write(
            "INSERT OR IGNORE INTO ops (run_id, op_id, host, task, wave, state, command) VALUES (?,?,?,?,?,?,?)",
            (run_id, record.op_id, record.host, record.task, record.wave, record.state.value, record.command),
        )

    def op_started(self, run_id: str, op_id: str, *, at: datetime, attempt: int, command: str) -> None:
        """Write-ahead: the operation is running (commit before the command is sent)."""
        token = self._claims.get(run_id)
        with self._lock:
            self._records.pop((run_id, op_id), None)  # this newer state supersedes a buffered one
            self._begin()  # the write lock is held from here to the commit: the fence cannot go stale
            cur = self._db.execute(
                "UPDATE ops SET state=?, start=?, attempts=?, command=? WHERE run_id=? AND op_id=?"
                + (" AND EXISTS (SELECT 1 FROM runs WHERE id=? AND owner_token=?)" if token else ""),
                (OpState.RUNNING.value, at.isoformat(), attempt, command, run_id, op_id)
                + ((run_id, token) if token else ()),
            )
            if token:
                self._fence(run_id, cur)

    def op_record(self, run_id: str, record: OpRecord) -> None:
        """The operation's record as it is now (finished, skipped, rolled back, unknown).

        Buffered: written with the next commit, which comes before anything acts on it (the next
        operation's write-ahead, a status change, the end of the run).
        """
        with self._lock:
            self._records[(run_id, record.op_id)] = (
                record.state.value,
                record.start.isoformat() if record.start else None,
                record.end.isoformat() if record.end else None,
                record.exit_status,
                record.error,
                record.stdout[:OUTPUT_KEEP],
                record.stderr[:OUTPUT_KEEP],
                record.attempts,
                record.reason,
                record.command,
                run_id,
                record.op_id,
            )

    def ops(self, run_id: str) -> dict[str, OpRecord]:
        self.commit()
        rows = self._db.execute(
            "SELECT op_id, host, task, wave, state, command, start, end, exit_status, error, stdout, stderr,"
            " attempts, reason FROM ops WHERE run_id=?",
            (run_id,),
        )
        return {r[0]: op_record(r) for r in rows}

    # -- gates, approvals, plans, durations -------------------------------------------------------

    def gate(
        self, run_id: str, wave: int, kind: str, passed: bool | None, reasons: Sequence[str], *, at: datetime
    ) -> None:
        """A gate verdict or an approval (``kind``) for ``wave``."""
        self._write(
            "INSERT OR REPLACE INTO gates VALUES (?,?,?,?,?,?)",
            (
                run_id,
                wave,
                kind,
                None if passed is None else int(passed),
                json.dumps(list(reasons)),
                at.isoformat(),
            ),
        )
        self.commit()

    def gates(self, run_id: str) -> dict[tuple[int, str], tuple[bool | None, list[str]]]:
        rows = self._db.execute("SELECT wave, kind, passed, reasons FROM gates WHERE run_id=?", (run_id,))
        return {(w, k): (None if p is None else bool(p), json.loads(r)) for w, k, p, r in rows}

    def add_plan(self, run_id: str, plan_json: str, reason: str, *, at: datetime) -> int:
        """Record a plan version; returns its number (1 for the first)."""
        with self._lock:
            row = self._db.execute("SELECT MAX(version) FROM plans WHERE run_id=?", (run_id,)).fetchone()
            version = int(row[0] or 0) + 1
            self._write(
                "INSERT INTO plans VALUES (?,?,?,?,?)", (run_id, version, at.isoformat(), reason, plan_json)
            )
        self.commit()
        return version

    def plans(self, run_id: str) -> list[tuple[int, str, str]]:
        """(version, reason, plan JSON) of every plan of a run."""
        rows = self._db.execute(
            "SELECT version, reason, plan_json FROM plans WHERE run_id=? ORDER BY version", (run_id,)
        )
        return [(int(v), str(r), str(p)) for v, r, p in rows]

    def save_durations(self, name: str, model_json: str, *, at: datetime) -> None:
        self._write("INSERT OR REPLACE INTO durations VALUES (?,?,?)", (name, model_json, at.isoformat()))
        self.commit()

    def load_durations(self, name: str) -> str | None:
        row = self._db.execute("SELECT model_json FROM durations WHERE name=?", (name,)).fetchone()
        return None if row is None else str(row[0])
