"""One run of a workflow, and its controls: cancel, pause, resume, approve.

A :class:`Run` is created by the ``Engine``; ``await run.execute()`` gives the ``RunResult``. The
work is done by its parts, which share one :class:`~sysflow.engine.context.RunContext`: a resumed
run first re-checks its interrupted operations (``recheck``), then the rollout runs the waves
(``rollout``, host chains in ``chain``), and a failed wave is rolled back (``rollback``). Every
store write goes through the run's :class:`~sysflow.engine.recorder.RunRecorder`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

from sysflow.clock import Clock
from sysflow.engine.adaptive import Replanner
from sysflow.engine.conditional import Conditional
from sysflow.engine.context import Admission, Hooks, Restored, RunContext
from sysflow.engine.events import EventBus, EventKind
from sysflow.engine.executor import OpRunner
from sysflow.engine.recheck import Recheck
from sysflow.engine.recorder import RunRecorder
from sysflow.engine.replanning import LivePlan
from sysflow.engine.result import HostOutcome, RunResult
from sysflow.engine.rollback import Rollback
from sysflow.engine.rollout import Rollout
from sysflow.engine.state import StateMonitor
from sysflow.engine.states import RunStatus
from sysflow.engine.stopping import Stopping
from sysflow.engine.store import RunStore
from sysflow.engine.tracker import RunTracker
from sysflow.engine.windows import WindowGuard
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.planner.durations import DurationModel
from sysflow.planner.graph import OpGraph
from sysflow.planner.plan import Plan

__all__ = ["Admission", "Hooks", "Restored", "Run"]


class Run:
    """A workflow running over the hosts of a compiled graph."""

    def __init__(
        self,
        run_id: str,
        workflow: MaintenanceWorkflow,
        graph: OpGraph,
        *,
        runner: OpRunner,
        clock: Clock,
        admission: Admission,
        guard: WindowGuard,
        bus: EventBus,
        hooks: Hooks | None = None,
        estimate: dict[str, float] | None = None,
        order: Sequence[str] | None = None,
        plan: Plan | None = None,
        store: RunStore | None = None,
        durations: DurationModel | None = None,
        restored: Restored | None = None,
        replanner: Replanner | None = None,
        conditional: Conditional | None = None,
        state: StateMonitor | None = None,
        recorder: RunRecorder | None = None,
    ) -> None:
        self.recorder = recorder if recorder is not None else RunRecorder(store, run_id, clock)
        self.store = self.recorder.store  # read it freely; every write goes through the recorder
        tracker = RunTracker(
            run_id,
            graph,
            bus,
            clock.now,
            recorder=self.recorder if self.store is not None else None,
            records=restored.records if restored else None,
        )
        self._ctx = RunContext(
            run_id,
            workflow,
            graph,
            clock,
            tracker,
            self.recorder,
            runner,
            admission,
            guard,
            hooks=hooks,
            conditional=conditional,
            state=state,
            durations=durations,
            replanner=replanner,
            restored=restored,
            estimate=estimate or {},
        )
        self._live = LivePlan(self._ctx, plan, order)
        self._rollback = Rollback(self._ctx)
        self._stopping = Stopping(self._ctx, self._rollback)
        self._rollout = Rollout(self._ctx, self._rollback, self._stopping, self._live)
        self._result: RunResult | None = None

    # -- what the run is --------------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._ctx.id

    @property
    def workflow(self) -> MaintenanceWorkflow:
        return self._ctx.workflow

    @property
    def graph(self) -> OpGraph:
        return self._ctx.graph

    @property
    def clock(self) -> Clock:
        return self._ctx.clock

    @property
    def tracker(self) -> RunTracker:
        return self._ctx.tracker

    @property
    def durations(self) -> DurationModel | None:
        return self._ctx.durations

    @property
    def replanner(self) -> Replanner | None:
        return self._ctx.replanner

    @property
    def plan(self) -> Plan | None:
        """The plan the run follows now (the first one until a re-plan swaps in another)."""
        return self._live.plan

    @property
    def status(self) -> RunStatus:
        return self._ctx.status

    @property
    def result(self) -> RunResult | None:
        return self._result

    # -- controls ---------------------------------------------------------------------------------

    def cancel(self, reason: str = "cancelled") -> None:
        """Graceful: nothing new starts; running operations finish."""
        control = self._ctx.control
        control.cancelled = True
        control.stop_reason = control.stop_reason or reason
        control.resume.set()
        control.approved.set()

    def pause(self, reason: str = "paused by operator") -> None:
        """Nothing new starts until ``resume()``; running operations finish."""
        if not self.status.finished:
            self._ctx.control.resume.clear()
            # announced even when already paused (waiting for an approval or a window): who paused it
            self._ctx.set_status(RunStatus.PAUSED, reason, kind=EventKind.RUN_PAUSED)

    def resume(self, reason: str = "resumed by operator") -> None:
        """Undo ``pause()``: operations start again (the run shows running once more)."""
        paused = not self._ctx.control.resume.is_set()
        self._ctx.control.resume.set()
        if paused and self.status is RunStatus.PAUSED:
            self._ctx.set_status(RunStatus.RUNNING, reason)

    def approve(self, wave: int | None = None) -> None:
        """Approve the gate before ``wave`` (1-based), or whatever gate is waiting."""
        self._ctx.control.approvals.add(wave if wave is not None else -1)
        self._ctx.control.approved.set()

    # -- the run ----------------------------------------------------------------------------------

    async def execute(self) -> RunResult:
        """Re-check what a crash interrupted (on resume), roll out, roll back a failed wave; the result."""
        ctx, control = self._ctx, self._ctx.control
        started = ctx.clock.now()
        ctx.set_status(RunStatus.RUNNING, "", kind=EventKind.RUN_STARTED)
        try:
            if ctx.restored is not None:
                await Recheck(ctx).run()
            await self._rollout.run()
            if (
                control.failed_wave is not None
                and ctx.workflow.rollout.auto_rollback
                and not control.cancelled
            ):
                await self._rollback.finish(control.failed_wave)
        except asyncio.CancelledError:
            control.stop_reason = control.stop_reason or "cancelled"
            control.cancelled = True
            self._finish(started)
            raise
        return self._finish(started)

    def _final_status(self) -> RunStatus:
        outcomes = self._ctx.tracker.hosts.values()
        if self._ctx.control.cancelled:
            return RunStatus.CANCELLED
        if any(o is HostOutcome.ROLLED_BACK for o in outcomes):
            return RunStatus.ROLLED_BACK
        if self._ctx.stopped:
            return RunStatus.FAILED
        if any(o is HostOutcome.FAILED for o in outcomes):
            return RunStatus.COMPLETED_WITH_FAILURES  # within the thresholds, yet not a success
        return RunStatus.COMPLETED

    def _finish(self, started: datetime) -> RunResult:
        ctx = self._ctx
        status = self._final_status()
        ctx.status = status
        ctx.recorder.set_status(status, reason=ctx.control.stop_reason)
        self._result = RunResult(
            run_id=ctx.id,
            workflow=ctx.workflow.name,
            status=status,
            hosts=dict(ctx.tracker.hosts),
            ops=dict(ctx.tracker.records),
            started=started,
            ended=ctx.clock.now(),
            verification_results=ctx.hooks.report() if ctx.hooks is not None else None,
            plan=self._live.plan,
            reason=ctx.control.stop_reason,
            gates=tuple(self._rollout.gates),
        )
        ctx.tracker.emit(EventKind.RUN_FINISHED, ctx.control.stop_reason, **self._result.summary())
        return self._result
