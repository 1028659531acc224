"""Rollback of a stopped rollout: its scope, the switch-back of run-once hooks, each host's revert.

Rollback starts the moment the rollout stops: an idle changed host at once, a busy one as soon as
its current operation ends (its chain starts nothing new and hands it over). Hooks (a blue-green
cut-over) switch back first, once, before any host is reverted.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from sysflow.engine.context import RunContext
from sysflow.engine.events import EventKind
from sysflow.engine.result import HostOutcome, OpRecord
from sysflow.engine.states import OpState
from sysflow.model.workflow import RollbackScope
from sysflow.planner.graph import Operation

__all__ = ["DEFAULT_ROLLBACK_PARALLELISM", "Rollback"]

DEFAULT_ROLLBACK_PARALLELISM = 20  # hosts rolled back at once when the workflow sets no limit


class Rollback:
    """Reverts the changed hosts (and hooks) of the waves in scope, each once."""

    def __init__(self, ctx: RunContext) -> None:
        self._ctx = ctx
        self.scope: set[str] = set()  # hosts and hooks to revert; empty until the rollout stops
        self._tasks: list[asyncio.Task[None]] = []
        self._rolled: set[str] = set()
        self._sem = asyncio.Semaphore(
            ctx.workflow.parallelism.max_parallel_servers or DEFAULT_ROLLBACK_PARALLELISM
        )
        self._hooks_lock = asyncio.Lock()

    def _scope_of(self, failed_wave: int) -> set[str]:
        ctx = self._ctx
        scope = ctx.workflow.rollout.rollback_scope
        waves = range(failed_wave + 1) if scope is RollbackScope.ALL else [failed_wave]
        return {h for w in waves for h in [*ctx.graph.waves[w], *ctx.hooks_of_wave.get(w, [])]}

    def begin(self, failed_wave: int) -> None:
        """Called when the rollout stops with auto_rollback: announce, then revert idle hosts now."""
        ctx = self._ctx
        self.scope = self._scope_of(failed_wave)
        in_scope = self.scope
        hosts = [h for h in reversed(ctx.tracker.changed_hosts) if h in in_scope]
        missing = sorted(
            {
                ctx.graph.ops[r.op_id].task
                for r in ctx.tracker.records.values()
                if r.host in in_scope and r.start is not None and not ctx.graph.ops[r.op_id].rollback
            }
        )
        ctx.tracker.emit(
            EventKind.ROLLBACK_STARTED,
            f"rolling back {len(hosts)} hosts"
            + (f"; no rollback command for: {', '.join(missing)}" if missing else ""),
            wave=failed_wave,
            hosts=hosts,
            missing_rollback=missing,
        )
        for host in hosts:
            if host not in ctx.in_chain:
                self._tasks.append(asyncio.create_task(self.one(host)))

    async def one(self, host: str) -> None:
        """Revert ``host`` (after the hooks in scope switched back), unless done already."""
        if host in self._rolled:
            return
        self._rolled.add(host)
        await self._switch_back()
        async with self._sem:
            await self._host(host)

    async def _switch_back(self) -> None:
        """Roll back the run-once hooks in scope (once), before any host is reverted."""
        async with self._hooks_lock:
            hooks = [h for h in self._hooks_in_wave_order() if h in self.scope and h not in self._rolled]
            for hook in reversed(hooks):
                self._rolled.add(hook)
                await self._host(hook)

    def _hooks_in_wave_order(self) -> list[str]:
        of_wave = self._ctx.hooks_of_wave
        return [h for w in sorted(of_wave) for h in of_wave[w]]

    async def finish(self, failed_wave: int) -> None:
        """After the waves: revert every changed host in scope not reverted yet, then report."""
        if not self.scope:
            self.begin(failed_wave)
        await self._switch_back()
        for host in [h for h in reversed(self._ctx.tracker.changed_hosts) if h in self.scope]:
            self._tasks.append(asyncio.create_task(self.one(host)))
        await asyncio.gather(*self._tasks)
        hosts = sorted(h for h in self._rolled if not h.startswith("@"))
        self._ctx.tracker.emit(EventKind.ROLLBACK_FINISHED, "", wave=failed_wave, hosts=hosts)

    async def _host(self, host: str) -> None:
        """Run the rollback command of every operation that ran on ``host``, newest first."""
        ctx = self._ctx
        records = ctx.tracker.records
        ran = [
            ctx.graph.ops[i]
            for i in ctx.graph.chains.get(host, ())
            if records[i].start is not None
            and records[i].state in (OpState.SUCCEEDED, OpState.FAILED, OpState.UNKNOWN)
        ]
        all_ok = True
        for op in reversed(ran):
            if not op.rollback:
                continue
            rb = _rollback_op(ctx.target(op))
            record = await self._run(rb)
            ctx.tracker.emit(
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
                ctx.tracker.mark(op.id, OpState.ROLLED_BACK)
            else:
                all_ok = False
        ctx.tracker.set_host(host, HostOutcome.ROLLED_BACK if all_ok else HostOutcome.FAILED)

    async def _run(self, rb: Operation) -> OpRecord:
        """One rollback command, rendered (and its output masked) by a conditional workflow."""
        cond, runner = self._ctx.conditional, self._ctx.runner
        if cond is None:
            return await runner.run_op(rb, rb.command, lambda attempt: None)
        prepared = await cond.prepare(rb, rb.command)
        if prepared.error is not None:
            return OpRecord(
                rb.id, rb.host, rb.task, rb.wave, OpState.FAILED, rb.command, error=prepared.error
            )
        record = await runner.run_op(rb, prepared.command, lambda attempt: None)
        return cond.redact(record, prepared)


def _rollback_op(op: Operation) -> Operation:
    return replace(
        op, id=f"rollback:{op.id}", task=f"rollback:{op.task}", command=op.rollback or "", retries=0
    )
