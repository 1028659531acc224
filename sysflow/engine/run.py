"""One run of a workflow: waves, host chains, gates, thresholds, rollback, and its controls.

A :class:`Run` is created by the ``Engine``; ``await run.wait()`` gives the ``RunResult``. While it
runs, ``cancel()``, ``pause()``, ``resume()`` and ``approve()`` steer it. Host chains of a wave run
as tasks of one task group; each operation starts only when runtime admission grants it and its
host's window admits it, so the run never exceeds a pool and never starts outside a window.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from typing import Any, Protocol

from sysflow.clock import Clock
from sysflow.engine.adaptive import Replanner
from sysflow.engine.analysis import measure
from sysflow.engine.conditional import CONDITION_FALSE, Conditional, Prepared
from sysflow.engine.events import EventBus, EventKind
from sysflow.engine.executor import OpRunner
from sysflow.engine.result import HostOutcome, OpRecord, RunResult
from sysflow.engine.state import StateMonitor, StateVerdict
from sysflow.engine.states import OpState, RunStatus
from sysflow.engine.store import RunStore
from sysflow.engine.thresholds import exceeded
from sysflow.engine.tracker import RunTracker
from sysflow.engine.windows import OpenWindow, WindowGuard
from sysflow.model.state_checks import CheckPoint
from sysflow.model.workflow import ExpiryPolicy, GateMode, MaintenanceWorkflow, RollbackScope
from sysflow.planner.durations import DurationModel
from sysflow.planner.graph import Operation, OpGraph
from sysflow.transport import Settled

__all__ = ["Admission", "Hooks", "Restored", "Run"]

log = logging.getLogger(__name__)

DEFAULT_ROLLBACK_PARALLELISM = 20  # hosts rolled back at once when the workflow sets no limit


@dataclass(frozen=True)
class Restored:
    """What a resumed run starts from: the stored operation records and gate verdicts."""

    records: Mapping[str, OpRecord]
    gates: Mapping[tuple[int, str], tuple[bool | None, list[str]]]
    # settles an interrupted operation's command on its host before its check (see Engine.resume)
    settle: Callable[[Operation], Awaitable[Settled | None]] | None = None


class _Outcome(Enum):
    OK = "ok"
    FAILED = "failed"
    STOPPED = "stopped"  # the run stopped while the operation waited for admission
    OUTSIDE_WINDOW = "outside_window"  # the window closed (or the chain no longer fits) meanwhile


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
class _Control:
    cancelled: bool = False
    stop_reason: str = ""
    failed_wave: int | None = None
    resume: asyncio.Event = field(default_factory=asyncio.Event)
    approvals: set[int] = field(default_factory=set)
    approved: asyncio.Event = field(default_factory=asyncio.Event)


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
        plan: Any = None,
        store: RunStore | None = None,
        durations: DurationModel | None = None,
        restored: Restored | None = None,
        replanner: Replanner | None = None,
        conditional: Conditional | None = None,
        state: StateMonitor | None = None,
    ) -> None:
        self.id = run_id
        self._cond = conditional
        self._state = state
        self.workflow = workflow
        self.graph = graph
        self.clock = clock
        self.status = RunStatus.PENDING
        self.store = store
        self.durations = durations
        self._restored = restored
        self.tracker = RunTracker(
            run_id, graph, bus, clock.now, store=store, records=restored.records if restored else None
        )
        self._commit: asyncio.Future[None] | None = None
        self._in_chain: set[str] = set()  # hosts whose chain is working now
        self._rb_scope: set[str] = set()
        self._rb_tasks: list[asyncio.Task[None]] = []
        self._rolled: set[str] = set()
        self._rb_sem = asyncio.Semaphore(
            workflow.parallelism.max_parallel_servers or DEFAULT_ROLLBACK_PARALLELISM
        )
        self._rb_hooks_lock = asyncio.Lock()
        self._runner = runner
        self._admission = admission
        self._guard = guard
        self._hooks = hooks
        self._estimate = estimate or {}
        self.replanner = replanner
        if order is None and replanner is not None:
            order = replanner.rank()
        self._rank = {h: i for i, h in enumerate(order or ())}
        self._plan = plan
        self._ctl = _Control()
        self._ctl.resume.set()
        self._active = 0  # host chains working (not waiting for a window)
        self._waiting = 0
        self._gates: list[dict[str, Any]] = []
        self._result: RunResult | None = None
        self._cross = _cross_host_predecessors(graph)
        self._done: dict[str, asyncio.Event] = {p: asyncio.Event() for ps in self._cross.values() for p in ps}
        self._hooks_of_wave: dict[int, list[str]] = {}
        for host in graph.chains:
            if host.startswith("@"):
                self._hooks_of_wave.setdefault(graph.ops[graph.chains[host][0]].wave, []).append(host)

    # -- controls ---------------------------------------------------------------------------------

    def cancel(self, reason: str = "cancelled") -> None:
        """Graceful: nothing new starts; running operations finish."""
        self._ctl.cancelled = True
        self._ctl.stop_reason = self._ctl.stop_reason or reason
        self._ctl.resume.set()
        self._ctl.approved.set()

    def pause(self) -> None:
        """Nothing new starts until ``resume()``; running operations finish."""
        if not self.status.finished:
            self._ctl.resume.clear()
            self._set_status(RunStatus.PAUSED, "paused by operator")

    def resume(self) -> None:
        self._ctl.resume.set()

    def approve(self, wave: int | None = None) -> None:
        """Approve the gate before ``wave`` (1-based), or whatever gate is waiting."""
        self._ctl.approvals.add(wave if wave is not None else -1)
        self._ctl.approved.set()

    @property
    def result(self) -> RunResult | None:
        return self._result

    # -- the run ----------------------------------------------------------------------------------

    async def execute(self) -> RunResult:
        started = self.clock.now()
        self._set_status(RunStatus.RUNNING, "", kind=EventKind.RUN_STARTED)
        rollout = self.workflow.rollout
        try:
            if self._restored is not None:
                await self._recheck_interrupted()
            if rollout.mode is GateMode.SLIDING:
                await self._run_sliding()
            for wave, hosts in enumerate(() if rollout.mode is GateMode.SLIDING else self.graph.waves):
                if self._stopped:
                    break
                if self.store is not None:
                    self.store.set_position(self.id, wave)
                if wave > 0 and not await self._before_wave(wave):
                    break
                if not await self._state_allows(wave, hosts):
                    continue
                self._maybe_replan(boundary=True)
                await self._run_wave(wave, hosts)
                if not self._stopped:
                    await self._gate(wave, hosts)
            if self._ctl.failed_wave is not None and rollout.auto_rollback and not self._ctl.cancelled:
                await self._rollback(self._ctl.failed_wave)
        except asyncio.CancelledError:
            self._ctl.stop_reason = self._ctl.stop_reason or "cancelled"
            self._ctl.cancelled = True
            self._finish(started)
            raise
        return self._finish(started)

    @property
    def _stopped(self) -> bool:
        return bool(self._ctl.stop_reason)

    def _stop(self, reason: str, wave: int | None = None) -> None:
        if not self._ctl.stop_reason:
            self._ctl.stop_reason = reason
            self._ctl.failed_wave = wave
            if wave is not None and self.workflow.rollout.auto_rollback and not self._ctl.cancelled:
                self._begin_rollback(wave)
            if self.store is not None:
                self.store.set_position(self.id, wave or 0, failed_wave=wave, reason=reason)
            self.tracker.emit(EventKind.THRESHOLD_EXCEEDED, reason, wave=wave)

    def _set_status(self, status: RunStatus, message: str, kind: EventKind | None = None) -> None:
        if status is self.status and kind is None:
            return
        self.status = status
        if self.store is not None:
            self.store.set_status(self.id, status, at=self.clock.now(), reason=self._ctl.stop_reason)
        k = kind or {RunStatus.PAUSED: EventKind.RUN_PAUSED, RunStatus.RUNNING: EventKind.RUN_RESUMED}.get(
            status
        )
        if k is not None:
            self.tracker.emit(k, message, status=status.value)

    # -- waves ------------------------------------------------------------------------------------

    async def _run_wave(self, wave: int, hosts: Sequence[str]) -> None:
        self.tracker.emit(
            EventKind.WAVE_STARTED, f"wave {wave + 1}: {len(hosts)} hosts", wave=wave, hosts=len(hosts)
        )
        ordered = sorted(hosts, key=lambda h: self._rank.get(h, len(self._rank)))
        async with asyncio.TaskGroup() as tg:
            for host in [*ordered, *self._hooks_of_wave.get(wave, [])]:
                tg.create_task(self._host_chain(host, wave, len(hosts)))
        self._wave_finished(wave, hosts)

    async def _run_sliding(self) -> None:
        """Sliding mode (AWS Run Command's MaxConcurrency): no barrier between waves; hosts start in
        wave order as capacity frees, failures still count per wave and against the budget; one gate
        at the end over every host."""
        hosts = self.graph.hosts
        self.tracker.emit(EventKind.WAVE_STARTED, f"sliding: {len(hosts)} hosts", wave=0, hosts=len(hosts))
        async with asyncio.TaskGroup() as tg:
            for wave, members in enumerate(self.graph.waves):
                ordered = sorted(members, key=lambda h: self._rank.get(h, len(self._rank)))
                for host in [*ordered, *self._hooks_of_wave.get(wave, [])]:
                    tg.create_task(self._host_chain(host, wave, len(members)))
        self._wave_finished(0, hosts, sliding=True)
        if not self._stopped and self.graph.waves:
            await self._gate(len(self.graph.waves) - 1, hosts)

    def _wave_finished(self, wave: int, hosts: Sequence[str], *, sliding: bool = False) -> None:
        """WAVE_FINISHED, counting the hosts of the wave that failed in it (those counted against its
        threshold, and any whose outcome is failed now, e.g. a failed rollback), from the records."""
        waves = range(len(self.graph.waves)) if sliding else [wave]
        failed = {h for w in waves for h in self.tracker.failed_in_wave.get(w, ())}
        failed |= {h for h in hosts if self.tracker.hosts.get(h) is HostOutcome.FAILED}
        names = sorted(h for h in failed if not h.startswith("@"))
        self.tracker.emit(
            EventKind.WAVE_FINISHED,
            f"{len(names)} of {len(hosts)} host(s) failed",
            wave=wave,
            failed=len(names),
            failed_hosts=names,
            hosts=len(hosts),
        )

    async def _before_wave(self, wave: int) -> bool:
        rollout = self.workflow.rollout
        if rollout.pause_between_waves:
            await self.clock.sleep(rollout.pause_between_waves)
        if rollout.needs_approval(wave + 1):
            return await self._await_approval(wave)
        return not self._stopped

    async def _state_allows(self, wave: int, hosts: Sequence[str]) -> bool:
        """State checks before a wave: proceed (maybe after holding, maybe throttled), skip, or stop."""
        if self._state is None:
            return True
        decision = await self._state.evaluate(
            CheckPoint.BEFORE_WAVE, wave, hosts, self.tracker.emit, self._set_capacity()
        )
        if decision.verdict is StateVerdict.SKIP and decision.groups is not None:
            wanted = set(decision.groups)
            for host in hosts:
                chain = self.graph.chains.get(host, ())
                if chain and wanted & set(self.graph.ops[chain[0]].groups):
                    self.tracker.skip(chain, f"group skipped: {decision.reason}")
            return True
        if decision.verdict is StateVerdict.SKIP:
            for host in [*hosts, *self._hooks_of_wave.get(wave, [])]:
                self.tracker.skip(self.graph.chains.get(host, ()), f"wave skipped: {decision.reason}")
            return False
        if decision.verdict is StateVerdict.STOP:
            self._stop(f"before wave {wave + 1}: {decision.reason}")
            return False
        return True

    def _set_capacity(self) -> Callable[[str, float], None] | None:
        setter = getattr(self._admission, "set_capacity", None)
        return setter if callable(setter) else None

    async def _await_approval(self, wave: int) -> bool:
        if self._restored is not None and self._restored.gates.get((wave, "approval"), (None,))[0]:
            return True  # approved before the interruption
        self._set_status(RunStatus.PAUSED, f"waiting for approval of wave {wave + 1}")
        self.tracker.emit(EventKind.APPROVAL_REQUESTED, f"approve wave {wave + 1}", wave=wave)
        while not ({wave + 1, -1} & self._ctl.approvals) and not self._ctl.cancelled:
            self._ctl.approved.clear()
            await self._ctl.approved.wait()
        self._ctl.approvals.discard(-1)
        if self._ctl.cancelled:
            return False
        self.tracker.emit(EventKind.APPROVAL_GIVEN, f"wave {wave + 1} approved", wave=wave)
        if self.store is not None:
            self.store.gate(self.id, wave, "approval", True, [], at=self.clock.now())
        self._set_status(RunStatus.RUNNING, "approved")
        return True

    async def _gate(self, wave: int, hosts: Sequence[str]) -> None:
        if self._restored is not None and self._restored.gates.get((wave, "gate"), (None,))[0]:
            return  # this gate passed before the interruption
        reasons: list[str] = []
        passed: bool | None = True
        if self._hooks is not None:
            passed, reasons = await self._hooks.gate(wave, hosts)
        for check in self.workflow.rollout.analysis:
            metric = await measure(check, self._runner.run_op, self.clock, wave)
            reasons = [*reasons, metric.reason]
            if metric.passed is not True and passed is not False:
                passed = metric.passed
        bake = (
            self.workflow.rollout.canary_bake
            if wave == 0 and self.workflow.rollout.strategy == "canary"
            else 0.0
        )
        if passed is not False and self._state is not None:
            decision = await self._state.evaluate(
                CheckPoint.GATE, wave, hosts, self.tracker.emit, self._set_capacity()
            )
            if decision.verdict is not StateVerdict.PROCEED:
                passed, reasons = False, [*reasons, decision.reason]
        if bake and passed:
            await self.clock.sleep(bake)
        verdict = {"wave": wave, "passed": passed, "reasons": reasons}
        self._gates.append(verdict)
        if self.store is not None:
            self.store.gate(self.id, wave, "gate", passed, reasons, at=self.clock.now())
        self.tracker.emit(
            EventKind.GATE_EVALUATED,
            "; ".join(reasons),
            wave=wave,
            passed=passed,
            failures=self.tracker.failures(wave),
        )
        # failed, or inconclusive: a gate that cannot decide does not let the rollout go on
        if passed is not True:
            word = "failed" if passed is False else "was inconclusive"
            self._stop(f"gate after wave {wave + 1} {word}: {'; '.join(reasons)}", wave)

    # -- one host ---------------------------------------------------------------------------------

    async def _host_chain(self, host: str, wave: int, wave_size: int) -> None:
        self._in_chain.add(host)
        try:
            await self._chain(host, wave, wave_size)
        finally:  # whatever happened, operations others wait for are settled now
            self._in_chain.discard(host)
            for op_id in self.graph.chains.get(host, ()):
                event = self._done.get(op_id)
                if event is not None:
                    event.set()
        if host in self._rb_scope and (host in self.tracker.changed_hosts or host.startswith("@")):
            await self._rollback_one(host)  # the rollout stopped while this host worked: revert it now

    async def _blocked_by(self, op: Operation) -> str | None:
        """Wait for the operation's cross-host predecessors; the first that did not succeed."""
        for pred in self._cross.get(op.id, ()):
            await self._done[pred].wait()
            rec = self.tracker.records[pred]
            if rec.state is not OpState.SUCCEEDED and not _skipped_by_condition(rec):
                return self.graph.ops[pred].task + "@" + self.graph.ops[pred].host
        return None

    async def _chain(self, host: str, wave: int, wave_size: int) -> None:
        ops = [self.graph.ops[i] for i in self.tracker.pending_ops(host)]
        if not ops:
            return
        if self.tracker.hosts.get(host) in (HostOutcome.FAILED, HostOutcome.ROLLED_BACK):
            self._skip_rest(ops, "host failed before the interruption")
            return
        started = False
        window: OpenWindow | None = None
        k = 0
        while k < len(ops):
            op, rest = ops[k], ops[k:]
            if self._must_not_start(started):
                self._skip_rest(rest, f"not started: {self._ctl.stop_reason}")
                return
            window = await self._admit_window(host, rest, window)
            if window is None:
                self.tracker.skip([o.id for o in rest], "deferred: no window fits", OpState.PENDING)
                self.tracker.set_host(host, HostOutcome.DEFERRED)
                return
            await self._ctl.resume.wait()
            blocked = await self._blocked_by(op)
            if blocked:
                self._skip_rest(rest, f"{blocked} did not succeed")
                if started:
                    self._host_failed(host, wave, wave_size)
                return
            outcome = await self._run_op(op, window, rest, started)
            if op.id in self._done and outcome in (_Outcome.OK, _Outcome.FAILED):
                self._done[op.id].set()
            if outcome is _Outcome.STOPPED:
                self._skip_rest(rest, f"not started: {self._ctl.stop_reason}")
                return
            if outcome is _Outcome.OUTSIDE_WINDOW:  # admission took us past the cutoff: next window
                window = None
                continue
            started = True
            if outcome is _Outcome.FAILED:
                self._skip_rest(ops[k + 1 :], f"{op.task} failed")
                self._host_failed(host, wave, wave_size)
                break
            k += 1
        else:
            if await self._verified(host):
                self.tracker.set_host(host, HostOutcome.SUCCEEDED)
            else:
                self._host_failed(host, wave, wave_size)
        self._admission.host_done(host)

    def _must_not_start(self, host_started: bool) -> bool:
        """After a stop, hosts not yet started stay untouched; a cancel also ends started chains."""
        return self._stopped and (not host_started or self._ctl.cancelled or bool(self._rb_scope))

    def _skip_rest(self, ops: Sequence[Operation], reason: str) -> None:
        self.tracker.skip([o.id for o in ops], reason)

    async def _verified(self, host: str) -> bool:
        if self._hooks is None:
            return True
        reasons = await self._hooks.host_done(host)
        passed = not reasons
        self.tracker.emit(EventKind.VERIFICATION, "; ".join(reasons), host=host, passed=passed)
        return passed

    async def _admit_window(
        self, host: str, rest: list[Operation], current: OpenWindow | None
    ) -> OpenWindow | None:
        now = self.clock.now()
        if current is not None and current.may_start(now):
            return current
        predicted = sum(self._predict(o) for o in rest)
        if self._guard.admitting(host, predicted, now) is None:
            self._waiting += 1
            self._maybe_paused()
            try:
                return await self._guard.wait(host, predicted)
            finally:
                self._waiting -= 1
        return self._guard.admitting(host, predicted, now)

    def _maybe_paused(self) -> None:
        if self._active == 0 and self._waiting > 0 and self.status is RunStatus.RUNNING:
            self._set_status(RunStatus.PAUSED, "waiting for the next maintenance window")
            self.tracker.emit(EventKind.WINDOW_CLOSED, "no host may start now: waiting for the next window")

    async def _run_op(
        self, op: Operation, window: OpenWindow, rest: Sequence[Operation], host_started: bool
    ) -> _Outcome:
        """Acquire admission, re-check stop and window (the wait may have been long), run."""
        grant = await self._admission.acquire(op)
        if self._must_not_start(host_started):
            self._admission.release(grant)
            return _Outcome.STOPPED
        if not self._still_inside(window, rest, host_started):
            self._admission.release(grant)
            return _Outcome.OUTSIDE_WINDOW
        self._active += 1
        self.tracker.emit(
            EventKind.OP_PROGRESS, "admitted", host=op.host, task=op.task, wave=op.wave, step="admitted"
        )
        if self.status is RunStatus.PAUSED and self._ctl.resume.is_set():
            self._set_status(RunStatus.RUNNING, "window open")
            self.tracker.emit(EventKind.WINDOW_OPENED, "a window opened", host=op.host)
        try:
            return _Outcome.OK if await self._run_admitted(op, window) else _Outcome.FAILED
        finally:
            self._active -= 1
            self._admission.release(grant)
            self._maybe_paused()

    def _maybe_replan(self, *, boundary: bool) -> None:
        if self.replanner is None or not self.replanner.due(boundary=boundary):
            return
        swap = self.replanner.replan(self.tracker.records, self.durations, self.clock.now())
        if swap is None:
            return
        self._plan = swap.plan
        self._rank = {h: i for i, h in enumerate(self.replanner.rank())}
        version = self.replanner.versions
        if self.store is not None:
            self.store.add_plan(self.id, swap.plan.to_json(indent=None), swap.reason, at=self.clock.now())
        self.tracker.emit(
            EventKind.PLAN_REPLACED, swap.reason, version=version, seconds=round(swap.seconds, 4)
        )

    def _predict(self, op: Operation) -> float:
        """Seconds ``op`` is expected to take: learned (p50) when a model is given, else the prior."""
        if op.id in self._estimate:
            return self._estimate[op.id]
        if self.durations is not None:
            return float(self.durations.seconds(op.task, op.group, 0.5))
        return op.expected_duration

    async def durable(self) -> None:
        """Wait until every store write so far is committed; writes of one loop tick share a commit."""
        if self.store is None:
            return
        if self._commit is None:
            loop = asyncio.get_running_loop()
            self._commit = loop.create_future()
            loop.call_soon(self._flush)
        await asyncio.shield(self._commit)

    def _flush(self) -> None:
        future, self._commit = self._commit, None
        assert self.store is not None
        assert future is not None
        try:
            self.store.commit()
        except Exception as exc:  # the store failing must stop the run, not be ignored
            future.set_exception(exc)
        else:
            future.set_result(None)

    async def _recheck_interrupted(self) -> None:
        """Operations that were running when the run stopped: settle, check, re-run if idempotent, or fail.

        At most once: an operation recorded as running may have run (its record is written before
        its command is sent), so it is sent again only when the task is ``idempotent``. Before its
        check runs, its command is settled on the host (found by its id, waited for or stopped), so
        the check never races a command the crashed controller left running."""
        interrupted = [
            self.graph.ops[rec.op_id]
            for rec in self.tracker.records.values()
            if rec.state in (OpState.RUNNING, OpState.UNKNOWN)
        ]
        gate = asyncio.Semaphore(64)  # interrupted operations settle and re-check side by side

        async def one(op: Operation) -> None:
            async with gate:
                verdict = await self._recheck(op)
            self.tracker.emit(EventKind.OP_PROGRESS, verdict, host=op.host, task=op.task, step="recheck")

        async with asyncio.TaskGroup() as tg:
            for op in interrupted:
                tg.create_task(one(op))
        if self.store is not None:
            self.store.commit()

    async def _recheck(self, op: Operation) -> str:
        target = self._target(op)
        settle = self._restored.settle if self._restored is not None else None
        if settle is not None:
            try:
                settled = await settle(target)
            except Exception as exc:  # unreachable host, refused: the command may still be running
                return self._interrupted_failed(
                    op, f"cannot tell whether its command still runs ({exc}): inspect the host"
                )
            if settled is not None and settled.running:
                return self._interrupted_failed(
                    op, "its command still runs on the host and could not be stopped: inspect the host"
                )
            if settled is not None and settled.found:
                how = "stopped" if settled.stopped else f"ended after {settled.waited:g}s"
                self.tracker.emit(
                    EventKind.OP_PROGRESS,
                    f"interrupted command was still running; {how}",
                    host=op.host,
                    task=op.task,
                    step="settle",
                )
        if op.check:
            probe = replace(op, id=f"check:{op.id}", task=f"check:{op.task}", command=op.check, retries=0)
            record = await self._runner.run_op(self._target(probe), op.check, lambda attempt: None)
            if record.state is OpState.SUCCEEDED:
                self.tracker.mark(op.id, OpState.SUCCEEDED, "interrupted; its check shows it took effect")
                return "re-checked: done"
        if op.idempotent:  # not done (or no check to say so), and repeating is safe
            rec = self.tracker.records[op.id]
            self.tracker.records[op.id] = replace(
                rec, state=OpState.PENDING, reason="interrupted; idempotent: re-run"
            )
            return "idempotent: will re-run"
        why = (
            "its check says it did not take effect and it is not idempotent: inspect the host"
            if op.check
            else "not idempotent and no check command: inspect the host"
        )
        return self._interrupted_failed(op, why)

    def _interrupted_failed(self, op: Operation, why: str) -> str:
        """An interrupted operation that cannot be run again: failed, the rest of its host skipped."""
        self.tracker.mark(op.id, OpState.FAILED, f"interrupted while running; {why}")
        self.tracker.skip([o for o in self.graph.chains.get(op.host, ()) if o != op.id], "host interrupted")
        if not op.host.startswith("@"):
            self.tracker.host_failed(op.host, op.wave)
        return f"failed: {why}"

    def _target(self, op: Operation) -> Operation:
        """A run-once hook that is not local runs on the first host of its wave, as Ansible's run_once."""
        if op.run_once and not op.local and self.graph.waves[op.wave]:
            return replace(op, host=self.graph.waves[op.wave][0])
        return op

    def _still_inside(self, window: OpenWindow, rest: Sequence[Operation], host_started: bool) -> bool:
        now = self.clock.now()  # the admission wait may have reached the cutoff or the end: exclusive
        if host_started or self._guard.split_chains:
            return window.may_start(now)
        return window.admits(now, sum(self._predict(o) for o in rest))

    async def _run_admitted(self, op: Operation, window: OpenWindow) -> bool:
        prepared = await self._prepare(op)
        if prepared is not None and prepared.skip is not None:
            self.tracker.skip([op.id], prepared.skip)
            assert self._cond is not None
            self._cond.register(op.host, op.task, None)
            return True
        if prepared is not None and prepared.error is not None:
            self.tracker.finished(
                OpRecord(op.id, op.host, op.task, op.wave, OpState.FAILED, op.command, error=prepared.error)
            )
            return False
        recorded = op.command if prepared is None else prepared.recorded
        if self._hooks is not None:
            self.tracker.emit(
                EventKind.OP_PROGRESS, "capturing state", host=op.host, task=op.task, step="capture"
            )
            await self._hooks.before(op.host, op.task)
        policy = self.workflow.on_window_expiry
        limit = None
        if policy is not ExpiryPolicy.FINISH:
            limit = max((window.end - self.clock.now()).total_seconds(), 0.0)

        def on_start(attempt: int) -> None:
            self.tracker.started(op.id, recorded, attempt)

        self.tracker.will_start(op.id, recorded)
        await self.durable()  # write-ahead: the store knows the operation runs before its command is sent

        try:
            async with asyncio.timeout(limit):
                record = await self._execute(op, prepared, on_start)
        except TimeoutError:
            await self._past(window.end)  # its slot frees no earlier than the end, on every clock
            self.tracker.finished(  # recorded and announced like any other end of an operation
                replace(
                    self.tracker.records[op.id],
                    state=OpState.UNKNOWN,
                    end=self.clock.now(),
                    error=f"stopped at window end (on_window_expiry: {policy.value})",
                    reason="stopped at window end; re-check before repeating",
                )
            )
            self.tracker.emit(
                EventKind.WINDOW_CLOSED, f"{op.task} stopped at window end", host=op.host, task=op.task
            )
            if policy is ExpiryPolicy.ROLLBACK:
                self._stop("window closed: rolling back", op.wave)
            return False
        self.tracker.finished(record)
        if self.durations is not None and record.state is OpState.SUCCEEDED and record.duration is not None:
            self.durations.observe(op.task, op.group, record.duration)
        if self.replanner is not None:
            self.replanner.observe(record)
            self._maybe_replan(boundary=False)
        if record.state is not OpState.SUCCEEDED:
            return False
        if self._hooks is not None:
            await self._hooks.after(op.host, op.task)
        return True

    async def _past(self, when: datetime) -> None:
        """Return once the clock reads ``when`` or later. A real clock may read a hair before the end
        when the end's timer fires; the grant released after an abort must not let a waiting
        operation start "before the end" then."""
        while (left := (when - self.clock.now()).total_seconds()) > 0:
            await self.clock.sleep(max(left, 0.001))

    async def _prepare(self, op: Operation) -> Prepared | None:
        """Condition and rendered command of a conditional workflow's operation (None: run as is)."""
        if self._cond is None:
            return None
        return await self._cond.prepare(self._target(op))

    async def _execute(
        self, op: Operation, prepared: Prepared | None, on_start: Callable[[int], None]
    ) -> OpRecord:
        if prepared is None or self._cond is None:
            return await self._runner.run_op(self._target(op), op.command, on_start)
        record = await self._cond.execute(self._runner, self._target(op), prepared, on_start, self.tracker)
        return self._cond.redact(record, prepared)

    async def _run_rollback(self, rb: Operation) -> OpRecord:
        if self._cond is None:
            return await self._runner.run_op(rb, rb.command, lambda attempt: None)
        prepared = await self._cond.prepare(rb, rb.command)
        if prepared.error is not None:
            return OpRecord(
                rb.id, rb.host, rb.task, rb.wave, OpState.FAILED, rb.command, error=prepared.error
            )
        record = await self._runner.run_op(rb, prepared.command, lambda attempt: None)
        return self._cond.redact(record, prepared)

    def _host_failed(self, host: str, wave: int, wave_size: int) -> None:
        if host.startswith("@"):  # a run-once hook (cut-over, wave hook) failed: the wave failed
            self._stop(f"wave {wave + 1}: run-once hook {host} failed", wave)
            return
        self.tracker.host_failed(host, wave)
        rollout = self.workflow.rollout
        failures = self.tracker.failures(wave)
        if exceeded(failures, rollout.max_failures, wave_size):
            self._stop(
                f"wave {wave + 1}: {failures} of {wave_size} hosts failed (max_failures {rollout.max_failures})",
                wave,
            )
        total = self.tracker.failures()
        if exceeded(total, rollout.failure_budget, len(self.graph.hosts)):
            self._stop(
                f"failure budget exhausted: {total} hosts failed (budget {rollout.failure_budget})", wave
            )

    # -- rollback ---------------------------------------------------------------------------------

    # Rollback starts the moment the rollout stops: an idle changed host at once, a busy one as soon as
    # its current operation ends (it starts nothing new). Hooks (a blue-green cut-over) switch back first.

    def _rollback_scope(self, failed_wave: int) -> set[str]:
        scope = self.workflow.rollout.rollback_scope
        waves = range(failed_wave + 1) if scope is RollbackScope.ALL else [failed_wave]
        return {h for w in waves for h in [*self.graph.waves[w], *self._hooks_of_wave.get(w, [])]}

    def _begin_rollback(self, failed_wave: int) -> None:
        """Called when the rollout stops with auto_rollback: announce, then revert idle hosts now."""
        self._rb_scope = self._rollback_scope(failed_wave)
        in_scope = self._rb_scope
        hosts = [h for h in reversed(self.tracker.changed_hosts) if h in in_scope]
        missing = sorted(
            {
                self.graph.ops[r.op_id].task
                for r in self.tracker.records.values()
                if r.host in in_scope and r.start is not None and not self.graph.ops[r.op_id].rollback
            }
        )
        self.tracker.emit(
            EventKind.ROLLBACK_STARTED,
            f"rolling back {len(hosts)} hosts"
            + (f"; no rollback command for: {', '.join(missing)}" if missing else ""),
            wave=failed_wave,
            hosts=hosts,
            missing_rollback=missing,
        )
        for host in hosts:
            if host not in self._in_chain:
                self._rb_tasks.append(asyncio.create_task(self._rollback_one(host)))

    async def _rollback_one(self, host: str) -> None:
        if host in self._rolled:
            return
        self._rolled.add(host)
        await self._switch_back()
        async with self._rb_sem:
            await self._rollback_host(host)

    async def _switch_back(self) -> None:
        """Roll back the run-once hooks in scope (once), before any host is reverted."""
        async with self._rb_hooks_lock:
            hooks = [h for h in self._hooks_of_wave_order() if h in self._rb_scope and h not in self._rolled]
            for hook in reversed(hooks):
                self._rolled.add(hook)
                await self._rollback_host(hook)

    def _hooks_of_wave_order(self) -> list[str]:
        return [h for w in sorted(self._hooks_of_wave) for h in self._hooks_of_wave[w]]

    async def _rollback(self, failed_wave: int) -> None:
        """After the waves: revert every changed host in scope not reverted yet, then report."""
        if not self._rb_scope:
            self._begin_rollback(failed_wave)
        await self._switch_back()
        for host in [h for h in reversed(self.tracker.changed_hosts) if h in self._rb_scope]:
            self._rb_tasks.append(asyncio.create_task(self._rollback_one(host)))
        await asyncio.gather(*self._rb_tasks)
        hosts = sorted(h for h in self._rolled if not h.startswith("@"))
        self.tracker.emit(EventKind.ROLLBACK_FINISHED, "", wave=failed_wave, hosts=hosts)

    async def _rollback_host(self, host: str) -> None:
        ran = [
            self.graph.ops[i]
            for i in self.graph.chains.get(host, ())
            if self.tracker.records[i].start is not None
            and self.tracker.records[i].state in (OpState.SUCCEEDED, OpState.FAILED, OpState.UNKNOWN)
        ]
        all_ok = True
        for op in reversed(ran):
            if not op.rollback:
                continue
            rb = _rollback_op(self._target(op))
            record = await self._run_rollback(rb)
            self.tracker.emit(
                EventKind.OP_FINISHED,
                record.error or "",
                host=host,
                task=rb.task,
                wave=op.wave,
                state=record.state.value,
                exit_status=record.exit_status,
                rollback=True,
            )
            if record.state is OpState.SUCCEEDED:
                self.tracker.mark(op.id, OpState.ROLLED_BACK)
            else:
                all_ok = False
        self.tracker.set_host(host, HostOutcome.ROLLED_BACK if all_ok else HostOutcome.FAILED)

    # -- result -----------------------------------------------------------------------------------

    def _finish(self, started: datetime) -> RunResult:
        outcomes = self.tracker.hosts.values()
        if self._ctl.cancelled:
            status = RunStatus.CANCELLED
        elif any(o is HostOutcome.ROLLED_BACK for o in outcomes):
            status = RunStatus.ROLLED_BACK
        elif self._stopped:
            status = RunStatus.FAILED
        elif any(o is HostOutcome.FAILED for o in outcomes):
            status = RunStatus.COMPLETED_WITH_FAILURES  # within the thresholds, yet not a success
        else:
            status = RunStatus.COMPLETED
        self.status = status
        if self.store is not None:
            self.store.set_status(self.id, status, at=self.clock.now(), reason=self._ctl.stop_reason)
        self._result = RunResult(
            run_id=self.id,
            workflow=self.workflow.name,
            status=status,
            hosts=dict(self.tracker.hosts),
            ops=dict(self.tracker.records),
            started=started,
            ended=self.clock.now(),
            verification_results=self._hooks.report() if self._hooks is not None else None,
            plan=self._plan,
            reason=self._ctl.stop_reason,
            gates=tuple(self._gates),
        )
        self.tracker.emit(EventKind.RUN_FINISHED, self._ctl.stop_reason, **self._result.summary())
        return self._result


def _skipped_by_condition(rec: OpRecord) -> bool:
    """A `when` that was false: what depends on it goes on, as if it had run."""
    return rec.state is OpState.SKIPPED and rec.reason.startswith(CONDITION_FALSE)


def _cross_host_predecessors(graph: OpGraph) -> dict[str, tuple[str, ...]]:
    """Per operation, its predecessors on other hosts (run-once hooks and what they wait for)."""
    ops = graph.ops
    cross: dict[str, tuple[str, ...]] = {}
    for op_id, op in ops.items():
        preds = [p for p in graph.graph.predecessors(op_id) if p in ops and ops[p].host != op.host]
        if preds:
            cross[op_id] = tuple(preds)
    return cross


def _rollback_op(op: Operation) -> Operation:
    return replace(
        op, id=f"rollback:{op.id}", task=f"rollback:{op.task}", command=op.rollback or "", retries=0
    )
