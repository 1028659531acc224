"""What a run did: per-operation records, per-host outcomes, and the aggregate ``RunResult``.

Failures are values (``result.failed_hosts``); raising is opt-in (``result.raise_on_error()``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sysflow.engine.states import OpState, RunStatus
from sysflow.errors import RunFailed
from sysflow.model.modules.base import changed_of

__all__ = ["HostOutcome", "OpRecord", "RunResult"]


class HostOutcome(StrEnum):
    """How a host ended the run."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    NOT_STARTED = "not_started"  # the rollout stopped or was cancelled before this host
    DEFERRED = "deferred"  # its window closed before its chain could run


@dataclass(frozen=True, slots=True)
class OpRecord:
    """One operation's final record (output capped by the transport)."""

    op_id: str
    host: str
    task: str
    wave: int
    state: OpState
    command: str = ""
    start: datetime | None = None
    end: datetime | None = None
    exit_status: int | None = None
    error: str | None = None  # error kind and message when the command could not run or timed out
    stdout: str = ""
    stderr: str = ""
    attempts: int = 0
    reason: str = ""  # why skipped / unknown
    executor: str = ""  # the HostPool that ran it ("<shard>@<node>")

    @property
    def duration(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        return (self.end - self.start).total_seconds()

    def running(self, start: datetime, command: str, attempts: int) -> OpRecord:
        """This record as running from ``start`` (``dataclasses.replace``, without its cost per op)."""
        return OpRecord(
            self.op_id, self.host, self.task, self.wave, OpState.RUNNING, command, start, self.end,
            self.exit_status, self.error, self.stdout, self.stderr, attempts, self.reason, self.executor,
        )  # fmt: skip

    @property
    def changed(self) -> bool | None:
        """A module's verdict, from the first line it printed: True when it changed the host, False
        when the host already was as asked; None for a shell command."""
        return changed_of(self.stdout)

    def to_dict(self) -> dict[str, Any]:
        return {
            "op": self.op_id,
            "host": self.host,
            "task": self.task,
            "wave": self.wave,
            "state": self.state.value,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "exit_status": self.exit_status,
            "error": self.error,
            "attempts": self.attempts,
            "reason": self.reason,
        }


@dataclass(frozen=True, repr=False)
class RunResult:
    """The outcome of one run of a workflow over an inventory.

    Its repr is a summary (status, outcome counts), not every record: asyncio formats the repr of
    a finished main task (``asyncio.run`` on Python 3.11-3.12, CPython gh-112559), and a
    10,000-host run's full repr took half a second and 120 MB.
    """

    run_id: str
    workflow: str
    status: RunStatus
    hosts: Mapping[str, HostOutcome]
    ops: Mapping[str, OpRecord]
    started: datetime
    ended: datetime
    verification_results: Any = None  # sysflow.verify.report.RunVerificationReport
    plan: Any = None  # sysflow.planner.plan.Plan
    reason: str = ""  # why the run stopped early, if it did
    gates: Sequence[Mapping[str, Any]] = field(default_factory=tuple)

    def __repr__(self) -> str:
        outcomes = ", ".join(f"{k} {n}" for k, n in Counter(o.value for o in self.hosts.values()).items())
        reason = f", reason={self.reason!r}" if self.reason else ""
        return (
            f"RunResult(run_id={self.run_id!r}, workflow={self.workflow!r}, status={self.status.value},"
            f" hosts={len(self.hosts)} ({outcomes}), ops={len(self.ops)}{reason})"
        )

    @property
    def successful_servers(self) -> list[str]:
        return [h for h, o in self.hosts.items() if o is HostOutcome.SUCCEEDED]

    @property
    def failed_servers(self) -> list[str]:
        return [h for h, o in self.hosts.items() if o in (HostOutcome.FAILED, HostOutcome.ROLLED_BACK)]

    failed_hosts = failed_servers

    @property
    def ok(self) -> bool:
        """True only when the run completed and no host failed (``COMPLETED_WITH_FAILURES`` is not ok)."""
        return self.status is RunStatus.COMPLETED and not self.failed_servers

    def ops_of(self, host: str) -> list[OpRecord]:
        return sorted(
            (r for r in self.ops.values() if r.host == host), key=lambda r: (r.start is None, r.start)
        )

    def raise_on_error(self) -> RunResult:
        """Raise ``RunFailed`` when the run did not complete or any host failed; else return self."""
        if not self.ok:
            failed = self.failed_servers
            raise RunFailed(
                f"run {self.run_id} ({self.workflow}) {self.status.value}: "
                f"{len(failed)} host(s) failed{': ' + ', '.join(failed[:10]) if failed else ''}"
                f"{'; ' + self.reason if self.reason else ''}",
                failed,
            )
        return self

    def summary(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for o in self.hosts.values():
            counts[o.value] = counts.get(o.value, 0) + 1
        return {
            "run_id": self.run_id,
            "workflow": self.workflow,
            "status": self.status.value,
            "hosts": counts,
            "failed_hosts": self.failed_servers,
            "started": self.started.isoformat(),
            "ended": self.ended.isoformat(),
            "reason": self.reason,
        }
