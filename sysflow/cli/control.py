"""``sysflow status``, ``approve`` and ``cancel``: read and steer runs through the run store.

The run store (:mod:`sysflow.engine.store`) is the one place every process can see, so controls
are rows in it: an approval of wave N is the store's ``(wave N-1, "approval")`` gate (the same row a
run records when it is approved, so a resumed run sees it too), a cancel is ``(-1, "cancel")``. A
live ``sysflow run`` polls for them (:func:`sysflow.cli.run.poll_controls`). A run whose process is
gone is cancelled in the store directly.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Set
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sysflow.engine.states import RunStatus
from sysflow.engine.store import RunRow, pid_alive
from sysflow.errors import StoreError

__all__ = [
    "CANCEL",
    "ControlError",
    "RunView",
    "approve_run",
    "cancel_run",
    "pending_controls",
    "run_views",
    "status_lines",
]

APPROVAL = "approval"
CANCEL = "cancel"
CANCEL_WAVE = -1


class ControlError(StoreError):
    """A control that cannot apply: no such run (``missing``), or the run already finished."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


@dataclass(frozen=True, slots=True)
class RunView:
    """A run as ``sysflow status`` shows it."""

    id: str
    workflow: str
    status: str
    created: str
    updated: str
    reason: str
    wave: int
    ops: dict[str, int]
    alive: bool

    @property
    def finished(self) -> bool:
        return RunStatus(self.status).finished

    def line(self) -> str:
        done = ", ".join(f"{n} {s}" for s, n in sorted(self.ops.items()))
        note = "" if self.alive or self.finished else " (process gone: sysflow resume)"
        return f"{self.id}  {self.workflow}  {self.status}{note}  wave {self.wave + 1}  ops: {done}"


def _now() -> datetime:
    return datetime.now(UTC)


def _open(state: Path) -> sqlite3.Connection:
    """A short-lived autocommit connection: each read sees the latest commit of every process."""
    if not state.exists():
        raise ControlError(f"no run store at {state}", missing=True)
    return sqlite3.connect(state, isolation_level=None, timeout=30.0)


def run_views(state: Path, run_id: str | None = None) -> list[RunView]:
    """Runs in the store (one, or all in creation order) with their operation counts."""
    from sysflow.engine.store import RunStore

    if not state.exists():
        raise ControlError(f"no run store at {state}", missing=True)
    with RunStore(state) as store:
        try:
            rows = [store.run(run_id)] if run_id is not None else store.runs()
        except StoreError:
            raise ControlError(f"no run {run_id!r} in {state}", missing=True) from None
        views = []
        for row in rows:
            counts: dict[str, int] = {}
            for rec in store.ops(row.id).values():
                counts[rec.state.value] = counts.get(rec.state.value, 0) + 1
            alive = controller_alive(row)
            views.append(RunView(row.id, row.workflow, row.status.value, row.created, row.updated,
                                 row.reason, row.wave, counts, alive))  # fmt: skip
        return views


def status_lines(views: Iterable[RunView]) -> list[str]:
    lines = [v.line() for v in views]
    return lines or ["no runs"]


def controller_alive(row: RunRow) -> bool:
    """Whether the run's controller lives: its owner (host, pid, start, heartbeat) when it has one,
    so a controller on another machine sharing the store counts; else the last pid that wrote it."""
    from sysflow.engine.store import DEFAULT_OWNER_TTL, owner_alive

    if row.owner is not None:
        return owner_alive(row.owner, row.heartbeat, now=time.time(), ttl=DEFAULT_OWNER_TTL)
    return pid_alive(row.pid)


def _live_row(state: Path, run_id: str) -> tuple[RunStatus, int | None]:
    from sysflow.engine.store import RunStore

    if not state.exists():  # never create a store where the operator mistyped its path
        raise ControlError(f"no run store at {state}", missing=True)
    with RunStore(state) as store:
        try:
            row = store.run(run_id)
        except StoreError:
            raise ControlError(f"no run {run_id!r} in {state}", missing=True) from None
    if row.status.finished:
        raise ControlError(f"run {run_id} already {row.status.value}")
    return row.status, row.pid if controller_alive(row) else None


def _write_control(state: Path, run_id: str, wave: int, kind: str, reasons: list[str]) -> None:
    from sysflow.engine.store import RunStore

    with RunStore(state) as store:
        store.gate(run_id, wave, kind, True, reasons, at=_now())


def approve_run(state: Path, run_id: str, wave: int, who: str) -> str:
    """Approve the gate before ``wave`` (1-based) of a run that has not finished."""
    if wave < 1:
        raise ValueError(f"--wave must be 1 or more, not {wave}")
    _live_row(state, run_id)
    _write_control(state, run_id, wave - 1, APPROVAL, [f"approved by {who}"])
    return f"run {run_id}: wave {wave} approved"


def cancel_run(state: Path, run_id: str, who: str) -> str:
    """Cancel a run: a live one through its process, a stopped one in the store."""
    _, pid = _live_row(state, run_id)
    _write_control(state, run_id, CANCEL_WAVE, CANCEL, [f"cancelled by {who}"])
    if pid is not None and pid != os.getpid():  # its controller lives (here or on another machine)
        return f"run {run_id}: cancel requested (running operations finish, nothing new starts)"
    from sysflow.engine.store import RunStore

    with RunStore(state) as store:
        store.set_status(run_id, RunStatus.CANCELLED, at=_now(), reason=f"cancelled by {who}")
    return f"run {run_id}: cancelled"


def pending_controls(state: Path, run_id: str, seen: Set[tuple[int, str]]) -> list[tuple[int, str]]:
    """Approval and cancel rows of a run not in ``seen``, as ``(wave, kind)``."""
    try:
        db = _open(state)
    except ControlError:
        return []
    try:
        rows = db.execute(
            "SELECT wave, kind FROM gates WHERE run_id=? AND kind IN (?, ?) AND passed=1",
            (run_id, APPROVAL, CANCEL),
        ).fetchall()
    except sqlite3.Error:
        return []
    finally:
        db.close()
    return [(int(w), str(k)) for w, k in rows if (int(w), str(k)) not in seen]
