"""The mutable state of one run: operation states and records, host outcomes, failure counts.

Every change goes through :class:`RunTracker`, which also emits the matching event, so the run
store (write-ahead, through the run's :class:`~sysflow.engine.recorder.RunRecorder`) and observers
see the same sequence.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from sysflow.engine.events import Event, EventBus, EventKind
from sysflow.engine.result import HostOutcome, OpRecord
from sysflow.engine.states import OpState
from sysflow.planner.graph import OpGraph

if TYPE_CHECKING:
    from sysflow.engine.recorder import RunRecorder

__all__ = ["RunTracker"]


class RunTracker:
    """Operation records and host outcomes of one run, changed only through its methods."""

    def __init__(
        self,
        run_id: str,
        graph: OpGraph,
        bus: EventBus,
        now: Callable[[], datetime],
        *,
        recorder: RunRecorder | None = None,
        records: Mapping[str, OpRecord] | None = None,
    ) -> None:
        self.run_id = run_id
        self.graph = graph
        self.bus = bus
        self._now = now
        self.recorder = recorder  # writes the records to the run store (None: not stored)
        self.records: dict[str, OpRecord] = {
            op.id: OpRecord(op.id, op.host, op.task, op.wave, OpState.PENDING, command=op.command)
            for op in graph
        }
        self.records.update({k: v for k, v in (records or {}).items() if k in self.records})
        self.hosts: dict[str, HostOutcome] = dict.fromkeys(graph.hosts, HostOutcome.NOT_STARTED)
        self.failed_in_wave: dict[int, set[str]] = {}
        self.changed_hosts: dict[str, None] = {}  # hosts on which some command ran, in order of first start
        if records:
            self._restore()

    def _restore(self) -> None:
        """Host outcomes and failure counts from records loaded from the store (resume)."""
        by_host: dict[str, list[OpRecord]] = {}
        for rec in self.records.values():
            by_host.setdefault(rec.host, []).append(rec)
            if rec.start is not None and not rec.host.startswith("@"):
                self.changed_hosts.setdefault(rec.host, None)
        for host, recs in by_host.items():
            states = {r.state for r in recs}
            if OpState.ROLLED_BACK in states:
                self.set_host(host, HostOutcome.ROLLED_BACK)
            elif OpState.FAILED in states:
                self.host_failed(host, recs[0].wave)
            elif states <= {OpState.SUCCEEDED, OpState.SKIPPED} and OpState.SUCCEEDED in states:
                self.set_host(host, HostOutcome.SUCCEEDED)

    # -- events -----------------------------------------------------------------------------------

    def emit(self, kind: EventKind, message: str = "", **fields: object) -> None:
        if not self.bus.listening:
            return
        host = fields.pop("host", None)
        task = fields.pop("task", None)
        wave = fields.pop("wave", None)
        self.bus.emit(
            Event(
                kind,
                self.run_id,
                self._now(),
                host=host if isinstance(host, str) else None,
                task=task if isinstance(task, str) else None,
                wave=wave if isinstance(wave, int) else None,
                message=message,
                data=fields,
            )
        )

    # -- operations -------------------------------------------------------------------------------

    def will_start(self, op_id: str, command: str) -> None:
        """Write-ahead: record the operation as running; commit (``RunRecorder.durable``) before sending."""
        rec = self.records[op_id]
        now = self._now()
        self.records[op_id] = rec.running(now, command, 1)
        if self.recorder is not None:
            self.recorder.op_started(op_id, at=now, attempt=1, command=command)

    def started(self, op_id: str, command: str, attempt: int) -> None:
        rec = self.records[op_id]
        if attempt > 1 or rec.state is not OpState.RUNNING:  # a retry, or no will_start before
            now = self._now()
            if self.recorder is not None:
                self.recorder.op_started(op_id, at=now, attempt=attempt, command=command)
            self.records[op_id] = rec.running(now, command, attempt)
        if rec.host not in self.changed_hosts and not rec.host.startswith("@"):
            self.changed_hosts[rec.host] = None
        self.emit(EventKind.OP_STARTED, command, host=rec.host, task=rec.task, wave=rec.wave, attempt=attempt)

    def finished(self, record: OpRecord) -> None:
        self.records[record.op_id] = record
        self._save(record)
        self.emit(
            EventKind.OP_FINISHED,
            record.error or "",
            host=record.host,
            task=record.task,
            wave=record.wave,
            state=record.state.value,
            exit_status=record.exit_status,
            duration=record.duration,
            executor=record.executor,
        )

    def add_op(self, op_id: str, host: str, task: str, wave: int, command: str) -> None:
        """Record an operation the graph does not hold (an ``on_failure`` branch task), pending."""
        self.records[op_id] = OpRecord(op_id, host, task, wave, OpState.PENDING, command=command)
        if self.recorder is not None:
            self.recorder.add_op(self.records[op_id])

    def skip(self, op_ids: Iterable[str], reason: str, state: OpState = OpState.SKIPPED) -> None:
        for op_id in op_ids:
            rec = self.records[op_id]
            if rec.state in (OpState.PENDING, OpState.QUEUED):
                self.records[op_id] = replace(rec, state=state, reason=reason)
                self._save(self.records[op_id])
                self.emit(EventKind.OP_SKIPPED, reason, host=rec.host, task=rec.task, wave=rec.wave)

    def mark(self, op_id: str, state: OpState, reason: str = "") -> None:
        self.records[op_id] = replace(
            self.records[op_id], state=state, reason=reason or self.records[op_id].reason
        )
        self._save(self.records[op_id])

    def _save(self, record: OpRecord) -> None:
        if self.recorder is not None:
            self.recorder.op_record(record)

    # -- hosts ------------------------------------------------------------------------------------

    def host_failed(self, host: str, wave: int) -> None:
        if host in self.hosts:
            self.hosts[host] = HostOutcome.FAILED
        self.failed_in_wave.setdefault(wave, set()).add(host)

    def set_host(self, host: str, outcome: HostOutcome) -> None:
        if host in self.hosts:
            self.hosts[host] = outcome

    def failures(self, wave: int | None = None) -> int:
        if wave is None:
            return sum(len(s) for s in self.failed_in_wave.values())
        return len(self.failed_in_wave.get(wave, ()))

    def pending_ops(self, host: str) -> list[str]:
        return [i for i in self.graph.chains.get(host, ()) if not self.records[i].state.done]
