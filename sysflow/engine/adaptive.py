"""Adaptive re-planning: keep the plan in step with what the run measures.

The run plans once before it starts (greedy; the order hosts are dispatched in and ``result.plan``).
As operations finish, :class:`Replanner` compares measured durations with the planned ones; when
they drift beyond ``deviation`` (both ways), it re-plans what has not started (``planner.replan``:
finished and running operations never move), checks the new plan against every constraint from
scratch, and only then swaps it in. Each version is recorded with the reason.

Re-plans happen at wave boundaries (the next wave is dispatched in the new plan's order) and every
``every`` finished operations inside a long wave (the forecast and the learned durations follow;
hosts already waiting for admission keep their first-come order).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sysflow.engine.result import OpRecord
from sysflow.engine.states import OpState
from sysflow.planner.durations import DurationModel

if TYPE_CHECKING:
    from sysflow.planner.check import Violation
    from sysflow.planner.plan import Plan

__all__ = ["DEFAULT_DEVIATION", "Replanner", "Swap"]

log = logging.getLogger(__name__)

DEFAULT_DEVIATION = 0.25  # re-plan when measured/planned durations drift by more than 25 %
DEFAULT_EVERY = 500  # finished operations between two checks inside a wave
MIN_SAMPLES = 5  # finished operations needed before a drift means anything
LOG_SPREAD = 0.5  # a task's typical spread of log(seconds) across hosts: the noise a small sample carries


@dataclass(frozen=True, slots=True)
class Swap:
    """A re-plan that was swapped in: why, how long it took, the new plan."""

    reason: str
    seconds: float
    plan: Plan


class Replanner:
    """Watches planned against measured durations and re-plans when they part."""

    def __init__(
        self, plan: Plan, *, deviation: float = DEFAULT_DEVIATION, every: int = DEFAULT_EVERY
    ) -> None:
        self.plan = plan
        self.deviation = deviation
        self.every = every
        # where each operation sits (its host's chain, its index): the same in every version of
        # the plan, so a re-plan swaps only the chains whose durations it reads
        self._where = {op: (c.host, i) for c in plan.problem.chains for i, op in enumerate(c.ops)}
        self._chains = plan.problem.by_host
        self._sums: dict[str, list[float]] = {}  # group -> [planned, measured, count] since the last plan
        self._observed = 0  # operations observed since the last plan (the sum of the counts)
        self.versions = 1

    def rank(self) -> list[str]:
        """Hosts in the order the current plan starts them (deferred ones last)."""
        starts = self.plan.assignment.starts
        return sorted(starts, key=lambda h: starts[h][0] if starts[h] else 0)

    def observe(self, record: OpRecord) -> None:
        where = self._where.get(record.op_id)
        if where is None or record.duration is None or record.state is not OpState.SUCCEEDED:
            return
        chain = self._chains.get(where[0])
        if chain is None:
            return
        sums = self._sums.setdefault(chain.group, [0.0, 0.0, 0])
        sums[0] += chain.durations[where[1]]
        # the planner counts whole seconds (a 0.3 s command is planned as 1 s): measure the same way,
        # or every sub-second task reads as a drift that no re-plan can fix
        sums[1] += math.ceil(record.duration - 1e-9)
        sums[2] += 1
        self._observed += 1

    @property
    def drift(self) -> float:
        """The largest drift of a group: measured over planned seconds since the last plan (1.0 = on plan)."""
        return self._worst()[0]

    def _worst(self) -> tuple[float, float]:
        """The drift of the group that parts most from the plan beyond what its sample's own noise
        explains (two standard errors of a mean of ``count`` log-normal durations), and by how much
        (in log space): five quick hosts are not a trend, five hundred are."""
        worst, worst_excess = 1.0, 0.0
        for planned, measured, count in self._sums.values():
            if count < MIN_SAMPLES or planned <= 0 or measured <= 0:
                continue
            ratio = measured / planned
            excess = abs(math.log(ratio)) - 2 * LOG_SPREAD / math.sqrt(count)
            if excess > worst_excess:
                worst, worst_excess = ratio, excess
        return worst, worst_excess

    @property
    def _count(self) -> int:
        return int(sum(s[2] for s in self._sums.values()))

    def due(self, *, boundary: bool) -> bool:
        """Whether to re-plan now; called after every operation, so the cheap test comes first."""
        if not boundary and self._observed < self.every:
            return False
        return self._worst()[1] > math.log1p(self.deviation)

    def _backoff(self, accepted: bool) -> None:
        """Each re-plan inside a wave waits twice as many operations as the last (a rejected one, four
        times): at scale a re-plan costs seconds, and a drift that re-planning cannot fix must not loop."""
        self.every *= 2 if accepted else 4

    def replan(
        self,
        records: Mapping[str, OpRecord],
        durations: DurationModel | None,
        now: datetime,
        *,
        boundary: bool = False,
    ) -> Swap | None:
        """Re-plan the rest; the new plan only if it passes the independent check.

        Inside a wave the hosts waiting for admission keep their first-come order, so the re-plan
        keeps the dispatch rule the run follows; at a wave ``boundary`` greedy tries its portfolio
        again (the next wave starts in the new plan's order)."""
        from sysflow.planner.check import check
        from sysflow.planner.greedy import DispatchRule
        from sysflow.planner.replan import replan

        t0 = time.perf_counter()
        # What already ran is fact, not plan: measured times may break the old estimates (an overrun
        # past a window end, one-second rounding between measured operations). Judge the new part.
        started = {r.host for r in records.values() if r.start is not None}
        if all(c.host in started for c in self.plan.problem.chains):
            self._reset(self.plan)  # every host has started: nothing is left to place differently
            return None
        done = {i: (r.start, r.end) for i, r in records.items() if r.state.done and r.start and r.end}
        running = {i: r.start for i, r in records.items() if r.state is OpState.RUNNING and r.start}
        group = max(self._sums, key=lambda g: abs(self._sums[g][1] / max(self._sums[g][0], 1e-9) - 1.0))
        reason = (
            f"measured durations are {self.drift:.2f}x the plan in group {group} ({self._count} operations)"
        )
        try:
            rules = (DispatchRule(self.plan.rule),) if self.plan.rule and not boundary else None
            new = replan(self.plan, done, running, durations, now, rules=rules)
            _ = new.score  # scored here (the store records it): e.g. a resumed run's plan, whose
            # origin is the resume, cannot score hosts finished before it; keep the current plan
        except Exception:  # a planner bug must not stop the run: keep the current plan
            log.exception("re-planning failed; keeping plan version %d", self.versions)
            self._reset(self.plan)
            self._backoff(accepted=False)
            return None
        now_s = math.ceil((now - new.origin).total_seconds())
        violations = _new_violations(check, new, started, now_s)
        self._reset(new)
        self._backoff(accepted=not violations)
        if violations:
            log.info("re-plan rejected: %d violations (first: %s)", len(violations), violations[0])
            return None
        self.plan = new
        self.versions += 1
        return Swap(reason, time.perf_counter() - t0, new)

    def _reset(self, plan: Plan) -> None:
        self._chains = plan.problem.by_host
        self._sums = {}
        self._observed = 0


def _new_violations(
    check: Callable[..., list[Violation]], plan: Plan, started: set[str], now: int | None = None
) -> list[Violation]:
    """Violations the re-planned hosts cause; what the started hosts alone already break is fact,
    and so is what ended by ``now`` (seconds of the plan)."""
    from sysflow.planner.solution import Assignment

    # a started host's own violations are what it did (measured gaps, overruns): never the re-plan's
    found = check(plan.problem, plan, skip_hosts=started, after=now)
    found = [v for v in found if v.host is None or v.host not in started]
    if not any(v.host is None for v in found):  # nothing the started hosts alone may already break
        return found
    a = plan.assignment
    fixed_only = Assignment(
        {h: st for h, st in a.starts.items() if h in started},
        {**dict(a.deferred), **{h: "re-planned" for h in a.starts if h not in started}},
    )
    baseline = {str(v) for v in check(plan.problem, fixed_only, skip_hosts=started, after=now)}
    return [v for v in found if str(v) not in baseline]
