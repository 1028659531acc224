"""``sysflow status``, ``approve``, ``pause``, ``resume`` and ``cancel``: read and steer runs through
the run store.

The run store (:mod:`sysflow.engine.store`) is the one place every process can see, so controls
are rows in it: an approval of wave N is the store's ``(wave N-1, "approval")`` gate (the same row a
run records when it is approved, so a resumed run sees it too), a cancel is ``(-1, "cancel")``, and
pauses and resumes are ``(n, "pause")`` / ``(n, "resume")`` with ``n`` counting them in order. A
live ``sysflow run`` polls for them (:func:`sysflow.cli.run.poll_controls`, :func:`apply_control`).
A run whose process is gone is cancelled in the store directly.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Set
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sysflow.engine.result import OpRecord
from sysflow.engine.states import OpState, RunStatus
from sysflow.engine.store import RunRow, pid_alive
from sysflow.errors import StoreError

if TYPE_CHECKING:
    from sysflow.engine.run import Run

__all__ = [
    "CANCEL",
    "ControlError",
    "RunView",
    "apply_control",
    "approve_run",
    "cancel_run",
    "controlled_elsewhere",
    "operator_name",
    "pause_run",
    "pending_controls",
    "resume_run",
    "run_log_lines",
    "run_status_lines",
    "run_views",
    "status_lines",
    "views_json",
]

APPROVAL = "approval"
CANCEL = "cancel"
CANCEL_WAVE = -1
PAUSE = "pause"
RESUME = "resume"


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

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "workflow": self.workflow,
            "status": self.status,
            "created": self.created,
            "updated": self.updated,
            "reason": self.reason,
            "wave": self.wave + 1,
            "ops": dict(sorted(self.ops.items())),
            "controller_alive": self.alive,
        }

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
            reason = row.reason
            if row.status is RunStatus.PAUSED and (paused := _paused_by(store.gates(row.id))):
                reason = f"paused by operator ({paused})"
            views.append(RunView(row.id, row.workflow, row.status.value, row.created, row.updated,
                                 reason, row.wave, counts, alive))  # fmt: skip
        return views


def status_lines(views: Iterable[RunView]) -> list[str]:
    lines = [v.line() for v in views]
    return lines or ["no runs"]


def views_json(views: Iterable[RunView]) -> str:
    """Every run as JSON (``sysflow status --json``)."""
    return json.dumps({"runs": [v.to_dict() for v in views]}, indent=2)


def _stored(state: Path, run_id: str) -> tuple[RunRow, dict[str, OpRecord]]:
    """A run's row and operation records, read-only for the operator's purposes."""
    from sysflow.engine.store import RunStore

    if not state.exists():  # never create a store where the operator mistyped its path
        raise ControlError(f"no run store at {state}", missing=True)
    with RunStore(state) as store:
        try:
            row = store.run(run_id)
        except StoreError:
            raise ControlError(f"no run {run_id!r} in {state}", missing=True) from None
        return row, store.ops(run_id)


def _task_order(row: RunRow) -> list[str]:
    try:
        tasks = json.loads(row.workflow_json).get("tasks", [])
        return [str(t["id"]) for t in tasks if isinstance(t, dict) and "id" in t]
    except (ValueError, AttributeError, TypeError):
        return []


def _rolled_back_waves(row: RunRow) -> range:
    """The waves a rolled-back run rolled back: the failed one, or all up to it (``rollback_scope: all``)."""
    if row.status is not RunStatus.ROLLED_BACK or row.failed_wave is None:
        return range(0)
    try:
        scope = json.loads(row.workflow_json).get("rollout", {}).get("rollback_scope", "failed_wave")
    except (ValueError, AttributeError):
        scope = "failed_wave"
    return range(row.failed_wave + 1) if scope == "all" else range(row.failed_wave, row.failed_wave + 1)


def _host_of(run_id: str, hosts: Iterable[str], wanted: str) -> str:
    """``wanted`` exactly, else the one host it starts (``web01`` for ``web01.example.com``)."""
    names = sorted(set(hosts))
    if wanted in names:
        return wanted
    found = [h for h in names if h.startswith(wanted)]
    if len(found) == 1:
        return found[0]
    if found:
        shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
        raise ControlError(f"{wanted!r} matches {len(found)} hosts of run {run_id}: {shown}", missing=True)
    raise ControlError(f"no host {wanted!r} in run {run_id}", missing=True)


def run_status_lines(
    state: Path, run_id: str, *, failed: bool = False, host: str | None = None, as_json: bool = False
) -> list[str]:
    """``sysflow status RUN``: the run's line, then its hosts per wave (``failed``: only the failed
    ones), or one ``host``'s operations; ``as_json``: the same as one JSON document."""
    from sysflow.cli.views import (
        host_op_lines,
        host_ops_json,
        host_table,
        host_views,
        ordered_ops,
        plural,
        tidy,
        views_json,
    )

    view = run_views(state, run_id)[0]
    row, ops = _stored(state, run_id)
    head = [view.line()] + ([f"  reason: {tidy(view.reason)}"] if view.reason else [])
    if host is not None:
        name = _host_of(run_id, (r.host for r in ops.values()), host)
        records = ordered_ops((r for r in ops.values() if r.host == name), _task_order(row))
        if as_json:
            return [host_ops_json(view.to_dict(), name, records)]
        return [*head, f"host {name}:", *host_op_lines(name, records)]
    views = host_views(
        ops, run_reason=row.reason, finished=view.finished, rolled_back_waves=_rolled_back_waves(row)
    )
    shown = [v for v in views if v.failed] if failed else views
    if as_json:
        return [views_json(view.to_dict(), shown)]
    if failed and not shown:
        return [*head, f"no failed hosts ({plural(len(views), 'host')})"]
    failed_count = sum(v.failed for v in views)
    hint = f"  failed: {failed_count} of {plural(len(views), 'host')}" if failed_count else ""
    return [*head, *([hint] if hint else []), *host_table(shown, views)]


def run_log_lines(
    state: Path,
    run_id: str,
    *,
    host: str | None = None,
    task: str | None = None,
    failed: bool = False,
    lines: int = 50,
) -> list[str]:
    """``sysflow logs RUN [HOST] [TASK]``: the stored output of each operation that ran."""
    from sysflow.cli.views import log_lines, natural_key, ordered_ops
    from sysflow.engine.store_schema import OUTPUT_KEEP

    row, ops = _stored(state, run_id)
    records = list(ops.values())
    if host is not None:
        name = _host_of(run_id, (r.host for r in records), host)
        records = [r for r in records if r.host == name]
    if task is not None:
        if task not in {r.task for r in ops.values()}:
            tasks = ", ".join(sorted({r.task for r in ops.values()}))
            raise ControlError(f"no task {task!r} in run {run_id} (tasks: {tasks})", missing=True)
        records = [r for r in records if r.task == task]
    ran = [r for r in records if r.start is not None or r.error or r.stdout or r.stderr]
    if failed:
        bad = (OpState.FAILED, OpState.UNKNOWN)
        ran = [r for r in ran if r.state in bad or r.error or r.exit_status not in (None, 0)]
    if not ran:
        what = " ".join(x for x in (host, task) if x)
        return [
            f"no {'failed ' if failed else ''}operations ran in run {run_id}{' for ' + what if what else ''}"
        ]
    order = _task_order(row)
    by_host: dict[str, list[OpRecord]] = {}
    for r in ran:
        by_host.setdefault(r.host, []).append(r)
    hosts = sorted(by_host, key=lambda h: (min(r.wave for r in by_host[h]), natural_key(h)))
    chosen = [r for h in hosts for r in ordered_ops(by_host[h], order)]
    return log_lines(chosen, lines=lines, keep=OUTPUT_KEEP)


def controller_alive(row: RunRow) -> bool:
    """Whether the run's controller lives: its owner (host, pid, start, heartbeat) when it has one,
    so a controller on another machine sharing the store counts; else the last pid that wrote it."""
    from sysflow.engine.store import DEFAULT_OWNER_TTL, owner_alive

    if row.owner is not None:
        return owner_alive(row.owner, row.heartbeat, now=time.time(), ttl=DEFAULT_OWNER_TTL)
    return pid_alive(row.pid)


def controlled_elsewhere(state: Path, run_id: str) -> bool:
    """Whether another live process (not this one) runs ``run_id``: it takes controls, not a takeover."""
    _, pid = _live_row(state, run_id)
    return pid is not None and pid != os.getpid()


def _live_row(state: Path, run_id: str) -> tuple[RunStatus, int | None]:
    row, _ = _stored(state, run_id)
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
    """Approval, cancel, pause and resume rows of a run not in ``seen``, as ``(wave, kind)``."""
    try:
        db = _open(state)
    except ControlError:
        return []
    try:
        rows = db.execute(
            "SELECT wave, kind FROM gates WHERE run_id=? AND kind IN (?, ?, ?, ?) AND passed=1 ORDER BY wave, kind",
            (run_id, APPROVAL, CANCEL, PAUSE, RESUME),
        ).fetchall()
    except sqlite3.Error:
        return []
    finally:
        db.close()
    return [(int(w), str(k)) for w, k in rows if (int(w), str(k)) not in seen]


def _steering(gates: dict[tuple[int, str], tuple[bool | None, list[str]]]) -> list[tuple[int, str, str]]:
    """Pause and resume rows in the order they were written: ``(n, kind, who)``."""
    rows = [
        (w, k, (r[0] if r else "").split(" by ", 1)[-1])
        for (w, k), (_, r) in gates.items()
        if k in (PAUSE, RESUME)
    ]
    return sorted(rows)


def _paused_by(gates: dict[tuple[int, str], tuple[bool | None, list[str]]]) -> str | None:
    """Who paused the run, when its latest pause or resume row is a pause."""
    rows = _steering(gates)
    return rows[-1][2] if rows and rows[-1][1] == PAUSE else None


def _steer(state: Path, run_id: str, kind: str, who: str) -> None:
    from sysflow.engine.store import RunStore

    with RunStore(state) as store:
        seq = len(_steering(store.gates(run_id)))
        store.gate(run_id, seq, kind, True, [f"{kind}d by {who}"], at=_now())


def pause_run(state: Path, run_id: str, who: str) -> str:
    """Ask a live run to pause: nothing new starts, running operations finish."""
    row, _ = _stored(state, run_id)
    if row.status.finished:
        raise ControlError(f"run {run_id} already {row.status.value}")
    if not controller_alive(row):
        raise ControlError(
            f"run {run_id} has no live process to pause (sysflow resume {run_id} continues it)"
        )
    from sysflow.engine.store import RunStore

    with RunStore(state) as store:
        if _paused_by(store.gates(run_id)):
            raise ControlError(f"run {run_id} is already paused (sysflow resume {run_id})")
    _steer(state, run_id, PAUSE, who)
    return f"run {run_id}: pause requested (running operations finish, nothing new starts)"


def resume_run(state: Path, run_id: str, who: str) -> str:
    """Ask a live run that an operator paused to continue."""
    from sysflow.engine.store import RunStore

    row, _ = _stored(state, run_id)
    if row.status.finished:
        raise ControlError(f"run {run_id} already {row.status.value}")
    with RunStore(state) as store:
        steering = _steering(store.gates(run_id))
    paused = steering[-1][2] if steering and steering[-1][1] == PAUSE else None
    if not paused and steering and row.status is RunStatus.PAUSED:
        raise ControlError(f"run {run_id}: a resume is already requested (the run reads it within seconds)")
    if not paused and row.owner is not None:  # name who runs it, as a crash-resume refusal does
        from sysflow.engine.owners import owned_error

        owned = owned_error(run_id, row.owner, row.heartbeat)
        raise ControlError(f"{owned}; it is {row.status.value}, not paused by an operator: nothing to resume")
    if not paused:
        raise ControlError(
            f"run {run_id} is {row.status.value}, not paused by an operator: nothing to resume"
        )
    _steer(state, run_id, RESUME, who)
    return f"run {run_id}: resume requested (paused by {paused})"


def _who_of(state: Path, run_id: str, wave: int, kind: str) -> str:
    from sysflow.engine.store import RunStore

    try:
        with RunStore(state) as store:
            reasons = store.gates(run_id).get((wave, kind), (None, []))[1]
    except (StoreError, sqlite3.Error):
        return "unknown"
    return reasons[0].split(" by ", 1)[-1] if reasons else "unknown"


def apply_control(run: Run, state: Path, wave: int, kind: str) -> None:
    """Apply one control row to the live ``run``; the operator's name goes into the run's events."""
    if kind == APPROVAL:
        run.approve(wave + 1)
        return
    who = _who_of(state, run.id, wave, kind)
    if kind == CANCEL:
        run.cancel(f"cancelled by operator ({who})")
    elif kind == PAUSE:
        run.pause(f"paused by operator ({who})")
    elif kind == RESUME:
        run.resume(f"resumed by operator ({who})")


def operator_name() -> str:
    """Who steers a run from this shell, as the store and the audit log name them."""
    from sysflow.audit.log import _local_user

    return os.environ.get("SYSFLOW_USER") or _local_user()
