"""Brute-force optimum of tiny planning problems, for checking the solvers and the bound."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from sysflow.planner.check import check
from sysflow.planner.problem import Chain, PlanningProblem
from sysflow.planner.solution import Assignment, Score, blocks, latest_start, score


def _options(problem: PlanningProblem, c: Chain) -> list[tuple[int, ...] | None]:
    """Every placement of one chain on its own (window-feasible block starts), plus deferral."""
    per_block: list[list[int]] = []
    for a, b in blocks(c, problem.split_chains):
        starts = [t for w in c.windows for t in range(max(w.start, c.release), latest_start(c, a, b, w) + 1)]
        per_block.append(starts)
    out: list[tuple[int, ...] | None] = [None]
    for combo in itertools.product(*per_block):
        ops: list[int] = []
        for (a, b), s in zip(blocks(c, problem.split_chains), combo, strict=True):
            ops.extend(s + c.offsets[i] - c.offsets[a] for i in range(a, b))
        if all(ops[i] >= ops[i - 1] + c.durations[i - 1] for i in range(1, len(ops))):
            out.append(tuple(ops))
    return out


def feasible(problem: PlanningProblem) -> Iterator[Assignment]:
    """Every feasible assignment of ``problem``."""
    options = [_options(problem, c) for c in problem.chains]
    for combo in itertools.product(*options):
        starts = {c.host: s for c, s in zip(problem.chains, combo, strict=True) if s is not None}
        deferred = {c.host: "-" for c, s in zip(problem.chains, combo, strict=True) if s is None}
        a = Assignment(starts, deferred)
        if not check(problem, a):
            yield a


def optimum(problem: PlanningProblem) -> tuple[Score, int | None]:
    """The best score, and the smallest makespan of a plan that places every host (None if none)."""
    best: Score | None = None
    best_makespan: int | None = None
    for a in feasible(problem):
        s = score(problem, a)
        best = s if best is None or s < best else best
        if not a.deferred:
            m = max(a.end(c) for c in problem.chains)
            best_makespan = m if best_makespan is None else min(best_makespan, m)
    assert best is not None  # deferring everything is always feasible
    return best, best_makespan
