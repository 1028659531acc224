"""One host's chain: its operations in order, each admitted, inside a window, prepared and executed.

Each operation starts only when runtime admission grants it and its host's window admits it, so the
run never exceeds a pool and never starts outside a window. A conditional workflow's operation is
prepared first (its condition, its rendered command); the store knows it runs before its command is
sent. A window that closes under a running operation stops it there (``on_window_expiry``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from enum import Enum

from sysflow.engine.conditional import CONDITION_FALSE, Prepared
from sysflow.engine.context import RunContext
from sysflow.engine.events import EventKind
from sysflow.engine.replanning import LivePlan
from sysflow.engine.result import HostOutcome, OpRecord
from sysflow.engine.rollback import Rollback
from sysflow.engine.states import OpState, RunStatus
from sysflow.engine.stopping import Stopping
from sysflow.engine.windows import ALWAYS, OpenWindow
from sysflow.model.workflow import ExpiryPolicy
from sysflow.planner.graph import Operation, OpGraph

__all__ = ["HostChains"]


class _Outcome(Enum):
    OK = "ok"
    FAILED = "failed"
    STOPPED = "stopped"  # the run stopped while the operation waited for admission
    OUTSIDE_WINDOW = "outside_window"  # the window closed (or the chain no longer fits) meanwhile


class HostChains:
    """Runs host chains; shares with them the run's admission, windows and cross-host waits."""

    def __init__(self, ctx: RunContext, rollback: Rollback, stopping: Stopping, live: LivePlan) -> None:
        self._ctx = ctx
        self._rollback = rollback
        self._stopping = stopping
        self._live = live
        self._active = 0  # host chains working (not waiting for a window)
        self._waiting = 0
        self._queued = 0  # operations waiting for runtime admission (their hosts inside a window)
        self._cross = _cross_host_predecessors(ctx.graph)
        self._done: dict[str, asyncio.Event] = {p: asyncio.Event() for ps in self._cross.values() for p in ps}

    async def run(self, host: str, wave: int, wave_size: int) -> None:
        """Run ``host``'s chain; revert it at once if the rollout stopped (and rolls back) meanwhile."""
        ctx = self._ctx
        ctx.in_chain.add(host)
        try:
            await self._chain(host, wave, wave_size)
        finally:  # whatever happened, operations others wait for are settled now
            # and its disruption-budget slot is free: a host admitted only to find the run stopped
            # must not keep the slot that hosts still waiting need to see the stop
            ctx.admission.host_done(host)
            ctx.in_chain.discard(host)
            for op_id in ctx.graph.chains.get(host, ()):
                event = self._done.get(op_id)
                if event is not None:
                    event.set()
        if host in self._rollback.scope and (host in ctx.tracker.changed_hosts or host.startswith("@")):
            await self._rollback.one(host)  # the rollout stopped while this host worked: revert it now

    async def _blocked_by(self, op: Operation) -> str | None:
        """Wait for the operation's cross-host predecessors; the first that did not succeed."""
        graph, records = self._ctx.graph, self._ctx.tracker.records
        for pred in self._cross.get(op.id, ()):
            await self._done[pred].wait()
            rec = records[pred]
            if rec.state is not OpState.SUCCEEDED and not _skipped_by_condition(rec):
                return graph.ops[pred].task + "@" + graph.ops[pred].host
        return None

    async def _chain(self, host: str, wave: int, wave_size: int) -> None:
        ctx = self._ctx
        ops = [ctx.graph.ops[i] for i in ctx.tracker.pending_ops(host)]
        if not ops:
            return
        if ctx.tracker.hosts.get(host) in (HostOutcome.FAILED, HostOutcome.ROLLED_BACK):
            self._skip_rest(ops, "host failed before the interruption")
            return
        started = False
        window: OpenWindow | None = None
        k = 0
        while k < len(ops):
            op, rest = ops[k], ops[k:]
            if self._must_not_start(started):
                self._skip_rest(rest, f"not started: {ctx.control.stop_reason}")
                return
            window = await self._admit_window(host, rest, window)
            if window is None:
                ctx.tracker.skip([o.id for o in rest], "deferred: no window fits", OpState.PENDING)
                ctx.tracker.set_host(host, HostOutcome.DEFERRED)
                return
            if not ctx.control.resume.is_set():
                await ctx.control.resume.wait()
            blocked = await self._blocked_by(op) if op.id in self._cross else None
            if blocked:
                self._skip_rest(rest, f"{blocked} did not succeed")
                if started:
                    self._stopping.host_failed(host, wave, wave_size)
                return
            outcome = await self._run_op(op, window, rest, started)
            if op.id in self._done and outcome in (_Outcome.OK, _Outcome.FAILED):
                self._done[op.id].set()
            if outcome is _Outcome.STOPPED:
                self._skip_rest(rest, f"not started: {ctx.control.stop_reason}")
                return
            if outcome is _Outcome.OUTSIDE_WINDOW:  # admission took us past the cutoff: next window
                window = None
                continue
            started = True
            if outcome is _Outcome.FAILED:
                self._skip_rest(ops[k + 1 :], f"{op.task} failed")
                self._stopping.host_failed(host, wave, wave_size)
                break
            k += 1
        else:
            if await self._verified(host):
                ctx.tracker.set_host(host, HostOutcome.SUCCEEDED)
            else:
                self._stopping.host_failed(host, wave, wave_size)

    def _must_not_start(self, host_started: bool) -> bool:
        """After a stop, hosts not yet started stay untouched; a cancel also ends started chains."""
        control = self._ctx.control
        return control.stopped and (not host_started or control.cancelled or bool(self._rollback.scope))

    def _skip_rest(self, ops: Sequence[Operation], reason: str) -> None:
        self._ctx.tracker.skip([o.id for o in ops], reason)

    async def _verified(self, host: str) -> bool:
        hooks = self._ctx.hooks
        if hooks is None:
            return True
        reasons = await hooks.host_done(host)
        passed = not reasons
        self._ctx.tracker.emit(EventKind.VERIFICATION, "; ".join(reasons), host=host, passed=passed)
        return passed

    # -- windows and admission --------------------------------------------------------------------

    async def _admit_window(
        self, host: str, rest: list[Operation], current: OpenWindow | None
    ) -> OpenWindow | None:
        guard = self._ctx.guard
        now = self._ctx.clock.now()
        if current is not None and current.may_start(now):
            return current
        predicted = sum(self._predict(o) for o in rest)
        if guard.admitting(host, predicted, now) is None:
            self._waiting += 1
            self._maybe_paused()
            try:
                return await guard.wait(host, predicted)
            finally:
                self._waiting -= 1
        return guard.admitting(host, predicted, now)

    def _maybe_paused(self) -> None:
        ctx = self._ctx
        if self._active == 0 and self._waiting > 0 and ctx.status is RunStatus.RUNNING:
            ctx.set_status(RunStatus.PAUSED, "waiting for the next maintenance window")
            ctx.tracker.emit(EventKind.WINDOW_CLOSED, "no host may start now: waiting for the next window")

    async def _run_op(
        self, op: Operation, window: OpenWindow, rest: Sequence[Operation], host_started: bool
    ) -> _Outcome:
        """Acquire admission, re-check stop and window (the wait may have been long), run."""
        ctx = self._ctx
        queued_at = ctx.clock.now() if ctx.tracker.bus.listening else None
        self._queued += 1
        try:
            grant = await ctx.admission.acquire(op)
        finally:
            self._queued -= 1
        if self._must_not_start(host_started):
            ctx.admission.release(grant)
            return _Outcome.STOPPED
        if not self._still_inside(window, rest, host_started):
            ctx.admission.release(grant)
            return _Outcome.OUTSIDE_WINDOW
        self._active += 1
        if queued_at is not None:  # its fields cost more than the rest of the admission: only when heard
            waited = round((ctx.clock.now() - queued_at).total_seconds(), 3)
            window_end = window.end.isoformat() if window.end < ALWAYS.end else None
            ctx.tracker.emit(EventKind.OP_PROGRESS, "admitted", host=op.host, task=op.task, wave=op.wave,
                             step="admitted", waited=waited, queued=self._queued, window_end=window_end)  # fmt: skip
        if ctx.status is RunStatus.PAUSED and ctx.control.resume.is_set():
            ctx.set_status(RunStatus.RUNNING, "window open")
            ctx.tracker.emit(EventKind.WINDOW_OPENED, "a window opened", host=op.host)
        try:
            return _Outcome.OK if await self._run_admitted(op, window) else _Outcome.FAILED
        finally:
            self._active -= 1
            ctx.admission.release(grant)
            self._maybe_paused()

    def _still_inside(self, window: OpenWindow, rest: Sequence[Operation], host_started: bool) -> bool:
        now = self._ctx.clock.now()  # the admission wait may have reached the cutoff or the end: exclusive
        if host_started or self._ctx.guard.split_chains or window.end >= ALWAYS.end:
            return window.may_start(now)  # (a window that never ends fits any chain: no prediction)
        return window.admits(now, sum(self._predict(o) for o in rest))

    def _predict(self, op: Operation) -> float:
        """Seconds ``op`` is expected to take: learned (p50) when a model is given, else the prior."""
        ctx = self._ctx
        if op.id in ctx.estimate:
            return ctx.estimate[op.id]
        if ctx.durations is not None:
            return float(ctx.durations.seconds(op.task, op.group, 0.5))
        return op.expected_duration

    # -- one admitted operation -------------------------------------------------------------------

    async def _run_admitted(self, op: Operation, window: OpenWindow) -> bool:
        ctx = self._ctx
        prepared = await self._prepare(op) if ctx.conditional is not None else None
        if prepared is not None and prepared.skip is not None:
            ctx.tracker.skip([op.id], prepared.skip)
            assert ctx.conditional is not None
            ctx.conditional.register(op.host, op.task, None)
            return True
        if prepared is not None and prepared.error is not None:
            ctx.tracker.finished(
                OpRecord(op.id, op.host, op.task, op.wave, OpState.FAILED, op.command, error=prepared.error)
            )
            return False
        recorded = op.command if prepared is None else prepared.recorded
        if ctx.hooks is not None:
            ctx.tracker.emit(
                EventKind.OP_PROGRESS, "capturing state", host=op.host, task=op.task, step="capture"
            )
            await ctx.hooks.before(op.host, op.task)
        policy = ctx.workflow.on_window_expiry
        limit = None  # no window end to stop at: no timer per operation
        if policy is not ExpiryPolicy.FINISH and window.end < ALWAYS.end:
            limit = max((window.end - ctx.clock.now()).total_seconds(), 0.0)

        def on_start(attempt: int) -> None:
            ctx.tracker.started(op.id, recorded, attempt)

        ctx.tracker.will_start(op.id, recorded)
        if ctx.recorder.store is not None:  # write-ahead: the store knows it runs before it is sent
            await ctx.recorder.durable()

        if limit is None:
            return await self._finished(op, await self._execute(op, prepared, on_start))
        try:
            async with asyncio.timeout(limit):
                record = await self._execute(op, prepared, on_start)
        except TimeoutError:
            await self._stopped_at_window_end(op, window, policy)
            return False
        return await self._finished(op, record)

    async def _stopped_at_window_end(self, op: Operation, window: OpenWindow, policy: ExpiryPolicy) -> None:
        """The window ended under the running operation: its outcome is unknown (re-check first)."""
        ctx = self._ctx
        await self._past(window.end)  # its slot frees no earlier than the end, on every clock
        ctx.tracker.finished(  # recorded and announced like any other end of an operation
            replace(
                ctx.tracker.records[op.id],
                state=OpState.UNKNOWN,
                end=ctx.clock.now(),
                error=f"stopped at window end (on_window_expiry: {policy.value})",
                reason="stopped at window end; re-check before repeating",
            )
        )
        ctx.tracker.emit(
            EventKind.WINDOW_CLOSED, f"{op.task} stopped at window end", host=op.host, task=op.task
        )
        if policy is ExpiryPolicy.ROLLBACK:
            self._stopping.stop("window closed: rolling back", op.wave)

    async def _finished(self, op: Operation, record: OpRecord) -> bool:
        """Record the operation's end, learn its duration, maybe re-plan; verify it when it succeeded."""
        ctx = self._ctx
        ctx.tracker.finished(record)
        if ctx.durations is not None:
            # one attempt's duration: a retried operation's time is replayed from its attempts
            if record.state is OpState.SUCCEEDED and record.duration is not None and record.attempts <= 1:
                ctx.durations.observe(op.task, op.group, record.duration)
            if record.attempts:
                failed = record.attempts - (record.state is OpState.SUCCEEDED)
                ctx.durations.observe_attempts(op.task, op.group, record.attempts, failed)
        if ctx.replanner is not None:
            ctx.replanner.observe(record)
            self._live.maybe_replan(boundary=False)
        if record.state is not OpState.SUCCEEDED:
            return False
        if ctx.hooks is not None:
            await ctx.hooks.after(op.host, op.task)
        return True

    async def _past(self, when: datetime) -> None:
        """Return once the clock reads ``when`` or later. A real clock may read a hair before the end
        when the end's timer fires; the grant released after an abort must not let a waiting
        operation start "before the end" then."""
        clock = self._ctx.clock
        while (left := (when - clock.now()).total_seconds()) > 0:
            await clock.sleep(max(left, 0.001))

    async def _prepare(self, op: Operation) -> Prepared | None:
        """Condition and rendered command of a conditional workflow's operation (None: run as is)."""
        cond = self._ctx.conditional
        if cond is None:
            return None
        return await cond.prepare(self._ctx.target(op))

    async def _execute(
        self, op: Operation, prepared: Prepared | None, on_start: Callable[[int], None]
    ) -> OpRecord:
        ctx = self._ctx
        cond = ctx.conditional
        if prepared is None or cond is None:
            return await ctx.runner.run_op(ctx.target(op), op.command, on_start)
        record = await cond.execute(ctx.runner, ctx.target(op), prepared, on_start, ctx.tracker)
        return cond.redact(record, prepared)


def _skipped_by_condition(rec: OpRecord) -> bool:
    """A `when` that was false: what depends on it goes on, as if it had run."""
    return rec.state is OpState.SKIPPED and rec.reason.startswith(CONDITION_FALSE)


def _cross_host_predecessors(graph: OpGraph) -> dict[str, tuple[str, ...]]:
    """Per operation, its predecessors on other hosts (run-once hooks and what they wait for)."""
    ops = graph.ops
    cross: dict[str, tuple[str, ...]] = {}
    for op_id, op in ops.items():
        preds = [p for p in graph.predecessors(op_id) if p in ops and ops[p].host != op.host]
        if preds:
            cross[op_id] = tuple(preds)
    return cross
