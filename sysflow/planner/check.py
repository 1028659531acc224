"""Independent re-verification of a plan against its problem, from scratch.

``check`` shares no code with the schedulers beyond the problem's definition: resource usage is
recomputed by an event sweep over interval end points (not the schedulers' per-second arrays), window
membership and wave barriers are recomputed from the starts. Every plan either solver makes is run
through it in the tests.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from sysflow.planner.problem import Chain, PlanningProblem, ResourceKind
from sysflow.planner.solution import Assignment

__all__ = ["Violation", "ViolationKind", "check"]


class ViolationKind(enum.Enum):
    """What rule a plan breaks."""

    COVERAGE = "coverage"  # a host is neither placed nor deferred, or both, or unknown
    ORDER = "order"  # operations overlap or run out of order, or a block is not contiguous
    WINDOW = "window"  # an operation starts outside a window, after its cutoff or ends after it
    RELEASE = "release"  # a chain starts before its release time
    BARRIER = "barrier"  # a wave starts before the previous one ended plus the gate
    CAPACITY = "capacity"  # a pool, rate limit or budget is exceeded


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule, with the host (if one) and a readable message."""

    kind: ViolationKind
    message: str
    host: str | None = None

    def __str__(self) -> str:
        return f"{self.kind.value}: {self.host + ': ' if self.host else ''}{self.message}"


def check(
    problem: PlanningProblem,
    plan: Assignment | object,
    *,
    skip_hosts: Collection[str] = (),
    after: int | None = None,
) -> list[Violation]:
    """Every violation of ``problem``'s rules by ``plan`` (an ``Assignment`` or anything with one).

    For judging a re-plan: ``skip_hosts`` are hosts whose own rules (order, windows, release) are
    not checked, though their usage counts against every resource and barrier (what started is
    measured fact); with ``after``, usage that ends at or before that second is not counted (the
    past cannot meet what is placed from then on)."""
    a = plan if isinstance(plan, Assignment) else getattr(plan, "assignment", None)
    if not isinstance(a, Assignment):
        raise TypeError("check() needs an Assignment or a Plan")
    out = list(_coverage(problem, a))
    placed = [c for c in problem.chains if len(a.starts.get(c.host, ())) == len(c.ops)]
    for c in placed:
        if c.host not in skip_hosts:
            out.extend(_chain(problem, c, a.starts[c.host]))
    out.extend(_barriers(problem, a, placed))
    out.extend(_capacity(problem, a, placed, after))
    return out


def _coverage(problem: PlanningProblem, a: Assignment) -> Iterator[Violation]:
    known = problem.by_host
    for host in set(a.starts) | set(a.deferred):
        if host not in known:
            yield Violation(ViolationKind.COVERAGE, "not a host of the problem", host)
    for c in problem.chains:
        placed, deferred = c.host in a.starts, c.host in a.deferred
        if placed == deferred:
            yield Violation(ViolationKind.COVERAGE, "must be exactly one of placed or deferred", c.host)
        elif placed and len(a.starts[c.host]) != len(c.ops):
            yield Violation(ViolationKind.COVERAGE, "needs one start per operation", c.host)


def _chain(problem: PlanningProblem, c: Chain, s: tuple[int, ...]) -> Iterator[Violation]:
    if s[0] < c.release:
        yield Violation(ViolationKind.RELEASE, f"starts at {s[0]} before its release {c.release}", c.host)
    for i in range(1, len(s)):
        prev_end = s[i - 1] + c.durations[i - 1]
        bad = s[i] != prev_end if not problem.split_chains else s[i] < prev_end
        if bad:
            yield Violation(
                ViolationKind.ORDER, f"{c.ops[i]} starts at {s[i]}, previous ends {prev_end}", c.host
            )
    homes = []
    for i, start in enumerate(s):
        home = _window_of(c, start, start + c.durations[i])
        if home is None:
            yield Violation(ViolationKind.WINDOW, f"{c.ops[i]} at {start} is in no window", c.host)
        homes.append(home)
    if not problem.split_chains and len(set(homes)) > 1:
        yield Violation(ViolationKind.WINDOW, "a chain spans several windows", c.host)


def _window_of(c: Chain, start: int, end: int) -> int | None:
    for k, w in enumerate(c.windows):
        if w.start <= start <= w.cutoff and end <= w.end:
            return k
    return None


def _barriers(problem: PlanningProblem, a: Assignment, placed: list[Chain]) -> Iterator[Violation]:
    first: dict[tuple[str, int], int] = {}
    last: dict[tuple[str, int], int] = {}
    for c in placed:
        s = a.starts[c.host]
        key = (c.stage, c.wave)
        first[key] = min(first.get(key, s[0]), s[0])
        last[key] = max(last.get(key, 0), s[-1] + c.durations[-1])
    deferred = {(c.stage, c.wave) for c in problem.chains if c.host in a.deferred}
    for stage, waves in problem.stage_waves().items():
        for prev, nxt in itertools.pairwise(waves):
            if (stage, nxt) not in first:
                continue
            if any((stage, w) in deferred for w in waves if w <= prev):
                yield Violation(ViolationKind.BARRIER, f"wave {nxt} of {stage} runs after a deferred host")
            ready = last.get((stage, prev), 0) + problem.gate(prev)
            if first[(stage, nxt)] < ready:
                msg = f"wave {nxt} of {stage} starts at {first[(stage, nxt)]}, before {ready}"
                yield Violation(ViolationKind.BARRIER, msg)


def _capacity(
    problem: PlanningProblem, a: Assignment, placed: list[Chain], after: int | None
) -> Iterator[Violation]:
    events: list[list[tuple[int, int]]] = [[] for _ in problem.resources]
    since = -(2**62) if after is None else after
    for b in problem.background:
        if b.start + b.length > since:
            events[b.resource] += [(b.start, b.amount), (b.start + b.length, -b.amount)]
    for c in placed:
        for r, start, end, amount in _usage(problem, c, a.starts[c.host]):
            if end > start and amount and end > since:
                events[r] += [(start, amount), (end, -amount)]
    for res, ev in zip(problem.resources, events, strict=True):
        level = 0
        ev.sort()  # by time, releases (negative) before takes at the same second
        for t, delta in ev:
            level += delta
            if level > res.capacity:
                yield Violation(ViolationKind.CAPACITY, f"{res.name} at {level} > {res.capacity} at t={t}")
                break


def _usage(problem: PlanningProblem, c: Chain, s: tuple[int, ...]) -> Iterator[tuple[int, int, int, int]]:
    for i, start in enumerate(s):
        for u in c.op_uses(i):
            res = problem.resources[u.resource]
            length = res.period if res.kind is ResourceKind.RATE else c.durations[i]
            yield u.resource, start, start + length, u.amount
    end = s[-1] + c.durations[-1]
    for u in c.span_uses:
        yield u.resource, s[0], end, u.amount
