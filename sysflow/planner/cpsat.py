"""The CP-SAT scheduler, built in stages: data → variables → constraints → objective → solve → extract.

The model follows what was measured on this problem (issue 4):

* one start variable per host chain (per operation only when chains may split across windows),
  its domain the union of the windows' start ranges (``new_int_var_from_domain``), not one presence
  literal per window; operations are fixed-length optional intervals at fixed offsets of that start;
* one presence literal per host (absent = deferred); one finish variable per stage × wave carries the
  wave barriers with linear constraints; a wave's hosts may run only if the previous wave is complete;
* a cumulative per pool / rate limit (a start holds a rate for its period) / disruption budget (over
  the host's span);
* the greedy plan hints *every* variable, auxiliary ones included (without a full hint CP-SAT finds
  nothing at 10,000 hosts);
* objective, lexicographic by weights (:func:`~sysflow.planner.solution.score`): hosts done by the
  end of their first window in steps of ``first_window_step`` (an integer variable times the step
  bounded by their count), then the hosts placed, then the makespan of the placed ones, then hosts
  done by their first, second, ... window, then total completion time, where a deferred host counts
  as ending after the horizon; the lowest levels (last windows first, then total completion) are
  left out when the weights would not fit in 64-bit coefficients (the model would be invalid). The result
  is compared with the greedy plan by :func:`~sysflow.planner.solution.score` and the better is kept,
  so CP-SAT is never worse than greedy. CP-SAT's own gap is not reported: its bound is weak here;
  quality is judged against :mod:`sysflow.planner.bounds`.

From ``FIRST_WINDOW_FROM`` chains on, the first level of the objective is first solved on its own
by :mod:`sysflow.planner.firstwindow` (a much smaller model of the first windows; on a full model of
1,000 hosts CP-SAT only confirms the greedy hint), and its plan, when better, hints the full model.
Past ``max_units`` chains the problem is first reduced by :mod:`sysflow.planner.decompose`. Solver
objects never leave this module.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sysflow.planner.decompose import Batching, batch, expand
from sysflow.planner.firstwindow import improve_first_window
from sysflow.planner.greedy import GreedyResult, greedy
from sysflow.planner.problem import Chain, PlanningProblem, Window
from sysflow.planner.solution import Assignment, Score, block_items, blocks, latest_start, score

__all__ = ["DEFAULT_MAX_UNITS", "FIRST_WINDOW_FROM", "CpSatResult", "solve_cpsat"]

DEFAULT_MAX_UNITS = 1500  # chains per CP-SAT model before identical hosts are batched
PRESOLVE_UP_TO = 300  # chains; larger models skip CP-SAT's presolve
FIRST_WINDOW_FROM = PRESOLVE_UP_TO  # chains past which the first-window stage runs first
FIRST_WINDOW_SHARE = 0.85  # of the time limit; the full model improves the rest of the plan after it
_INT_LIMIT = 1 << 61  # keep every objective coefficient × range inside int64


@dataclass(frozen=True)
class CpSatResult:
    """The kept assignment and how it was obtained."""

    assignment: Assignment
    score: Score
    status: str  # OPTIMAL, FEASIBLE, or GREEDY when the greedy plan was as good or better
    solver_status: str  # what CP-SAT itself said
    seconds: float
    units: int  # chains in the model after batching
    batch_size: int
    greedy: GreedyResult = field(repr=False)


def solve_cpsat(
    problem: PlanningProblem,
    *,
    time_limit: float = 10.0,
    num_workers: int = 2,
    random_seed: int = 0,
    max_units: int = DEFAULT_MAX_UNITS,
    baseline: GreedyResult | None = None,
    first_window_from: int = FIRST_WINDOW_FROM,
) -> CpSatResult:
    """Improve on the greedy plan of ``problem`` with CP-SAT within ``time_limit`` seconds.

    Past ``first_window_from`` chains (and up to ``max_units``, one-block chains only), the
    first-window stage runs first for ``FIRST_WINDOW_SHARE`` of the time and hints the full model."""
    t0 = time.perf_counter()
    base = baseline or greedy(problem)
    start = _Kept(base.assignment, base.score, "GREEDY")
    if not problem.split_chains and first_window_from < len(problem.chains) <= max_units:
        start = _first_window(problem, start, FIRST_WINDOW_SHARE * time_limit, num_workers, random_seed)
    b = batch(problem, max_units) if len(problem.chains) > max_units else None
    reduced = b.problem if b else problem
    hint = greedy(reduced).assignment if b else start.assignment
    model = _Model(reduced, hint)
    remaining = max(0.1, time_limit - (time.perf_counter() - t0))
    status, found = model.solve(remaining, num_workers, random_seed)
    candidate = _lift(b, found, hint) if found is not None else None
    return _keep_best(problem, candidate, base, start, status, t0, len(reduced.chains), b)


@dataclass(frozen=True)
class _Kept:
    assignment: Assignment
    score: Score
    label: str


def _first_window(problem: PlanningProblem, kept: _Kept, limit: float, workers: int, seed: int) -> _Kept:
    """The first-window stage (:mod:`sysflow.planner.firstwindow`) when it beats ``kept``."""
    found = improve_first_window(
        problem, kept.assignment, time_limit=limit, num_workers=workers, random_seed=seed
    )
    if found is None:
        return kept
    s = score(problem, found.assignment)
    return _Kept(found.assignment, s, "FEASIBLE") if s < kept.score else kept


def _lift(b: Batching | None, found: Assignment, hint: Assignment) -> Assignment:
    reasons = {h: hint.deferred.get(h, "does not fit (CP-SAT)") for h in found.deferred}
    a = Assignment(found.starts, reasons)
    return expand(b, a) if b else a


def _keep_best(
    problem: PlanningProblem,
    candidate: Assignment | None,
    base: GreedyResult,
    start: _Kept,
    status: str,
    t0: float,
    units: int,
    b: Batching | None,
) -> CpSatResult:
    kept, kept_score, label = start.assignment, start.score, start.label
    if candidate is not None:
        cand_score = score(problem, candidate)
        if cand_score <= kept_score:
            kept, kept_score, label = candidate, cand_score, status
    size = b.size if b else 1
    return CpSatResult(kept, kept_score, label, status, time.perf_counter() - t0, units, size, base)


class _Model:
    """One CP-SAT model of a problem; built in stages by the constructor."""

    def __init__(self, problem: PlanningProblem, hint: Assignment) -> None:
        from ortools.sat.python import cp_model

        self.cp = cp_model
        self.p = problem
        self.hint = hint
        self.m = cp_model.CpModel()
        self.horizon = max(problem.horizon, max((b.start + b.length for b in problem.background), default=0))
        self.starts: dict[str, list[Any]] = {}
        self.present: dict[str, Any] = {}
        self.intervals: list[list[tuple[Any, int]]] = [[] for _ in problem.resources]
        self._variables()
        self._resources()
        self._barriers()
        self._objective()

    # -- variables -----------------------------------------------------------------------------

    def _variables(self) -> None:
        for c in self.p.chains:
            domains = [self._domain(c, a, b, j == 0) for j, (a, b) in enumerate(self._blocks(c))]
            if any(not d for d in domains):
                self.present[c.host] = self.m.new_constant(0)
                continue
            lit = self.m.new_bool_var(f"p[{c.host}]")
            self.present[c.host] = lit
            self.m.add_hint(lit, c.host in self.hint.starts)
            self.starts[c.host] = [self._start_var(c, j, d) for j, d in enumerate(domains)]

    def _blocks(self, c: Chain) -> list[tuple[int, int]]:
        return blocks(c, self.p.split_chains)

    def _domain(self, c: Chain, a: int, b: int, first: bool) -> list[list[int]]:
        lo_bound = c.release if first else 0
        out = []
        for w in c.windows:
            lo, hi = max(w.start, lo_bound), latest_start(c, a, b, w)
            if lo <= hi:
                out.append([lo, hi])
        return out

    def _start_var(self, c: Chain, j: int, dom: list[list[int]]) -> Any:
        v = self.m.new_int_var_from_domain(self.cp.Domain.from_intervals(dom), f"s[{c.host},{j}]")
        a = self._blocks(c)[j][0]
        hinted = self.hint.starts.get(c.host)
        self.m.add_hint(v, hinted[a] if hinted else dom[0][0])
        return v

    def _hinted_start(self, c: Chain, j: int) -> int:
        hinted = self.hint.starts.get(c.host)
        if hinted:
            return hinted[self._blocks(c)[j][0]]
        return self._domain(c, *self._blocks(c)[j], j == 0)[0][0]

    def _end(self, c: Chain) -> Any:
        return self.starts[c.host][-1] + sum(c.durations[self._blocks(c)[-1][0] :])

    # -- constraints ---------------------------------------------------------------------------

    def _resources(self) -> None:
        for c in self.p.chains:
            if c.host in self.starts:
                self._chain_constraints(c)
        for bz in self.p.background:
            iv = self.m.new_fixed_size_interval_var(bz.start, bz.length, f"bg[{bz.resource}]")
            self.intervals[bz.resource].append((iv, bz.amount))
        for res, ivs in zip(self.p.resources, self.intervals, strict=True):
            ivs = [(iv, d) for iv, d in ivs if d > 0]
            if not ivs:
                continue
            if res.capacity == 1 and all(d == 1 for _, d in ivs):
                self.m.add_no_overlap([iv for iv, _ in ivs])
            else:
                self.m.add_cumulative([iv for iv, _ in ivs], [d for _, d in ivs], res.capacity)

    def _chain_constraints(self, c: Chain) -> None:
        lit, starts = self.present[c.host], self.starts[c.host]
        bl = self._blocks(c)
        for j in range(1, len(bl)):
            prev_len = sum(c.durations[bl[j - 1][0] : bl[j - 1][1]])
            self.m.add(starts[j] >= starts[j - 1] + prev_len).only_enforce_if(lit)
        for j, (a, b) in enumerate(bl):
            for r, off, length, amount in block_items(self.p, c, a, b):
                self._optional(r, starts[j] + off, length, amount, lit)
        self._span(c, lit, starts)

    def _optional(self, r: int, start: Any, length: int, amount: int, lit: Any) -> None:
        if length > 0 and amount > 0:
            iv = self.m.new_optional_fixed_size_interval_var(start, length, lit, f"i[{r}]")
            self.intervals[r].append((iv, amount))

    def _span(self, c: Chain, lit: Any, starts: list[Any]) -> None:
        if not c.span_uses or not self.p.split_chains:
            return  # in one-block mode block_items() already holds the budgets
        size = self.m.new_int_var(0, self.horizon, f"span[{c.host}]")
        end = self._end(c)
        hint_size = self._hinted_start(c, len(starts) - 1) + c.durations[-1] - self._hinted_start(c, 0)
        self.m.add_hint(size, max(0, hint_size))
        iv = self.m.new_optional_interval_var(starts[0], size, end, lit, f"spanv[{c.host}]")
        for u in c.span_uses:
            if u.amount > 0:
                self.intervals[u.resource].append((iv, u.amount))

    def _barriers(self) -> None:
        by_wave: dict[tuple[str, int], list[Chain]] = {}
        for c in self.p.chains:
            by_wave.setdefault((c.stage, c.wave), []).append(c)
        for stage, waves in self.p.stage_waves().items():
            for prev, nxt in itertools.pairwise(waves):
                self._barrier(by_wave[(stage, prev)], by_wave[(stage, nxt)], self.p.gate(prev))

    def _barrier(self, before: Sequence[Chain], after: Sequence[Chain], gate: int) -> None:
        finish = self.m.new_int_var(0, self.horizon, "finish")
        complete = self.m.new_bool_var("complete")
        ends = [self.hint.end(c) for c in before if c.host in self.hint.starts and c.host in self.starts]
        self.m.add_hint(finish, max(ends, default=0))
        self.m.add_hint(complete, all(c.host in self.hint.starts for c in before))
        for c in before:
            self.m.add_implication(complete, self.present[c.host])
            if c.host in self.starts:
                self.m.add(finish >= self._end(c)).only_enforce_if(self.present[c.host])
        for c in after:
            self.m.add_implication(self.present[c.host], complete)
            if c.host in self.starts:
                self.m.add(self.starts[c.host][0] >= finish + gate).only_enforce_if(self.present[c.host])

    # -- objective -----------------------------------------------------------------------------

    def _objective(self) -> None:
        n, step = max(1, self.p.hosts), self.p.first_window_step
        # Window levels below the makespan; with a step of 1 the first is the top level already.
        ks = list(range(0 if step > 1 else 1, self.p.max_windows))
        self._total = True  # total completion, the lowest level: dropped after the window levels
        steps_w, placed_w, makespan, rest = self._weights(n, ks)
        while (ks or self._total) and steps_w * (n // step + 1) >= _INT_LIMIT:  # drop the lowest
            if ks:
                ks.pop()
            else:
                self._total = False
            steps_w, placed_w, makespan, rest = self._weights(n, ks)
        terms: list[Any] = []
        self._ends: list[Any] = []
        self._placed: list[Any] = []  # weight x "placed", per host
        self._first: list[Any] = []  # weight x "done by its first window", per host
        for c in self.p.chains:
            if c.host in self.starts:
                terms.extend(self._chain_objective(c, rest))
        if self._first:
            steps = self.m.new_int_var(0, n // step, "first_window_steps")
            self.m.add(step * steps <= sum(self._first))
            done0 = sum(c.weight for c in self.p.chains if c.host in self.hint.starts and self._hint_done0(c))
            self.m.add_hint(steps, done0 // step)
            # the hint is feasible, so no better plan has fewer steps: the first level is fixed from below
            self.m.add(steps >= done0 // step)
            terms.append(-steps_w * steps)
        terms.extend(-placed_w * p for p in self._placed)
        if self._ends:
            last = self.m.new_int_var(0, self.horizon + 1, "makespan")
            self.m.add_max_equality(last, self._ends)
            ends = [
                self.hint.end(c)
                for c in self.p.chains
                if c.host in self.starts and c.host in self.hint.starts
            ]
            self.m.add_hint(last, max(ends, default=0))
            terms.append(makespan * last)
        self.m.minimize(sum(terms))

    def _hint_done0(self, c: Chain) -> bool:
        a, b = self._blocks(c)[-1]
        last = self.hint.starts[c.host][a]
        return any(_fits(c, a, b, w) and last <= latest_start(c, a, b, w) for w in c.windows[:1])

    def _weights(self, n: int, ks: list[int]) -> tuple[int, int, int, dict[int, int]]:
        """Weights of (first-window steps, hosts placed, makespan, {k: done by window k}) over total
        completion (weight 1, when it is kept)."""
        w = n * (self.horizon + 2) + 1 if self._total else 1
        rest: dict[int, int] = {}
        for k in reversed(ks):
            rest[k] = w
            w *= n + 2
        makespan = w
        w *= self.horizon + 3
        placed = w
        w *= n + 2
        return w, placed, makespan, rest

    def _chain_objective(self, c: Chain, weights: dict[int, int]) -> list[Any]:
        lit = self.present[c.host]
        # A deferred host costs more completion time than any placed one, so that deferring is never
        # rewarded even when not every window fits in the weighted levels.
        end = self.m.new_int_var(0, self.horizon + 1, f"e[{c.host}]")
        self.m.add(end == self._end(c)).only_enforce_if(lit)
        self.m.add(end == self.horizon + 1).only_enforce_if(~lit)
        placed = c.host in self.hint.starts
        self.m.add_hint(end, self.hint.end(c) if placed else self.horizon + 1)
        placed_end = self.m.new_int_var(0, self.horizon + 1, f"pe[{c.host}]")  # 0 when deferred:
        self.m.add(placed_end == end).only_enforce_if(lit)  # the makespan is over placed hosts
        self.m.add(placed_end == 0).only_enforce_if(~lit)
        self.m.add_hint(placed_end, self.hint.end(c) if placed else 0)
        self._ends.append(placed_end)
        self._placed.append(c.weight * lit)
        terms: list[Any] = [c.weight * end] if self._total else []
        for k in sorted({0, *weights}):
            done = self._done_by(c, k, lit, placed)
            if k == 0:
                self._first.append(c.weight * done)
            if k in weights:
                terms.append(-weights[k] * c.weight * done)
        return terms

    def _done_by(self, c: Chain, k: int, lit: Any, placed: bool) -> Any:
        """A literal true only if the chain is done by the end of its window ``k``."""
        if k >= len(c.windows) - 1:
            return lit
        a, b = self._blocks(c)[-1]
        bound = max((latest_start(c, a, b, w) for w in c.windows[: k + 1] if _fits(c, a, b, w)), default=None)
        if bound is None:
            return 0
        done = self.m.new_bool_var(f"d[{c.host},{k}]")
        self.m.add_implication(done, lit)
        self.m.add(self.starts[c.host][-1] <= bound).only_enforce_if(done)
        last = self.hint.starts[c.host][a] if placed else None
        self.m.add_hint(done, last is not None and last <= bound)
        return done

    # -- solve and extract ---------------------------------------------------------------------

    def solve(self, time_limit: float, workers: int, seed: int) -> tuple[str, Assignment | None]:
        solver = self.cp.CpSolver()
        solver.parameters.max_time_in_seconds = time_limit
        solver.parameters.num_workers = workers
        solver.parameters.random_seed = seed
        solver.parameters.cp_model_probing_level = 0  # probing alone outlasts 10 s at 1,000 hosts
        if len(self.starts) > PRESOLVE_UP_TO:
            # Presolve of a large model can use the whole budget before the hint is even loaded;
            # without it the (complete, feasible) hint is the first solution and search improves it.
            solver.parameters.cp_model_presolve = False
        status = solver.solve(self.m)
        name = solver.status_name(status)
        if status not in (self.cp.OPTIMAL, self.cp.FEASIBLE):
            return name, None
        return name, self._extract(solver)

    def _extract(self, solver: Any) -> Assignment:
        starts: dict[str, tuple[int, ...]] = {}
        deferred: dict[str, str] = {}
        for c in self.p.chains:
            if c.host not in self.starts or not solver.boolean_value(self.present[c.host]):
                deferred[c.host] = "does not fit (CP-SAT)"
                continue
            out: list[int] = []
            for j, (a, b) in enumerate(self._blocks(c)):
                s = solver.value(self.starts[c.host][j])
                out.extend(s + c.offsets[i] - c.offsets[a] for i in range(a, b))
            starts[c.host] = tuple(out)
        return Assignment(starts, deferred)


def _fits(c: Chain, a: int, b: int, w: Window) -> bool:
    return latest_start(c, a, b, w) >= w.start
