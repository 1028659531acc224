"""Re-planning: place again only what has not started; never move finished or running work.

Hosts whose first operation has started are *fixed*: their operations stay where they are and the
resources they hold become committed background usage. Every other host (not started, or deferred)
is re-planned from ``now`` on: its release is ``now``, or later when a fixed host of an earlier wave
of its stage ends later (plus the gate). The greedy repair is immediate; CP-SAT may then improve it
within its time limit, hinted by the repair. The result is feasible for the original problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from sysflow.planner.greedy import greedy
from sysflow.planner.problem import Busy, Chain, PlanningProblem, ResourceKind
from sysflow.planner.solution import Assignment

__all__ = ["remaining_problem", "replan_assignment"]


def _busy(problem: PlanningProblem, c: Chain, s: tuple[int, ...]) -> list[Busy]:
    out: list[Busy] = []
    for i, start in enumerate(s):
        for u in c.op_uses(i):
            res = problem.resources[u.resource]
            length = res.period if res.kind is ResourceKind.RATE else c.durations[i]
            out.append(Busy(u.resource, start, length, u.amount))
    end = s[-1] + c.durations[-1]
    out.extend(Busy(u.resource, s[0], end - s[0], u.amount) for u in c.span_uses)
    return [b for b in out if b.length > 0 and b.amount > 0]


def _releases(problem: PlanningProblem, fixed: Mapping[str, tuple[int, ...]]) -> dict[tuple[str, int], int]:
    """Per (stage, wave) of the fixed hosts, the earliest start their end allows for later waves."""
    out: dict[tuple[str, int], int] = {}
    for c in problem.chains:
        s = fixed.get(c.host)
        if s is not None:
            key = (c.stage, c.wave)
            out[key] = max(out.get(key, 0), s[-1] + c.durations[-1] + problem.gate(c.wave))
    return out


def remaining_problem(
    problem: PlanningProblem, fixed: Mapping[str, tuple[int, ...]], now: int
) -> PlanningProblem:
    """The problem of the hosts not in ``fixed``, starting at ``now``, around the fixed hosts' usage."""
    rel = _releases(problem, fixed)
    chains = []
    background = list(problem.background)
    for c in problem.chains:
        if c.host in fixed:
            background.extend(_busy(problem, c, fixed[c.host]))
            continue
        earlier = (t for (stage, wave), t in rel.items() if stage == c.stage and wave < c.wave)
        chains.append(replace(c, release=max(c.release, now, *earlier)))
    return replace(problem, chains=tuple(chains), background=tuple(background))


def replan_assignment(
    problem: PlanningProblem,
    previous: Assignment,
    now: int,
    *,
    started: Mapping[str, tuple[int, ...]] | None = None,
    time_limit: float = 0.0,
    num_workers: int = 2,
    random_seed: int = 0,
) -> Assignment:
    """Keep the hosts that started (``started``, default: planned to start before ``now``) and
    re-plan the rest: greedy at once, then CP-SAT for ``time_limit`` seconds if positive."""
    fixed = dict(started) if started is not None else _started(previous, now)
    rest = remaining_problem(problem, fixed, now)
    result = greedy(rest)
    a = result.assignment
    if time_limit > 0 and rest.chains:
        from sysflow.planner.cpsat import solve_cpsat

        a = solve_cpsat(
            rest, time_limit=time_limit, num_workers=num_workers, random_seed=random_seed, baseline=result
        ).assignment
    return Assignment({**fixed, **a.starts}, dict(a.deferred))


def _started(previous: Assignment, now: int) -> dict[str, tuple[int, ...]]:
    return {h: s for h, s in previous.starts.items() if s[0] < now}
