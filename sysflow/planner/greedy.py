"""The greedy scheduler: a serial list scheduler with a small portfolio of dispatch rules.

Hosts are taken wave by wave (a stage's wave ``w + 1`` is released when its wave ``w`` has ended plus
the gate), and inside a wave in the order of a dispatch rule. Each host's chain is placed at the
earliest time where every block lies inside one of its windows and every resource has room; a
conflict jumps the candidate start past the last second that conflicts, so a placement costs a few
NumPy slice reductions. Identical hosts (same durations, demands, windows, stage and wave) resume the
search where the previous one was placed: usage only grows, so earlier starts cannot have become
feasible. Every rule of the portfolio is tried and the best :func:`~sysflow.planner.solution.score`
kept. Always available, fast, and the hint for CP-SAT.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sysflow.planner.problem import Chain, PlanningProblem, Window
from sysflow.planner.solution import Assignment, Score, block_items, blocks, done_window, latest_start, score
from sysflow.planner.timeline import Timeline, timelines

__all__ = ["DEFAULT_RULES", "DispatchRule", "GreedyResult", "greedy"]


class DispatchRule(enum.Enum):
    """Order of hosts inside a wave."""

    LONGEST_FIRST = "longest"  # longest chain first
    SHORTEST_FIRST = "shortest"  # shortest chain first: the most hosts per window
    SCARCEST_GROUP_FIRST = "scarcest"  # groups with the least window time per host first
    INPUT_ORDER = "input"  # as given


DEFAULT_RULES: tuple[DispatchRule, ...] = tuple(DispatchRule)
LARGE_FLEET = 5000  # chains past which the default portfolio is one rule, to stay fast
MAX_MOVES = 200  # hosts the repair pass may move into an earlier window

_Item = tuple[int, int, int, int]  # (resource, offset in block, length, amount)


@dataclass(frozen=True)
class GreedyResult:
    """The best assignment of the portfolio, which rule made it, and which resources pushed starts."""

    assignment: Assignment
    rule: DispatchRule
    score: Score
    conflicts: Mapping[str, int] = field(default_factory=dict)


def greedy(problem: PlanningProblem, rules: Sequence[DispatchRule] | None = None) -> GreedyResult:
    """Schedule ``problem`` with each rule of ``rules`` and return the best result.

    By default every rule is tried; past ``LARGE_FLEET`` chains only shortest first and input order.
    """
    if rules is None:
        big = len(problem.chains) > LARGE_FLEET
        rules = (DispatchRule.SHORTEST_FIRST, DispatchRule.INPUT_ORDER) if big else DEFAULT_RULES
    if not rules:
        raise ValueError("greedy needs at least one dispatch rule")
    best: tuple[GreedyResult, _Scheduler] | None = None
    for rule in rules:
        sched = _Scheduler(problem)
        result = sched.run(_order(problem, rule), rule)
        if best is None or result.score < best[0].score:
            best = (result, sched)
    assert best is not None
    result, sched = best
    if problem.split_chains:
        return result
    result = sched.finish_earlier(result)
    late = _stragglers(problem, result.assignment)
    if not late:
        return result
    sched = _Scheduler(problem)
    promoted = sched.run(_promote(_order(problem, result.rule), late), result.rule)
    promoted = sched.finish_earlier(promoted)
    return promoted if promoted.score < result.score else result


def _order(problem: PlanningProblem, rule: DispatchRule) -> list[Chain]:
    chains = list(problem.chains)
    if rule is DispatchRule.INPUT_ORDER:
        return sorted(chains, key=lambda c: c.wave)
    if rule is DispatchRule.LONGEST_FIRST:
        return sorted(chains, key=lambda c: (c.wave, -c.total))
    if rule is DispatchRule.SHORTEST_FIRST:
        return sorted(chains, key=lambda c: (c.wave, c.total))
    scarcity = _scarcity(chains)
    return sorted(chains, key=lambda c: (c.wave, scarcity[c.group], -c.total))


def _stragglers(problem: PlanningProblem, a: Assignment) -> set[str]:
    """The hosts, past their first window, that end after every other stage has finished: a list
    scheduler fills the early windows with whoever came first and leaves a few hosts of a
    long-chain stage to a window days later, where they alone set the finish."""
    ends: dict[str, int] = {}
    for c in problem.chains:
        if c.host in a.starts:
            ends[c.stage] = max(ends.get(c.stage, 0), a.end(c))
    if len(ends) < 2:
        return set()
    last, second = sorted(ends, key=ends.__getitem__)[-1], sorted(ends.values())[-2]
    return {
        c.host
        for c in problem.chains
        if c.stage == last
        and c.host in a.starts
        and a.end(c) > second
        and done_window(c, a.starts[c.host][-1]) > 0
    }


def _promote(order: Sequence[Chain], late: set[str]) -> list[Chain]:
    """``order`` with ``late`` hosts, and a quarter as many more of their stage and wave, first in
    their wave: they get the early windows, and the extra ones cover the slots a long chain needs."""
    extra: Counter[tuple[str, int]] = Counter()
    for c in order:
        if c.host in late:
            extra[(c.stage, c.wave)] += 1
    for key, n in extra.items():
        extra[key] = -(-n // 4)
    first = set(late)
    for c in order:
        key = (c.stage, c.wave)
        if extra[key] > 0 and c.host not in first:
            first.add(c.host)
            extra[key] -= 1
    return sorted(order, key=lambda c: (c.wave, c.host not in first))


def _scarcity(chains: Iterable[Chain]) -> dict[str, float]:
    """Window seconds per host of each group: less is scarcer."""
    hosts: Counter[str] = Counter()
    window_time: dict[str, int] = {}
    for c in chains:
        hosts[c.group] += c.weight
        window_time[c.group] = sum(w.end - w.start for w in c.windows)
    return {g: window_time[g] / n for g, n in hosts.items()}


@dataclass(frozen=True)
class _Kind:
    """What identical chains share: blocks, what each block holds, each block's start ranges."""

    blocks: list[tuple[int, int]]
    items: list[list[_Item]]
    ranges: list[list[tuple[int, int]]]  # per block: (window start, latest start) where it fits
    impossible: str
    offsets: tuple[int, ...]  # of each operation from the start of its block


@dataclass
class _Stage:
    wave: int = -1
    release: int = 0
    wave_end: int = 0
    incomplete: bool = False  # some host of this or an earlier wave was deferred
    wave_deferred: bool = False


class _Scheduler:
    """One pass of the list scheduler over an ordered list of chains."""

    def __init__(self, problem: PlanningProblem) -> None:
        self.problem = problem
        self.lines: list[Timeline] = timelines(problem)
        self.kinds: dict[tuple[object, ...], _Kind] = {}
        self.cursor: dict[tuple[object, ...], int | None] = {}
        self.conflicts: Counter[int] = Counter()
        self.starts: dict[str, tuple[int, ...]] = {}
        self.deferred: dict[str, str] = {}
        self.stages: dict[str, _Stage] = {}
        self._last_deferred: dict[tuple[object, ...], str] = {}

    def run(self, order: Sequence[Chain], rule: DispatchRule) -> GreedyResult:
        for chain in order:
            self._schedule(chain)
        a = Assignment(self.starts, self.deferred)
        names = {self.problem.resources[r].name: n for r, n in self.conflicts.items()}
        return GreedyResult(a, rule, score(self.problem, a), names)

    def _stage(self, chain: Chain) -> _Stage:
        st = self.stages.setdefault(chain.stage, _Stage(wave=chain.wave))
        if chain.wave != st.wave:
            st.release = st.wave_end + self.problem.gate(st.wave)
            st.incomplete = st.incomplete or st.wave_deferred
            st.wave, st.wave_deferred = chain.wave, False
        return st

    def _schedule(self, chain: Chain) -> None:
        st = self._stage(chain)
        if st.incomplete:
            self._defer(chain, st, f"an earlier wave of {chain.stage} is not complete (wave barrier)")
            return
        kind_key = (chain.durations, chain.uses, chain.span_uses, id(chain.windows))
        kind = self.kinds.get(kind_key)
        if kind is None:
            kind = self.kinds[kind_key] = self._kind(chain)
        if kind.impossible:
            self._defer(chain, st, kind.impossible)
            return
        key = (kind_key, chain.stage, chain.wave, chain.release)
        if key in self.cursor and self.cursor[key] is None:
            self._defer(chain, st, self.deferred[self._last_deferred[key]])
            return
        t0 = max(st.release, chain.release, self.cursor.get(key) or 0)
        starts = self._place(chain, kind, t0)
        self.cursor[key] = starts[0] if starts else None
        if starts is None:
            self._last_deferred[key] = chain.host
            self._defer(chain, st, self._reason(chain))
            return
        self._commit(chain, kind, starts)
        self.starts[chain.host] = starts
        st.wave_end = max(st.wave_end, starts[-1] + chain.durations[-1])

    def _kind(self, chain: Chain) -> _Kind:
        bl = blocks(chain, self.problem.split_chains)
        items = [block_items(self.problem, chain, a, b) for a, b in bl]
        ranges = [[(w.start, latest_start(chain, a, b, w)) for w in chain.windows] for a, b in bl]
        ranges = [[(lo, hi) for lo, hi in rs if lo <= hi] for rs in ranges]
        offsets = tuple(chain.offsets[i] - chain.offsets[a] for a, b in bl for i in range(a, b))
        return _Kind(bl, items, ranges, self._impossible(chain), offsets)

    def _defer(self, chain: Chain, st: _Stage, reason: str) -> None:
        self.deferred[chain.host] = reason
        st.wave_deferred = True

    def _impossible(self, chain: Chain) -> str:
        if not chain.windows:
            return "no maintenance window in the planning horizon"
        for us in chain.uses:
            for u in us:
                res = self.problem.resources[u.resource]
                if u.amount > res.capacity:
                    return f"needs {u.amount} of {res.name}, whose capacity is {res.capacity}"
        return ""

    def _reason(self, chain: Chain) -> str:
        fits = [w for w in chain.windows if _fits(chain, w, self.problem.split_chains)]
        if not fits:
            longest = max(w.end - w.start for w in chain.windows)
            return f"chain of {chain.total} s fits in no window (longest window {longest} s)"
        if all(latest_start(chain, 0, len(chain.ops), w) < chain.release for w in fits):
            return "no window left after its release time"
        used = {u.resource for us in chain.uses for u in us} | {u.resource for u in chain.span_uses}
        worst = max(used, key=lambda r: self.conflicts[r], default=None)
        if worst is None:
            return "wave barrier: previous wave ends too late for the remaining windows"
        res = self.problem.resources[worst]
        return f"capacity: {res.label or res.name} is full in every remaining window"

    def _place(self, chain: Chain, kind: _Kind, t0: int) -> tuple[int, ...] | None:
        """Earliest starts of every operation, from ``t0`` on, or None if nothing fits."""
        spans = self.problem.split_chains and chain.span_uses
        for _ in range(100_000):
            placed = self._place_blocks(chain, kind, t0)
            if placed is None or not spans:
                return placed
            end = placed[-1] + chain.durations[-1]
            nxt = self._jump([(u.resource, 0, end - placed[0], u.amount) for u in chain.span_uses], placed[0])
            if nxt is None:
                return placed
            t0 = nxt
        return None  # pragma: no cover - bounded search; never reached on sane instances

    def _place_blocks(self, chain: Chain, kind: _Kind, t: int) -> tuple[int, ...] | None:
        starts: list[int] = []
        for (a, b), its, ranges in zip(kind.blocks, kind.items, kind.ranges, strict=True):
            s = self._earliest(its, ranges, t)
            if s is None:
                return None
            starts.extend(s + off for off in kind.offsets[a:b])
            t = starts[-1] + chain.durations[b - 1]
        return tuple(starts)

    def _earliest(self, its: list[_Item], ranges: list[tuple[int, int]], t: int) -> int | None:
        for w_start, hi in ranges:
            lo = max(t, w_start)
            while lo <= hi:
                nxt = self._jump(its, lo)
                if nxt is None:
                    return lo
                lo = nxt
        return None

    def _jump(self, its: list[_Item], s: int) -> int | None:
        best: int | None = None
        for r, off, length, amount in its:
            j = self.lines[r].jump(s + off, length, amount)
            if j is not None:
                self.conflicts[r] += 1
                cand = j - off
                best = cand if best is None else max(best, cand)
        return best

    # -- the last hosts earlier: a repair pass over the finished schedule --------------------------

    def finish_earlier(self, result: GreedyResult, moves: int = MAX_MOVES) -> GreedyResult:
        """Move the host that finishes last into an earlier window of its own, re-placing the hosts
        it displaces there (only hosts of their stage's last wave outside their first window, so no
        wave barrier moves and no host leaves its first window); keep each move that ends the plan
        sooner. A list scheduler fills this week's windows with whoever asked first and leaves a few
        hosts of a crowded group to next week; this pass pulls them back when others have room later.
        """
        p = self.problem
        last_wave = {c.stage: c.wave for c in p.chains}
        for c in p.chains:
            last_wave[c.stage] = max(last_wave[c.stage], c.wave)
        movable = [c for c in p.chains if c.wave == last_wave[c.stage]]
        improved = False
        for _ in range(moves):
            placed = [c for c in movable if c.host in self.starts]
            if not placed:
                break
            latest = max(placed, key=lambda c: self._end(c))
            if not self._move_earlier(latest, placed):
                break
            improved = True
        if not improved:
            return result
        a = Assignment(dict(self.starts), self.deferred)
        return GreedyResult(a, result.rule, score(p, a), result.conflicts)

    def _end(self, c: Chain) -> int:
        return self.starts[c.host][-1] + c.durations[-1]

    def _move_earlier(self, late: Chain, placed: Sequence[Chain]) -> bool:
        makespan = self._end(late)
        current = done_window(late, self.starts[late.host][-1])
        kind = self.kinds[(late.durations, late.uses, late.span_uses, id(late.windows))]
        used = _resources(late)
        release = max(self.stages[late.stage].release, late.release)
        for k in range(current):
            w = late.windows[k]
            if latest_start(late, 0, len(late.ops), w) < max(w.start, release):
                continue
            others = sorted(
                (
                    c
                    for c in placed
                    if c.windows is not late.windows  # a host with the same windows only swaps places
                    and self.starts[c.host][0] < w.end
                    and self._end(c) > w.start
                    and done_window(c, self.starts[c.host][-1]) > 0
                    and not used.isdisjoint(_resources(c))
                ),
                key=lambda c: self.starts[c.host][0],
            )
            if self._try_move(late, kind, k, release, others, makespan):
                return True
        return False

    def _try_move(
        self, late: Chain, kind: _Kind, k: int, release: int, others: Sequence[Chain], makespan: int
    ) -> bool:
        """Evict ``others``, place ``late`` in its window ``k``, re-place the evicted; undo unless every
        host is placed again and all end before ``makespan``."""
        old = {c.host: self.starts[c.host] for c in (late, *others)}
        for c in (late, *others):
            self._commit(c, self._kind_of(c), old[c.host], -1)
        w = late.windows[k]
        lo, hi = kind.ranges[0][k] if len(kind.ranges[0]) > k else (w.start, w.start - 1)
        s = self._earliest(kind.items[0], [(lo, hi)], max(release, lo))
        new: dict[str, tuple[int, ...]] = {}
        if s is not None:
            new[late.host] = tuple(s + off for off in kind.offsets)
            self._commit(late, kind, new[late.host])
            for c in others:
                ck = self._kind_of(c)
                got = self._place(c, ck, max(self.stages[c.stage].release, c.release))
                if got is None or got[-1] + c.durations[-1] >= makespan:
                    break
                new[c.host] = got
                self._commit(c, ck, got)
        if len(new) == len(old):
            self.starts.update(new)
            return True
        for host, starts in new.items():
            c = self.problem.by_host[host]
            self._commit(c, self._kind_of(c), starts, -1)
        for c in (late, *others):
            self._commit(c, self._kind_of(c), old[c.host])
        return False

    def _kind_of(self, chain: Chain) -> _Kind:
        return self.kinds[(chain.durations, chain.uses, chain.span_uses, id(chain.windows))]

    def _commit(self, chain: Chain, kind: _Kind, starts: tuple[int, ...], sign: int = 1) -> None:
        for (a, _), its in zip(kind.blocks, kind.items, strict=True):
            for r, off, length, amount in its:
                self.lines[r].add(starts[a] + off, length, sign * amount)
        if self.problem.split_chains:
            end = starts[-1] + chain.durations[-1]
            for u in chain.span_uses:
                self.lines[u.resource].add(starts[0], end - starts[0], sign * u.amount)


def _resources(chain: Chain) -> frozenset[int]:
    return frozenset(u.resource for us in chain.uses for u in us) | {u.resource for u in chain.span_uses}


def _fits(chain: Chain, w: Window, split: bool) -> bool:
    return all(latest_start(chain, a, b, w) >= w.start for a, b in blocks(chain, split))
