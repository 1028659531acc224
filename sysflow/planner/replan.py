"""Re-planning: place again only what has not started; never move finished or running work.

Hosts whose first operation has started are *fixed*: their operations stay where they are and the
resources they hold become committed background usage. Every other host (not started, or deferred)
is re-planned from ``now`` on: its release is ``now``, or later when a fixed host of an earlier wave
of its stage ends later (plus the gate). The greedy repair is immediate; CP-SAT may then improve it
within its time limit, hinted by the repair. The result is feasible for the original problem.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sysflow.planner.greedy import DispatchRule, greedy
from sysflow.planner.problem import Chain, PlanningProblem, remaining_problem
from sysflow.planner.solution import Assignment, score

if TYPE_CHECKING:
    from sysflow.planner.durations import DurationModel
    from sysflow.planner.plan import Plan

__all__ = ["replan", "replan_assignment"]


def replan_assignment(
    problem: PlanningProblem,
    previous: Assignment,
    now: int,
    *,
    started: Mapping[str, tuple[int, ...]] | None = None,
    time_limit: float = 0.0,
    num_workers: int = 2,
    random_seed: int = 0,
    rules: Sequence[DispatchRule] | None = None,
) -> Assignment:
    """Keep the hosts that started (``started``, default: planned to start before ``now``) and
    re-plan the rest: greedy at once (with ``rules``, default greedy's portfolio), then CP-SAT for
    ``time_limit`` seconds if positive.

    Without ``started`` the rest of ``previous`` (a feasible plan of ``problem``) is itself a
    feasible completion, so the result is never worse than ``previous``."""
    return _repair(problem, previous, now, started, time_limit, num_workers, random_seed, rules)[0]


def _repair(
    problem: PlanningProblem,
    previous: Assignment,
    now: int,
    started: Mapping[str, tuple[int, ...]] | None,
    time_limit: float,
    num_workers: int,
    random_seed: int,
    rules: Sequence[DispatchRule] | None,
) -> tuple[Assignment, DispatchRule | None]:
    """:func:`replan_assignment`, and the dispatch rule of greedy's result (None: CP-SAT's order)."""
    fixed = dict(started) if started is not None else _started(previous, now)
    rest = remaining_problem(problem, fixed, now)
    result = greedy(rest, rules)
    a = result.assignment
    rule: DispatchRule | None = result.rule
    if time_limit > 0 and rest.chains:
        from sysflow.planner.cpsat import solve_cpsat

        a = solve_cpsat(
            rest, time_limit=time_limit, num_workers=num_workers, random_seed=random_seed, baseline=result
        ).assignment
        rule = None
    merged = Assignment({**fixed, **a.starts}, dict(a.deferred))
    if started is None and score(problem, previous) < score(problem, merged):
        return previous, None
    return merged, rule


def _started(previous: Assignment, now: int) -> dict[str, tuple[int, ...]]:
    return {h: s for h, s in previous.starts.items() if s[0] < now}


def _fixed_chain(
    plan: Plan,
    c: Chain,
    done: Mapping[str, tuple[datetime, datetime]],
    running: Mapping[str, datetime],
    now: int,
) -> tuple[Chain, tuple[int, ...]]:
    """A started host's chain with measured times where known and the rest (at ``c``'s durations,
    the current estimates) back to back from now."""
    starts: list[int] = []
    durations: list[int] = []
    t = 0
    for i, op in enumerate(c.ops):
        if op in done:
            # the same (monotonic) rounding for both ends keeps measured order: a task that started
            # when the previous one ended never appears to overlap it
            s, e = plan.seconds_of(done[op][0]), plan.seconds_of(done[op][1])
            d = max(0, e - s)
        elif op in running:
            s = plan.seconds_of(running[op])
            d = max(c.durations[i], now - s)
        else:
            s, d = max(t, now), c.durations[i]
        starts.append(s)
        durations.append(d)
        t = s + d
    return c.with_durations(tuple(durations)), tuple(starts)


def replan(
    plan: Plan,
    done: Mapping[str, tuple[datetime, datetime]],
    running: Mapping[str, datetime],
    durations: DurationModel | None,
    now: datetime,
    *,
    solver: str = "greedy",
    time_limit: float = 5.0,
    num_workers: int = 2,
    random_seed: int = 0,
    rules: Sequence[DispatchRule] | None = None,
) -> Plan:
    """Re-plan what has not started at ``now``; never move finished (``done``: op id -> start, end)
    or running (``running``: op id -> start) operations. Durations of the hosts still to place are
    re-estimated from ``durations`` (at the plan's quantile) when given, and so are the operations
    of started hosts that have not started yet. ``rules``: greedy's dispatch rules (default: its
    portfolio)."""
    from sysflow.planner.plan import Plan

    t0 = time.perf_counter()
    now_s = math.ceil((now - plan.origin).total_seconds())
    chains: list[Chain] = []
    fixed: dict[str, tuple[int, ...]] = {}
    estimate = _Estimates(durations, plan.quantile)
    for c in plan.problem.chains:
        chain = estimate(c)
        if any(op in done or op in running for op in c.ops):
            chain, starts = _fixed_chain(plan, chain, done, running, now_s)
            fixed[c.host] = starts
        chains.append(chain)
    problem = plan.problem.derived(tuple(chains))
    limit = time_limit if solver == "cpsat" else 0.0
    a, rule = _repair(problem, plan.assignment, now_s, fixed, limit, num_workers, random_seed, rules)
    seconds = time.perf_counter() - t0
    return Plan(
        problem, a, f"replan-{solver}", "FEASIBLE", seconds, plan.quantile, rule=rule.value if rule else ""
    )


class _Estimates:
    """Chains with their durations re-estimated from the model (a chain's own as the priors);
    thousands of chains share a few task lists and groups, so each combination is computed once."""

    def __init__(self, durations: DurationModel | None, quantile: float) -> None:
        self._durations = durations
        self._quantile = quantile
        self._seen: dict[tuple[tuple[str, ...], str, tuple[int, ...]], tuple[int, ...]] = {}

    def __call__(self, c: Chain) -> Chain:
        model = self._durations
        if model is None:
            return c
        key = (c.tasks, c.group, c.durations)
        new = self._seen.get(key)
        if new is None:
            new = tuple(
                math.ceil(model.seconds(t, c.group, self._quantile, prior=float(d)) - 1e-9)
                for t, d in zip(c.tasks, c.durations, strict=True)
            )
            self._seen[key] = new
        return c if new == c.durations else c.with_durations(new)
