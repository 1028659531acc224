"""The plan a run follows now, and the host order it gives; swapped when re-planning finds better."""

from __future__ import annotations

from collections.abc import Sequence

from sysflow.engine.context import RunContext
from sysflow.engine.events import EventKind
from sysflow.planner.plan import Plan

__all__ = ["LivePlan"]


class LivePlan:
    """The current plan and host ranking; asks the replanner (when there is one) for a better plan."""

    def __init__(self, ctx: RunContext, plan: Plan | None, order: Sequence[str] | None) -> None:
        self._ctx = ctx
        self.plan = plan
        if order is None and ctx.replanner is not None:
            order = ctx.replanner.rank()
        self._rank = {h: i for i, h in enumerate(order or ())}

    def ordered(self, hosts: Sequence[str]) -> list[str]:
        """``hosts`` in the plan's start order (hosts it does not rank go last, in their order)."""
        rank = self._rank
        return sorted(hosts, key=lambda h: rank.get(h, len(rank)))

    def maybe_replan(self, *, boundary: bool) -> None:
        """Re-plan the rest when due (at a wave boundary, or on drift); keep the new plan if better."""
        ctx = self._ctx
        replanner = ctx.replanner
        if replanner is None or not replanner.due(boundary=boundary):
            return
        swap = replanner.replan(ctx.tracker.records, ctx.durations, ctx.clock.now(), boundary=boundary)
        if swap is None:
            return
        self.plan = swap.plan
        self._rank = {h: i for i, h in enumerate(replanner.rank())}
        ctx.recorder.add_plan(swap.plan, swap.reason)
        ctx.tracker.emit(
            EventKind.PLAN_REPLACED, swap.reason, version=replanner.versions, seconds=round(swap.seconds, 4)
        )
