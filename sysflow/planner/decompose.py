"""Decomposition for fleets past what one CP-SAT model handles: batch identical hosts into units.

Hosts with the same group, datacenter, stage, wave, release, windows, durations and demands are
interchangeable. Up to ``k`` of them become one *unit*: a chain whose demands are ``k`` times a
host's and whose weight is ``k``. Every host of a unit is later given the unit's starts, so the
hosts' combined usage is exactly the unit's usage and any feasible plan of units expands to a
feasible plan of hosts. ``k`` never exceeds what a resource admits at once (``capacity // amount``);
under a spacing rule (a rate of capacity 1) nothing is batched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from sysflow.planner.problem import Chain, PlanningProblem, Use
from sysflow.planner.solution import Assignment

__all__ = ["Batching", "batch", "expand"]


@dataclass(frozen=True)
class Batching:
    """A reduced problem of units and, for each unit, the hosts it stands for."""

    problem: PlanningProblem
    members: Mapping[str, tuple[str, ...]]
    size: int  # the largest unit


def batch(problem: PlanningProblem, max_units: int) -> Batching:
    """Group identical hosts so that the problem has about ``max_units`` units (or fewer)."""
    want = max(1, -(-len(problem.chains) // max(1, max_units)))
    classes: dict[tuple[object, ...], list[Chain]] = {}
    for c in problem.chains:
        key = (c.group, c.datacenter, c.stage, c.wave, c.release, c.windows, c.durations, c.uses, c.span_uses)
        classes.setdefault(key, []).append(c)
    units: list[Chain] = []
    members: dict[str, tuple[str, ...]] = {}
    for chains in classes.values():
        k = min(want, _admits(problem, chains[0]))
        for i in range(0, len(chains), k):
            part = chains[i : i + k]
            unit = _unit(part)
            units.append(unit)
            members[unit.host] = tuple(c.host for c in part)
    reduced = replace(problem, chains=tuple(units))
    return Batching(reduced, members, max((len(m) for m in members.values()), default=1))


def _admits(problem: PlanningProblem, chain: Chain) -> int:
    """How many copies of ``chain`` every resource can hold at once."""
    k = 1 << 30
    for u in (*(u for us in chain.uses for u in us), *chain.span_uses):
        if u.amount > 0:
            k = min(k, problem.resources[u.resource].capacity // u.amount)
    return max(1, k)


def _scale(uses: Sequence[Use], k: int) -> tuple[Use, ...]:
    return tuple(Use(u.resource, u.amount * k) for u in uses)


def _unit(part: list[Chain]) -> Chain:
    first, k = part[0], sum(c.weight for c in part)
    if len(part) == 1:
        return first
    return replace(
        first,
        host=f"{first.host}+{len(part) - 1}",
        uses=tuple(_scale(us, len(part)) for us in first.uses),
        span_uses=_scale(first.span_uses, len(part)),
        weight=k,
    )


def expand(b: Batching, a: Assignment) -> Assignment:
    """The host-level assignment of a unit-level one."""
    starts: dict[str, tuple[int, ...]] = {}
    deferred: dict[str, str] = {}
    for unit, hosts in b.members.items():
        for h in hosts:
            if unit in a.starts:
                starts[h] = a.starts[unit]
            else:
                deferred[h] = a.deferred.get(unit, "not placed")
    return Assignment(starts, deferred)
