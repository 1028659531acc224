"""The rollout: waves one after another (or sliding, without barriers), approvals, state checks, gates.

Host chains of a wave run as tasks of one task group. Between waves come the pause, the approval
(when the rollout asks for one), the state checks and a re-plan; after each wave its gate
(verification, analysis, state checks, canary bake) decides whether the rollout goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from sysflow.engine.analysis import measure
from sysflow.engine.chain import HostChains
from sysflow.engine.context import RunContext
from sysflow.engine.events import EventKind
from sysflow.engine.replanning import LivePlan
from sysflow.engine.result import HostOutcome
from sysflow.engine.rollback import Rollback
from sysflow.engine.state import StateVerdict
from sysflow.engine.states import RunStatus
from sysflow.engine.stopping import Stopping
from sysflow.model.state_checks import CheckPoint
from sysflow.model.workflow import GateMode

__all__ = ["Rollout"]


class Rollout:
    """Runs the waves of a run and judges each; stops (through ``Stopping``) when one fails."""

    def __init__(self, ctx: RunContext, rollback: Rollback, stopping: Stopping, live: LivePlan) -> None:
        self._ctx = ctx
        self._stopping = stopping
        self._live = live
        self._chains = HostChains(ctx, rollback, stopping, live)
        self.gates: list[dict[str, Any]] = []  # every gate verdict, in order, for the result

    async def run(self) -> None:
        """Every wave, or the sliding rollout, until done or stopped."""
        ctx = self._ctx
        sliding = ctx.workflow.rollout.mode is GateMode.SLIDING
        if sliding:
            await self._run_sliding()
        for wave, hosts in enumerate(() if sliding else ctx.graph.waves):
            if ctx.stopped:
                break
            ctx.recorder.set_position(wave)
            if wave > 0 and not await self._before_wave(wave):
                break
            if not await self._state_allows(wave, hosts):
                continue
            self._live.maybe_replan(boundary=True)
            await self._run_wave(wave, hosts)
            if not ctx.stopped:
                await self._gate(wave, hosts)

    async def _run_wave(self, wave: int, hosts: Sequence[str]) -> None:
        ctx = self._ctx
        ctx.tracker.emit(
            EventKind.WAVE_STARTED, f"wave {wave + 1}: {len(hosts)} hosts", wave=wave, hosts=len(hosts)
        )
        async with asyncio.TaskGroup() as tg:
            for host in [*self._live.ordered(hosts), *ctx.hooks_of_wave.get(wave, [])]:
                tg.create_task(self._chains.run(host, wave, len(hosts)))
        self._wave_finished(wave, hosts)

    async def _run_sliding(self) -> None:
        """Sliding mode (AWS Run Command's MaxConcurrency): no barrier between waves; hosts start in
        wave order as capacity frees, failures still count per wave and against the budget; one gate
        at the end over every host."""
        ctx = self._ctx
        hosts = ctx.graph.hosts
        ctx.tracker.emit(EventKind.WAVE_STARTED, f"sliding: {len(hosts)} hosts", wave=0, hosts=len(hosts))
        async with asyncio.TaskGroup() as tg:
            for wave, members in enumerate(ctx.graph.waves):
                for host in [*self._live.ordered(members), *ctx.hooks_of_wave.get(wave, [])]:
                    tg.create_task(self._chains.run(host, wave, len(members)))
        self._wave_finished(0, hosts, sliding=True)
        if not ctx.stopped and ctx.graph.waves:
            await self._gate(len(ctx.graph.waves) - 1, hosts)

    def _wave_finished(self, wave: int, hosts: Sequence[str], *, sliding: bool = False) -> None:
        """WAVE_FINISHED, counting the hosts of the wave that failed in it (those counted against its
        threshold, and any whose outcome is failed now, e.g. a failed rollback), from the records."""
        tracker = self._ctx.tracker
        waves = range(len(self._ctx.graph.waves)) if sliding else [wave]
        failed = {h for w in waves for h in tracker.failed_in_wave.get(w, ())}
        failed |= {h for h in hosts if tracker.hosts.get(h) is HostOutcome.FAILED}
        names = sorted(h for h in failed if not h.startswith("@"))
        tracker.emit(
            EventKind.WAVE_FINISHED,
            f"{len(names)} of {len(hosts)} host(s) failed",
            wave=wave,
            failed=len(names),
            failed_hosts=names,
            hosts=len(hosts),
        )

    # -- between waves ----------------------------------------------------------------------------

    async def _before_wave(self, wave: int) -> bool:
        ctx = self._ctx
        rollout = ctx.workflow.rollout
        if rollout.pause_between_waves:
            await ctx.clock.sleep(rollout.pause_between_waves)
        if rollout.needs_approval(wave + 1):
            return await self._await_approval(wave)
        return not ctx.stopped

    async def _state_allows(self, wave: int, hosts: Sequence[str]) -> bool:
        """State checks before a wave: proceed (maybe after holding, maybe throttled), skip, or stop."""
        ctx = self._ctx
        if ctx.state is None:
            return True
        decision = await ctx.state.evaluate(
            CheckPoint.BEFORE_WAVE, wave, hosts, ctx.tracker.emit, self._set_capacity()
        )
        if decision.verdict is StateVerdict.SKIP and decision.groups is not None:
            wanted = set(decision.groups)
            for host in hosts:
                chain = ctx.graph.chains.get(host, ())
                if chain and wanted & set(ctx.graph.ops[chain[0]].groups):
                    ctx.tracker.skip(chain, f"group skipped: {decision.reason}")
            return True
        if decision.verdict is StateVerdict.SKIP:
            for host in [*hosts, *ctx.hooks_of_wave.get(wave, [])]:
                ctx.tracker.skip(ctx.graph.chains.get(host, ()), f"wave skipped: {decision.reason}")
            return False
        if decision.verdict is StateVerdict.STOP:
            self._stopping.stop(f"before wave {wave + 1}: {decision.reason}")
            return False
        return True

    def _set_capacity(self) -> Callable[[str, float], None] | None:
        setter = getattr(self._ctx.admission, "set_capacity", None)
        return setter if callable(setter) else None

    async def _await_approval(self, wave: int) -> bool:
        ctx, control = self._ctx, self._ctx.control
        if ctx.restored is not None and ctx.restored.gates.get((wave, "approval"), (None,))[0]:
            return True  # approved before the interruption
        ctx.set_status(RunStatus.PAUSED, f"waiting for approval of wave {wave + 1}")
        ctx.tracker.emit(EventKind.APPROVAL_REQUESTED, f"approve wave {wave + 1}", wave=wave)
        while not ({wave + 1, -1} & control.approvals) and not control.cancelled:
            control.approved.clear()
            await control.approved.wait()
        control.approvals.discard(-1)
        if control.cancelled:
            return False
        ctx.tracker.emit(EventKind.APPROVAL_GIVEN, f"wave {wave + 1} approved", wave=wave)
        ctx.recorder.gate(wave, "approval", True, [])
        if control.resume.is_set():  # else an operator paused it meanwhile: it stays paused until resumed
            ctx.set_status(RunStatus.RUNNING, "approved")
        return True

    # -- gates ------------------------------------------------------------------------------------

    async def _gate(self, wave: int, hosts: Sequence[str]) -> None:
        ctx = self._ctx
        if ctx.restored is not None and ctx.restored.gates.get((wave, "gate"), (None,))[0]:
            return  # this gate passed before the interruption
        passed, reasons = await self._verdict(wave, hosts)
        self.gates.append({"wave": wave, "passed": passed, "reasons": reasons})
        ctx.recorder.gate(wave, "gate", passed, reasons)
        ctx.tracker.emit(
            EventKind.GATE_EVALUATED,
            "; ".join(reasons),
            wave=wave,
            passed=passed,
            failures=ctx.tracker.failures(wave),
        )
        # failed, or inconclusive: a gate that cannot decide does not let the rollout go on
        if passed is not True:
            word = "failed" if passed is False else "was inconclusive"
            self._stopping.stop(f"gate after wave {wave + 1} {word}: {'; '.join(reasons)}", wave)

    async def _verdict(self, wave: int, hosts: Sequence[str]) -> tuple[bool | None, list[str]]:
        """Verification, analysis and state checks of a wave (then the canary's bake when it passed)."""
        ctx = self._ctx
        rollout = ctx.workflow.rollout
        reasons: list[str] = []
        passed: bool | None = True
        if ctx.hooks is not None:
            passed, reasons = await ctx.hooks.gate(wave, hosts)
        for check in rollout.analysis:
            metric = await measure(check, ctx.runner.run_op, ctx.clock, wave, hosts)
            reasons = [*reasons, metric.reason]
            if metric.passed is not True and passed is not False:
                passed = metric.passed
        bake = rollout.canary_bake if wave == 0 and rollout.strategy == "canary" else 0.0
        if passed is not False and ctx.state is not None:
            decision = await ctx.state.evaluate(
                CheckPoint.GATE, wave, hosts, ctx.tracker.emit, self._set_capacity()
            )
            if decision.verdict is not StateVerdict.PROCEED:
                passed, reasons = False, [*reasons, decision.reason]
        if bake and passed:
            await ctx.clock.sleep(bake)
        return passed, reasons
