"""First-window stage of CP-SAT: most hosts done in their first window, then the rest placed greedily.

Why: on a full two-week model of 1,000+ hosts CP-SAT spends its whole budget confirming the greedy
hint. The first level of the objective only concerns each host's *first* window, so this stage
solves a much smaller model for that level alone:

1. **Window model.** Every host whose chain fits its first window becomes an optional chain inside
   that window (one presence literal, one start variable over the window's start range, fixed-length
   optional intervals on every pool, rate and budget). Usage of the other hosts in the previous plan
   is committed background. Wave barriers hold inside the window: a host of wave ``w + 1`` may be
   present only if every host of wave ``w`` of its stage is, and starts after their end plus the
   gate. The earlier waves are solved first (the most hosts, then the earliest end per stage, with
   a redundant cut per wave and pool: its end is at least its release + head + tail + work /
   capacity, which lets CP-SAT prove that end), then the last waves around them in two solves: the
   most hosts alone (CP-SAT often proves that count at once), then, keeping at least that count,
   the most hosts and the earliest ends. The previous plan hints every variable.
2. **Completion.** The chosen hosts are fixed; every other host is placed by the greedy scheduler
   around them (:func:`~sysflow.planner.problem.remaining_problem`), which also carries the wave
   barriers to later windows.

The result is feasible for the whole problem; the caller keeps it only when its
:func:`~sysflow.planner.solution.score` is better. Chains split across windows are not handled here
(the caller's full model covers them).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sysflow.planner.greedy import DispatchRule, greedy
from sysflow.planner.problem import Busy, Chain, PlanningProblem, ResourceKind, remaining_problem
from sysflow.planner.solution import Assignment, block_items, latest_start

__all__ = ["FirstWindowResult", "improve_first_window"]
# one rule keeps the hint and the completion fast; the caller compares the result with its portfolio
_RULES = (DispatchRule.SHORTEST_FIRST,)
COUNT_SHARE = 0.5  # of the window model's time for its first solve, the most hosts alone
Chosen = dict[str, tuple[int, ...]]  # host -> operation starts


@dataclass(frozen=True)
class FirstWindowResult:
    """The completed assignment and how many hosts the window model placed in first windows."""

    assignment: Assignment
    first_window: int
    solver_status: str
    proven: bool = False  # CP-SAT proved the window model's count the most (its earlier waves fixed)


def improve_first_window(
    problem: PlanningProblem,
    base: Assignment,
    *,
    time_limit: float,
    num_workers: int = 2,
    random_seed: int = 0,
) -> FirstWindowResult | None:
    """Re-solve the first windows of ``base`` (a feasible plan of ``problem``) and complete greedily.

    None when the problem splits chains, nothing fits a first window, or CP-SAT finds no solution.
    """
    deadline = time.perf_counter() + time_limit
    if problem.split_chains:
        return None
    candidates = [c for c in problem.chains if _first_range(c) is not None]
    if not candidates:
        return None
    last = {stage: waves[-1] for stage, waves in problem.stage_waves().items()}
    lead = [c for c in candidates if c.wave != last[c.stage]]
    chosen: Chosen = {}
    status, proven = "UNKNOWN", False
    if lead:
        # earlier waves first, as early as possible: their end opens the window to the last wave
        status, found = _WindowModel(problem, base, lead, makespan=True).solve(
            time_limit / 2, num_workers, random_seed
        )
        chosen.update(found or {})
    if lead and chosen:
        rest = remaining_problem(problem, chosen, 0)
        rest_candidates = [c for c in rest.chains if _first_range(c) is not None]
        hint = greedy(rest, _RULES).assignment
    else:
        rest, rest_candidates, hint = problem, candidates, base
    if rest_candidates:
        remaining = max(0.1, deadline - time.perf_counter())
        model = _WindowModel(rest, hint, rest_candidates)
        status, proven, found = model.solve_staged(remaining, num_workers, random_seed)
        chosen.update(found or {})
    if not chosen:
        return None
    weight = sum(problem.by_host[h].weight for h in chosen)
    return FirstWindowResult(_complete(problem, chosen), weight, status, proven)


def _first_range(c: Chain) -> tuple[int, int] | None:
    """Start range of ``c`` in its first window, after its release; None if it does not fit there."""
    if not c.windows:
        return None
    w = c.windows[0]
    lo, hi = max(w.start, c.release), latest_start(c, 0, len(c.ops), w)
    return (lo, hi) if lo <= hi else None


def _in_first(c: Chain, starts: tuple[int, ...] | None) -> bool:
    if starts is None:
        return False
    w = c.windows[0]
    return w.start <= starts[-1] <= w.cutoff


def _complete(problem: PlanningProblem, chosen: Mapping[str, tuple[int, ...]]) -> Assignment:
    rest = greedy(remaining_problem(problem, chosen, 0), _RULES).assignment
    return Assignment({**chosen, **rest.starts}, dict(rest.deferred))


def _pool_work(problem: PlanningProblem, chains: Sequence[Chain]) -> dict[int, tuple[int, int, int]]:
    """Per pool or budget the chains hold: total amount x seconds, least head and least tail."""
    out: dict[int, tuple[int, int, int]] = {}
    for c in chains:
        for r, off, length, amount in block_items(problem, c, 0, len(c.ops)):
            if problem.resources[r].kind is ResourceKind.RATE:
                continue  # a rate's hold may outlast the chain
            work, head, tail = out.get(r, (0, off, c.total))
            out[r] = (work + amount * length, min(head, off), min(tail, c.total - off - length))
    return out


def _background(problem: PlanningProblem, base: Assignment, keep: set[str]) -> list[Busy]:
    """Committed usage of the hosts outside the window model, as placed in ``base``."""

    fixed = {h: s for h, s in base.starts.items() if h not in keep}
    return list(remaining_problem(problem, fixed, 0).background)


class _WindowModel:
    """The CP-SAT model of the first windows (see module docstring)."""

    def __init__(
        self, problem: PlanningProblem, base: Assignment, candidates: Sequence[Chain], makespan: bool = False
    ) -> None:
        from ortools.sat.python import cp_model

        self.cp = cp_model
        self.p = problem
        self.m = cp_model.CpModel()
        self.present: dict[str, Any] = {}
        self.starts: dict[str, Any] = {}
        self.intervals: list[list[tuple[Any, int]]] = [[] for _ in problem.resources]
        self.released: dict[tuple[str, int], Any] = {}  # (stage, wave) -> earliest start, a variable
        keep = {c.host for c in candidates}
        self.hinted = {
            c.host: base.starts[c.host] for c in candidates if _in_first(c, base.starts.get(c.host))
        }
        for c in candidates:
            self._chain(c)
        for bz in _background(problem, base, keep):
            iv = self.m.new_fixed_size_interval_var(bz.start, bz.length, "bg")
            self.intervals[bz.resource].append((iv, bz.amount))
        self._cumulatives()
        self._barriers(candidates)
        self.count = sum(c.weight * self.present[c.host] for c in candidates)
        if makespan:
            self._makespan_objective(candidates)
        else:
            self._objective(candidates)

    def _chain(self, c: Chain) -> None:
        rng = _first_range(c)
        assert rng is not None
        lit = self.m.new_bool_var(f"x[{c.host}]")
        start = self.m.new_int_var(rng[0], rng[1], f"s[{c.host}]")
        hinted = self.hinted.get(c.host)
        self.m.add_hint(lit, hinted is not None)
        self.m.add_hint(start, hinted[0] if hinted is not None else rng[0])
        self.present[c.host], self.starts[c.host] = lit, start
        for r, off, length, amount in block_items(self.p, c, 0, len(c.ops)):
            iv = self.m.new_optional_fixed_size_interval_var(start + off, length, lit, f"i[{c.host},{r}]")
            self.intervals[r].append((iv, amount))

    def _cumulatives(self) -> None:
        for res, ivs in zip(self.p.resources, self.intervals, strict=True):
            ivs = [(iv, d) for iv, d in ivs if d > 0]
            if ivs:
                self.m.add_cumulative([iv for iv, _ in ivs], [d for _, d in ivs], res.capacity)

    def _barriers(self, candidates: Sequence[Chain]) -> None:
        inside: dict[tuple[str, int], list[Chain]] = {}
        for c in candidates:
            inside.setdefault((c.stage, c.wave), []).append(c)
        total: dict[tuple[str, int], int] = {}
        for c in self.p.chains:
            total[(c.stage, c.wave)] = total.get((c.stage, c.wave), 0) + 1
        for stage, waves in self.p.stage_waves().items():
            for i, wave in enumerate(waves[1:], start=1):
                after = inside.get((stage, wave), [])
                earlier = [c for w in waves[:i] for c in inside.get((stage, w), [])]
                complete = all(len(inside.get((stage, w), [])) == total[(stage, w)] for w in waves[:i])
                release = self._barrier(earlier, after, self.p.gate(waves[i - 1]), complete)
                if release is not None:
                    self.released[(stage, wave)] = release

    def _barrier(self, before: Sequence[Chain], after: Sequence[Chain], gate: int, possible: bool) -> Any:
        """The wave barrier; returns the earliest start of ``after`` (None when it cannot run)."""
        if not after:
            return None
        if not possible:
            for c in after:
                self.m.add(self.present[c.host] == 0)
            return None
        finish = self.m.new_int_var(0, self.p.horizon, "finish")
        ends = [self.hinted[b.host][-1] + b.durations[-1] for b in before if b.host in self.hinted]
        self.m.add_hint(finish, max(ends, default=0))
        complete = self.m.new_bool_var("complete")
        self.m.add_hint(complete, all(b.host in self.hinted for b in before))
        for b in before:
            self.m.add_implication(complete, self.present[b.host])
            self.m.add(finish >= self.starts[b.host] + b.total).only_enforce_if(self.present[b.host])
        for c in after:
            lit = self.present[c.host]
            self.m.add_implication(lit, complete)
            self.m.add(self.starts[c.host] >= finish + gate).only_enforce_if(lit)
        return finish + gate

    def _objective(self, candidates: Sequence[Chain]) -> None:
        # ends inside a first window are bounded by its length, so one host outweighs every end
        span = max(c.windows[0].end - c.windows[0].start for c in candidates) + 1
        big = span * sum(c.weight for c in candidates) + 1
        terms = []
        for c in candidates:
            w0 = c.windows[0].start
            terms.append(big * c.weight * self.present[c.host])
            terms.append(-c.weight * (self.starts[c.host] - w0))
        self.objective = sum(terms)
        self.m.maximize(self.objective)

    def _makespan_objective(self, candidates: Sequence[Chain]) -> None:
        """Most hosts, then the earliest end of each stage's hosts (what releases its next wave)."""
        horizon = self.p.horizon
        ends: dict[str, Any] = {}
        for c in candidates:
            if c.stage not in ends:
                ends[c.stage] = self.m.new_int_var(0, horizon, f"end[{c.stage}]")
                hints = [
                    s[-1] + x.durations[-1]
                    for x in candidates
                    if x.stage == c.stage
                    for s in [self.hinted.get(x.host)]
                    if s
                ]
                self.m.add_hint(ends[c.stage], max(hints, default=0))
            self.m.add(ends[c.stage] >= self.starts[c.host] + c.total).only_enforce_if(self.present[c.host])
        incomplete = {c.stage for c in candidates if c.host not in self.hinted}
        for c in candidates:
            if c.stage not in incomplete:
                # the previous plan ran every earlier-wave host of this stage in its first window:
                # keep it so (the most hosts), and search only for earlier ends
                self.m.add(self.present[c.host] == 1)
        self._work_cuts([c for c in candidates if c.stage not in incomplete], ends)
        big = horizon * len(ends) + 1
        self.objective = big * self.count - sum(ends.values())
        self.m.maximize(self.objective)

    def _work_cuts(self, whole: Sequence[Chain], ends: Mapping[str, Any]) -> None:
        """Redundant: a wave that runs whole ends no earlier than its work on each pool allows.

        Its hosts start at or after the wave's release (the barrier, or the earliest start of the
        first wave) and hold a pool from their head to their tail, the pool at most its capacity at a
        time; CP-SAT's own relaxation of the cumulative misses this, so it never proved an end."""
        waves: dict[tuple[str, int], list[Chain]] = {}
        for c in whole:
            waves.setdefault((c.stage, c.wave), []).append(c)
        first = {stage: ws[0] for stage, ws in self.p.stage_waves().items()}
        for (stage, wave), chains in waves.items():
            release = self.released.get((stage, wave))
            if release is None and wave == first[stage]:
                release = min(rng[0] for c in chains if (rng := _first_range(c)) is not None)
            if release is None:
                continue
            for r, (work, head, tail) in _pool_work(self.p, chains).items():
                need = head + tail + -(-work // self.p.resources[r].capacity)
                self.m.add(ends[stage] >= release + need)

    def solve(self, time_limit: float, workers: int, seed: int) -> tuple[str, Chosen | None]:
        status, solver = self._run(time_limit, workers, seed)
        return status, self._chosen(solver) if solver is not None else None

    def solve_staged(self, time_limit: float, workers: int, seed: int) -> tuple[str, bool, Chosen | None]:
        """The most hosts alone first, then the full objective with at least that many.

        Counting alone, CP-SAT often proves the count at once where the full objective (whose
        earliest-end tie-break is hard to bound) runs to its time limit; the second solve starts from
        the first's solution and keeps its count. Returns the status, whether the count is proven the
        most this model admits, and the chosen starts."""
        deadline = time.perf_counter() + time_limit
        self.m.maximize(self.count)
        status, solver = self._run(COUNT_SHARE * time_limit, workers, seed)
        if solver is None:
            return status, False, None
        proven, first = status == "OPTIMAL", self._chosen(solver)
        self.m.add(self.count >= round(solver.objective_value))
        self._hint_all(solver)
        self.m.maximize(self.objective)
        # presolve of the count-fixed model can outrun the limit (16 s of a 5 s limit at 890 hosts);
        # the complete hint is the first solution without it
        status, solver = self._run(deadline - time.perf_counter(), workers, seed, presolve=False)
        return status, proven, self._chosen(solver) if solver is not None else first

    def _hint_all(self, solver: Any) -> None:
        self.m.clear_hints()  # type: ignore[no-untyped-call]  # untyped in ortools
        for i in range(len(self.m.proto.variables)):
            v = self.m.get_int_var_from_proto_index(i)
            self.m.add_hint(v, solver.value(v))

    def _run(self, time_limit: float, workers: int, seed: int, presolve: bool = True) -> tuple[str, Any]:
        solver = self.cp.CpSolver()
        solver.parameters.max_time_in_seconds = max(0.1, time_limit)
        solver.parameters.num_workers = workers
        solver.parameters.random_seed = seed
        solver.parameters.cp_model_probing_level = 0
        solver.parameters.cp_model_presolve = presolve
        status = solver.solve(self.m)
        name = solver.status_name(status)
        ok = status in (self.cp.OPTIMAL, self.cp.FEASIBLE)
        return name, solver if ok else None

    def _chosen(self, solver: Any) -> Chosen:
        chosen: Chosen = {}
        for host, lit in self.present.items():
            if solver.boolean_value(lit):
                c = self.p.by_host[host]
                s = solver.value(self.starts[host])
                chosen[host] = tuple(s + off for off in c.offsets)
        return chosen
