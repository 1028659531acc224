"""What the parts of one run share: its inputs, its collaborators and its control flags.

A :class:`Run` builds one :class:`RunContext` and hands it to the rollout, the host chains, the
rollback and the resume re-check, so none of them reaches into another's fields. The protocols the
engine is given (runtime admission, verification hooks) and what a resumed run starts from
(:class:`Restored`) are declared here too, beside the context that carries them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from sysflow.clock import Clock
from sysflow.engine.adaptive import Replanner
from sysflow.engine.conditional import Conditional
from sysflow.engine.events import EventKind
from sysflow.engine.executor import OpRunner
from sysflow.engine.recorder import RunRecorder
from sysflow.engine.result import OpRecord
from sysflow.engine.state import StateMonitor
from sysflow.engine.states import RunStatus
from sysflow.engine.tracker import RunTracker
from sysflow.engine.windows import WindowGuard
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.planner.durations import DurationModel
from sysflow.planner.graph import Operation, OpGraph
from sysflow.transport import Settled

__all__ = ["Admission", "Control", "Hooks", "Restored", "RunContext", "hooks_by_wave"]


@dataclass(frozen=True)
class Restored:
    """What a resumed run starts from: the stored operation records and gate verdicts."""

    records: Mapping[str, OpRecord]
    gates: Mapping[tuple[int, str], tuple[bool | None, list[str]]]
    # settles an interrupted operation's command on its host before its check (see Engine.resume)
    settle: Callable[[Operation], Awaitable[Settled | None]] | None = None


class Admission(Protocol):
    """Runtime admission (``sysflow.constraints``): grants in caller order, never over capacity."""

    async def acquire(self, op: Operation) -> Any: ...

    def release(self, grant: Any) -> None: ...

    def host_done(self, host: str) -> None: ...


class Hooks(Protocol):
    """Verification hooks around operations and at gates (``sysflow.verify``)."""

    async def before(self, host: str, task: str) -> None: ...

    async def after(self, host: str, task: str) -> None: ...

    async def host_done(self, host: str) -> list[str]:
        """Judge a host whose chain finished; failure reasons (empty when it verifies)."""
        ...

    async def gate(self, wave: int, hosts: Sequence[str]) -> tuple[bool | None, list[str]]:
        """Gate verdict for a wave: (passed, or None when inconclusive; reasons)."""
        ...

    def report(self) -> Any: ...


@dataclass
class Control:
    """The operator's and the rollout's steering: cancel, stop (why, which wave), pause, approvals."""

    cancelled: bool = False
    stop_reason: str = ""
    failed_wave: int | None = None
    resume: asyncio.Event = field(default_factory=asyncio.Event)
    approvals: set[int] = field(default_factory=set)
    approved: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.resume.set()

    @property
    def stopped(self) -> bool:
        return bool(self.stop_reason)


@dataclass
class RunContext:
    """The state every part of one run reads, and the few things they all change (status, control)."""

    id: str
    workflow: MaintenanceWorkflow
    graph: OpGraph
    clock: Clock
    tracker: RunTracker
    recorder: RunRecorder
    runner: OpRunner
    admission: Admission
    guard: WindowGuard
    hooks: Hooks | None = None
    conditional: Conditional | None = None
    state: StateMonitor | None = None
    durations: DurationModel | None = None
    replanner: Replanner | None = None
    restored: Restored | None = None
    estimate: Mapping[str, float] = field(default_factory=dict)
    control: Control = field(default_factory=Control)
    status: RunStatus = RunStatus.PENDING
    in_chain: set[str] = field(default_factory=set)  # hosts whose chain is working now
    hooks_of_wave: dict[int, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.hooks_of_wave = hooks_by_wave(self.graph)

    @property
    def stopped(self) -> bool:
        return self.control.stopped

    def set_status(self, status: RunStatus, message: str, kind: EventKind | None = None) -> None:
        """Change the run's status: stored, and announced (paused, resumed, or ``kind``)."""
        if status is self.status and kind is None:
            return
        self.status = status
        self.recorder.set_status(status, reason=self.control.stop_reason)
        k = kind or {RunStatus.PAUSED: EventKind.RUN_PAUSED, RunStatus.RUNNING: EventKind.RUN_RESUMED}.get(
            status
        )
        if k is not None:
            self.tracker.emit(k, message, status=status.value)

    def target(self, op: Operation) -> Operation:
        """A run-once hook that is not local runs on the first host of its wave, as Ansible's run_once."""
        if op.run_once and not op.local and self.graph.waves[op.wave]:
            return replace(op, host=self.graph.waves[op.wave][0])
        return op


def hooks_by_wave(graph: OpGraph) -> dict[int, list[str]]:
    """The run-once hook chains (``@``-named hosts) of each wave, in graph order."""
    hooks: dict[int, list[str]] = {}
    for host in graph.chains:
        if host.startswith("@"):
            hooks.setdefault(graph.ops[graph.chains[host][0]].wave, []).append(host)
    return hooks
