"""Resume: operations that were running when the run stopped are settled, checked, re-run or failed.

At most once: an operation recorded as running may have run (its record is written before its
command is sent), so it is sent again only when the task is ``idempotent``. Before its check runs,
its command is settled on the host (found by its id, waited for or stopped), so the check never
races a command the crashed controller left running.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from sysflow.engine.context import RunContext
from sysflow.engine.events import EventKind
from sysflow.engine.states import OpState
from sysflow.planner.graph import Operation
from sysflow.transport import OP_STARTED_VAR

__all__ = ["RECHECK_PARALLELISM", "Recheck"]

RECHECK_PARALLELISM = 64  # interrupted operations settled and re-checked side by side


class Recheck:
    """Decides, for each interrupted operation of a resumed run, whether it is done, re-run, or failed."""

    def __init__(self, ctx: RunContext) -> None:
        self._ctx = ctx

    async def run(self) -> None:
        """Settle, check, re-run if idempotent, or fail every interrupted operation; then commit."""
        ctx = self._ctx
        interrupted = [
            ctx.graph.ops[rec.op_id]
            for rec in ctx.tracker.records.values()
            if rec.state in (OpState.RUNNING, OpState.UNKNOWN)
        ]
        gate = asyncio.Semaphore(RECHECK_PARALLELISM)

        async def one(op: Operation) -> None:
            async with gate:
                verdict = await self._recheck(op)
            ctx.tracker.emit(EventKind.OP_PROGRESS, verdict, host=op.host, task=op.task, step="recheck")

        async with asyncio.TaskGroup() as tg:
            for op in interrupted:
                tg.create_task(one(op))
        ctx.recorder.commit()

    async def _recheck(self, op: Operation) -> str:
        """The verdict on one interrupted operation (its record changed to match)."""
        failed = await self._settle(op)
        if failed is not None:
            return failed
        ctx = self._ctx
        if op.check:
            # the check may ask when the operation started (a reboot: booted since?)
            started = ctx.tracker.records[op.id].start
            since = (
                f"{OP_STARTED_VAR}={int(started.timestamp())}; export {OP_STARTED_VAR}\n" if started else ""
            )
            command = since + op.check
            probe = replace(op, id=f"check:{op.id}", task=f"check:{op.task}", command=command, retries=0)
            record = await ctx.runner.run_op(ctx.target(probe), command, lambda attempt: None)
            if record.state is OpState.SUCCEEDED:
                ctx.tracker.mark(op.id, OpState.SUCCEEDED, "interrupted; its check shows it took effect")
                return "re-checked: done"
        if op.idempotent:  # not done (or no check to say so), and repeating is safe
            rec = ctx.tracker.records[op.id]
            ctx.tracker.records[op.id] = replace(
                rec, state=OpState.PENDING, reason="interrupted; idempotent: re-run"
            )
            return "idempotent: will re-run"
        why = (
            "its check says it did not take effect and it is not idempotent: inspect the host"
            if op.check
            else "not idempotent and no check command: inspect the host"
        )
        return self._failed(op, why)

    async def _settle(self, op: Operation) -> str | None:
        """Settle the operation's command on its host; the failed verdict when that cannot be done."""
        ctx = self._ctx
        settle = ctx.restored.settle if ctx.restored is not None else None
        if settle is None:
            return None
        try:
            settled = await settle(ctx.target(op))
        except Exception as exc:  # unreachable host, refused: the command may still be running
            return self._failed(op, f"cannot tell whether its command still runs ({exc}): inspect the host")
        if settled is not None and settled.running:
            return self._failed(
                op, "its command still runs on the host and could not be stopped: inspect the host"
            )
        if settled is not None and settled.found:
            how = "stopped" if settled.stopped else f"ended after {settled.waited:g}s"
            ctx.tracker.emit(
                EventKind.OP_PROGRESS,
                f"interrupted command was still running; {how}",
                host=op.host,
                task=op.task,
                step="settle",
            )
        return None

    def _failed(self, op: Operation, why: str) -> str:
        """An interrupted operation that cannot be run again: failed, the rest of its host skipped."""
        ctx = self._ctx
        ctx.tracker.mark(op.id, OpState.FAILED, f"interrupted while running; {why}")
        ctx.tracker.skip([o for o in ctx.graph.chains.get(op.host, ()) if o != op.id], "host interrupted")
        if not op.host.startswith("@"):
            ctx.tracker.host_failed(op.host, op.wave)
        return f"failed: {why}"
