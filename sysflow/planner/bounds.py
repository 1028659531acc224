"""A window-aware lower bound on when the work can be done, and how far a plan is from it.

The textbook bound (critical path, total work / capacity) is 20-200× too weak when work can only run
inside windows. This bound pushes each stage's waves through that stage's own windows: a wave starts
after the previous wave's bound plus the gate, and ends no earlier than (a) its work on each resource
divided by that resource's capacity, counted only inside the windows, and (b) the earliest time its
longest chain could finish alone. Separately, each resource's total work divided by its capacity is
pushed through the union of its users' windows. The bound on the makespan is the largest of these.

Every step relaxes the problem (work may be preempted across windows, other stages are ignored), so
the bound never exceeds the makespan of a plan that places every host.

Times of a plan are compared with the bound in *window time* (seconds inside the stage's windows),
so that a plan one hour late inside a window reads as one hour late, not as a 0.1 % ratio over a
two-week horizon.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sysflow.planner.problem import Chain, PlanningProblem, ResourceKind, Window
from sysflow.planner.solution import Assignment, blocks, latest_start

__all__ = ["Bound", "Quality", "first_window_bound", "lower_bound", "quality"]


@dataclass(frozen=True)
class Bound:
    """Lower bounds on completion: overall, per stage, and from each resource's total work."""

    makespan: int
    per_stage: Mapping[str, int]
    per_resource: Mapping[str, int]


@dataclass(frozen=True)
class Quality:
    """A plan against the bound: makespan, ratio and excess in window time of the worst stage."""

    makespan: int
    ratio: float  # window time to the plan's completion / window time to the bound (>= 1)
    excess_s: int  # window seconds between the bound and the plan's completion
    stage: str  # the stage where both are measured


def _merge(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _push(spans: Sequence[tuple[int, int]], t: float, need: float) -> float:
    """The time at which ``need`` seconds of window time, taken from ``t`` on, are used up."""
    if need <= 0:
        return t
    for a, b in spans:
        lo = max(a, t)
        if lo >= b:
            continue
        if lo + need <= b:
            return lo + need
        need -= b - lo
    return float("inf")


def _window_time(spans: Sequence[tuple[int, int]], t: float) -> float:
    """Window seconds in ``[0, t]``."""
    return sum(max(0.0, min(b, t) - a) for a, b in spans if a < t)


def _earliest_finish(c: Chain, t: float, split: bool) -> float:
    """When ``c`` alone, started no earlier than ``t``, could end."""
    for a, b in blocks(c, split):
        length = sum(c.durations[a:b])
        for w in c.windows:
            lo = max(t, w.start)
            if lo <= latest_start(c, a, b, w):
                t = lo + length
                break
        else:
            return float("inf")
    return t


def _work(problem: PlanningProblem, c: Chain) -> dict[int, float]:
    """Unit-seconds of each pool and budget the chain uses (a rate's hold may outlast the work)."""
    out: dict[int, float] = {}
    for i, us in enumerate(c.uses):
        for u in us:
            if u.amount <= 0 or problem.resources[u.resource].kind is ResourceKind.RATE:
                continue
            out[u.resource] = out.get(u.resource, 0.0) + c.weight * u.amount * c.durations[i]
    for u in c.span_uses:
        if u.amount > 0:
            out[u.resource] = out.get(u.resource, 0.0) + c.weight * u.amount * c.total
    return out


def _head_tail(problem: PlanningProblem, c: Chain) -> dict[int, tuple[int, int]]:
    """Per pool used: work of the chain before its first use and after its last use (budgets: 0)."""
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for i, us in enumerate(c.uses):
        for u in us:
            if u.amount > 0 and problem.resources[u.resource].kind is not ResourceKind.RATE:
                first.setdefault(u.resource, c.offsets[i])
                last[u.resource] = c.offsets[i] + c.durations[i]
    out = {r: (first[r], c.total - last[r]) for r in first}
    out.update({u.resource: (0, 0) for u in c.span_uses if u.amount > 0})
    return out


def _windows(chains: Iterable[Chain]) -> list[tuple[int, int]]:
    return _merge({(w.start, w.end) for c in chains for w in c.windows})


def _demand(problem: PlanningProblem, chains: Iterable[Chain]) -> dict[int, tuple[float, int, int]]:
    """Per resource: total work, least head and least tail over the chains that use it."""
    out: dict[int, tuple[float, int, int]] = {}
    kinds: dict[tuple[object, ...], tuple[dict[int, float], dict[int, tuple[int, int]]]] = {}
    for c in chains:
        key = (c.durations, c.uses, c.span_uses, c.weight)
        if key not in kinds:
            kinds[key] = (_work(problem, c), _head_tail(problem, c))
        work, ht = kinds[key]
        for r, v in work.items():
            w0, h0, t0 = out.get(r, (0.0, 1 << 62, 1 << 62))
            out[r] = (w0 + v, min(h0, ht[r][0]), min(t0, ht[r][1]))
    return out


def _body(spans: Sequence[tuple[int, int]], start: float, work: float, head: int, tail: int) -> float:
    """Head, then ``work`` (already divided by capacity), then tail, all inside windows."""
    return _push(spans, _push(spans, _push(spans, start, head), work), tail)


def _wave_end(problem: PlanningProblem, chains: Sequence[Chain], start: float) -> float:
    spans = _windows(chains)
    end = max(
        (_earliest_finish(c, max(start, c.release), problem.split_chains) for c in chains), default=start
    )
    for r, (work, head, tail) in _demand(problem, chains).items():
        end = max(end, _body(spans, start, work / problem.resources[r].capacity, head, tail))
    return end


def _stage_bound(problem: PlanningProblem, chains: Sequence[Chain]) -> float:
    by_wave: dict[int, list[Chain]] = {}
    for c in chains:
        by_wave.setdefault(c.wave, []).append(c)
    t, prev = 0.0, None
    for wave in sorted(by_wave):
        if prev is not None:
            t += problem.gate(prev)
        t = _wave_end(problem, by_wave[wave], t)
        prev = wave
    return t


def _resource_bounds(problem: PlanningProblem) -> dict[int, float]:
    users: dict[int, list[Chain]] = {}
    for c in problem.chains:
        for r in {u.resource for us in c.uses for u in us} | {u.resource for u in c.span_uses}:
            users.setdefault(r, []).append(c)
    out: dict[int, float] = {}
    for r, (work, head, tail) in _demand(problem, problem.chains).items():
        out[r] = _body(_windows(users[r]), 0, work / problem.resources[r].capacity, head, tail)
    return out


def lower_bound(problem: PlanningProblem) -> Bound:
    """The window-aware lower bound of ``problem`` (see module docstring); ``inf`` is capped at horizon."""
    stages: dict[str, list[Chain]] = {}
    for c in problem.chains:
        stages.setdefault(c.stage, []).append(c)
    cap = problem.horizon
    per_stage = {s: _finite(_stage_bound(problem, cs), cap) for s, cs in stages.items()}
    per_resource = {problem.resources[r].name: _finite(t, cap) for r, t in _resource_bounds(problem).items()}
    return Bound(max([*per_stage.values(), *per_resource.values(), 0]), per_stage, per_resource)


def _finite(t: float, cap: int) -> int:
    return cap if t == float("inf") else int(t)


def quality(problem: PlanningProblem, a: Assignment, bound: Bound) -> Quality:
    """How far ``a`` is from ``bound``, in window time of the stage that is furthest from it."""
    ends: dict[str, int] = {}
    for c in problem.chains:
        if c.host in a.starts:
            ends[c.stage] = max(ends.get(c.stage, 0), a.end(c))
    makespan = max(ends.values(), default=0)
    worst = Quality(makespan, 1.0, 0, "")
    for stage, end in ends.items():
        spans = _windows(c for c in problem.chains if c.stage == stage)
        lb = bound.per_stage.get(stage, 0)
        used, best = _window_time(spans, end), _window_time(spans, lb)
        q = Quality(makespan, used / best if best > 0 else 1.0, int(max(0.0, used - best)), stage)
        if (q.excess_s, q.ratio) > (worst.excess_s, worst.ratio):
            worst = q
    return worst


def window_spans(windows: Iterable[Window]) -> list[tuple[int, int]]:
    """Merged ``(start, end)`` spans of ``windows``."""
    return _merge((w.start, w.end) for w in windows)


def first_window_bound(problem: PlanningProblem) -> int:
    """An upper bound on the hosts that can be done in their first window (the objective's first level).

    Hosts are split by (group, first window); each part is bounded on its own, ignoring the other
    parts, wave barriers and rates (all relaxations): only hosts that could finish alone in their first
    window count, and for every pool and budget, at most the most hosts whose smallest works add up to
    no more than its capacity times the window's length.
    """
    parts: dict[tuple[str, Window], list[Chain]] = {}
    for c in problem.chains:
        if c.windows and _earliest_finish(c, c.release, problem.split_chains) <= c.windows[0].end:
            parts.setdefault((c.group, c.windows[0]), []).append(c)
    return sum(_part_bound(problem, w, cs) for (_, w), cs in parts.items())


def _part_bound(problem: PlanningProblem, w: Window, chains: Sequence[Chain]) -> int:
    best = sum(c.weight for c in chains)
    per_resource: dict[int, list[tuple[float, int]]] = {}
    for c in chains:
        for r, work in _work(problem, c).items():
            per_resource.setdefault(r, []).append((work / c.weight, c.weight))
    for r, works in per_resource.items():
        room = problem.resources[r].capacity * (w.end - w.start)
        best = min(
            best, _most(sorted(works), room) + sum(c.weight for c in chains) - sum(n for _, n in works)
        )
    return best


def _most(works: Sequence[tuple[float, int]], room: float) -> int:
    """How many hosts, smallest work first (``(work, count)`` sorted), fit in ``room``."""
    n = 0
    for work, count in works:
        if work <= 0:
            n += count
            continue
        take = min(count, int(room // work))
        n += take
        room -= take * work
        if take < count:
            break
    return n
