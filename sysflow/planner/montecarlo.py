"""A fast model of how the engine executes a plan, replayed on sampled durations (Monte Carlo).

The forecast is a distribution because durations are: each sample draws every operation's duration
from the duration model, failed attempts and their retries, and replays the run as the engine would,
on the planning problem's integer seconds. Durations are log-normal per task × group, and what was
learned about a task × group (its median and spread) is uncertain: each sample first draws that
median and spread once from what the observations allow (a scaled chi-square for the spread, a
normal for the median), shared by every host of the group in that sample, then each host's duration
independently from them; likewise each task × group's failure probability, from its Beta posterior
(a rate learned from a hundred attempts is uncertain). One run's hosts share one true median;
drawing its uncertainty per host instead would fatten every host's tail and push the last host's
finish late. The replay:

* waves of a stage one after another: wave ``w + 1`` starts when every chain of wave ``w`` has ended,
  plus the gate; hosts of a wave ask in the plan's order;
* a chain starts only in a window where its remaining chain, at the p50 durations the engine predicts
  with, ends before the window's end (and before its cutoff); a started chain's next operation starts
  before the cutoff or waits for the next window; chains waiting for a window ask at its start in the
  order the engine's timers wake them, not in the order they began to wait (``_woken``);
* admission is first come, first served per operation: a waiting request holds its place on every
  pool it needs (a later request that shares one waits behind it), budgets are held from a host's
  first operation to its last; a failed host stops its chain.

Rates and spacing are not modelled (they rarely bind a fleet-wide finish). The model is checked
against the real engine on the simulator by ``benchmarks/forecast_calibration.py``.
"""

from __future__ import annotations

import bisect
import copy
import heapq
import math
import random
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import accumulate

import numpy as np
import numpy.typing as npt

from sysflow.planner.problem import Chain, PlanningProblem, ResourceKind
from sysflow.planner.spreads import TaskSpread, spreads

__all__ = ["Outcomes", "Replayed", "Replays", "TaskSpread", "ordered_chains", "replay", "simulate", "spreads"]

MAX_RETRY_DELAY = 60.0  # the engine's cap on one retry delay (actors.ops)


@dataclass(frozen=True)
class Outcomes:
    """Per sample and chain: end (seconds; NaN when the chain did not finish), the index of the window
    it finished in (-1: not finished), and whether it failed. Rows are samples, columns chains."""

    hosts: tuple[str, ...]
    end: npt.NDArray[np.float64]
    window: npt.NDArray[np.int16]
    failed: npt.NDArray[np.bool_]
    chains: tuple[Chain, ...] = field(repr=False, default=())

    @property
    def samples(self) -> int:
        return int(self.end.shape[0])

    def finish(self) -> npt.NDArray[np.float64]:
        """Per sample: when the last chain ended (NaN-free; ``inf`` when some host did not finish)."""
        done = ~np.isnan(self.end) | self.failed
        last = np.nanmax(np.where(np.isnan(self.end), -np.inf, self.end), axis=1)
        return np.where(done.all(axis=1), last, np.inf)


def _sampler(
    chains: Sequence[Chain], spread: Callable[[str, str], TaskSpread]
) -> Callable[[np.random.Generator], tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]]:
    """Draw every operation's run time (attempts plus retry delays) and whether it finally failed."""
    keys: dict[tuple[str, str], int] = {}
    key_of: list[int] = []
    for c in chains:
        for t in c.tasks:
            key_of.append(keys.setdefault((t, c.group), len(keys)))
    specs = [spread(t, g) for t, g in keys]
    mu = np.array([s.mu for s in specs])
    sigma = np.array([s.sigma for s in specs])
    mu_sd = np.array([s.mu_sd for s in specs])
    df = np.array([s.df for s in specs])
    fail = np.array([s.fail_p for s in specs])
    fail_n = np.array([s.fail_n for s in specs])
    fail_known = ~np.isfinite(fail_n) | (fail <= 0.0) | (fail >= 1.0)
    weight = np.where(fail_known, 1.0, fail_n)  # Beta(fail_a, fail_b): the rate's posterior
    fail_a, fail_b = np.where(fail_known, 1.0, fail * weight), np.where(fail_known, 1.0, (1 - fail) * weight)
    retries = np.array([s.retries for s in specs], dtype=np.int64)
    delay = np.array([s.retry_delay for s in specs])
    idx = np.array(key_of, dtype=np.int64)
    n = len(idx)

    estimated = np.isfinite(df)

    def draw(rng: np.random.Generator) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
        # this sample's median and spread per task × group, shared by all its hosts
        scale = np.ones(len(specs))
        if estimated.any():
            scale[estimated] = np.sqrt(df[estimated] / rng.chisquare(df[estimated]))
        mu_s = mu + mu_sd * scale * rng.standard_normal(len(specs))
        m, s = mu_s[idx], (sigma * scale)[idx]
        seconds = np.exp(m + s * rng.standard_normal(n))
        failed = np.zeros(n, dtype=bool)
        p = np.where(fail_known, fail, rng.beta(fail_a, fail_b))[idx] if fail.any() else fail[idx]
        if p.any():
            tries = rng.geometric(np.clip(1.0 - p, 1e-9, 1.0))  # attempts up to the first success
            allowed = retries[idx] + 1
            failed = tries > allowed
            attempts = np.minimum(tries, allowed)
            for i in np.flatnonzero(attempts > 1):
                extra = int(attempts[i]) - 1
                seconds[i] += float(np.exp(m[i] + s[i] * rng.standard_normal(extra)).sum())
                seconds[i] += sum(min(MAX_RETRY_DELAY, delay[idx[i]] * 2.0**a) for a in range(extra))
        return seconds, failed

    return draw


def simulate(
    problem: PlanningProblem,
    order: Sequence[str],
    spread: Callable[[str, str], TaskSpread],
    *,
    samples: int = 100,
    seed: int = 0,
) -> Outcomes:
    """Replay ``problem`` ``samples`` times on sampled durations, hosts asking in ``order``."""
    chains = ordered_chains(problem, order)
    draw = _sampler(chains, spread)
    rng = np.random.default_rng(seed)
    n = len(chains)
    end = np.full((samples, n), np.nan)
    window = np.full((samples, n), -1, dtype=np.int16)
    failed = np.zeros((samples, n), dtype=bool)
    static = _Static(problem, chains)
    for s in range(samples):
        seconds, fails = draw(rng)
        r = _Replay(problem, static, _split(static, seconds, fails), ties=s)
        r.run()
        end[s], window[s], failed[s] = r.end, r.done_window, r.failed
    return Outcomes(tuple(c.host for c in chains), end, window, failed, tuple(chains))


def ordered_chains(problem: PlanningProblem, order: Sequence[str]) -> list[Chain]:
    """The chains in the order the engine dispatches them: by wave, then as ``order`` ranks hosts."""
    rank = {h: i for i, h in enumerate(order)}
    return sorted(problem.chains, key=lambda c: (c.wave, rank.get(c.host, len(rank))))


_Pairs = tuple[tuple[int, int], ...]
# (chain, its (resource, amount) pairs, their resources, its budgets' pairs, its pools' pairs,
# whether its resources include every pool all chains use)
_Req = tuple[int, _Pairs, tuple[int, ...], _Pairs, _Pairs, bool]
_Tail = tuple[_Pairs, tuple[int, ...], _Pairs, _Pairs]  # a request without its chain and cover
_Span = tuple[float, float, float]  # a window's (start, cutoff, end)


class _Static:
    """What every replay of the same chains shares: windows, predictions, requests, waves.

    Hosts of a group have the same uses, durations and windows: each distinct one is converted once
    and shared (read only) by every chain that has it."""

    def __init__(self, problem: PlanningProblem, chains: Sequence[Chain], stretch: float = 1.0) -> None:
        self.pools = [r.kind is ResourceKind.POOL for r in problem.resources]
        self.sizes = [len(c.ops) for c in chains]
        self.offsets = list(accumulate(self.sizes, initial=0))  # of each chain's first operation
        self.windows = _spans(chains, stretch)
        self.rest = _rests(chains)
        shapes: dict[tuple[object, ...], tuple[list[_Tail], _Pairs, frozenset[int]]] = {}
        of = []
        for c in chains:
            key = (len(c.ops), c.uses, c.span_uses)
            if key not in shapes:
                shapes[key] = self._shape(c)
            of.append(shapes[key])
        everyone = [pools for _, _, pools in shapes.values()]
        self.universal = frozenset.intersection(*everyone) if everyone else frozenset()
        self.asks: list[list[_Req]] = []  # per chain, per operation; the first takes the budgets too
        covers = {id(t): self.universal.issubset(t[1]) for tails, _, _ in shapes.values() for t in tails}
        for i, (tails, _, _) in enumerate(of):
            self.asks.append([(i, *tail, covers[id(tail)]) for tail in tails])
        self.budget_of = [budgets for _, budgets, _ in of]
        self._waves(problem, chains)

    def _shape(self, c: Chain) -> tuple[list[_Tail], _Pairs, frozenset[int]]:
        """A chain's requests per operation, its budgets, and the pools it uses at all."""
        budgets = tuple((u.resource, u.amount) for u in c.span_uses if u.amount > 0)
        tails: list[_Tail] = []
        for k in range(len(c.ops)):
            pairs = [(u.resource, u.amount) for u in c.op_uses(k) if self.pools[u.resource] and u.amount > 0]
            tails.append(_tail(pairs + list(budgets) if k == 0 else pairs, self.pools))
        used = frozenset(u.resource for us in c.uses for u in us if self.pools[u.resource])
        return tails, budgets, used

    def _waves(self, problem: PlanningProblem, chains: Sequence[Chain]) -> None:
        waves: dict[str, dict[int, list[int]]] = {}
        for i, c in enumerate(chains):
            waves.setdefault(c.stage, {}).setdefault(c.wave, []).append(i)
        self.stages = list(waves)
        self.waves = [[ws[w] for w in sorted(ws)] for ws in waves.values()]
        self.gates = [[problem.gate(w) for w in sorted(ws)] for ws in waves.values()]
        self.position = [(0, 0)] * len(chains)  # (stage index, wave position) of each chain
        for si, ws in enumerate(self.waves):
            for pos, members in enumerate(ws):
                for i in members:
                    self.position[i] = (si, pos)

    def stretched(self, chains: Sequence[Chain], stretch: float) -> _Static:
        """The same with every window ``stretch`` times as long (the rest is shared, not copied)."""
        other = copy.copy(self)
        other.windows = _spans(chains, stretch)
        return other


def _spans(chains: Sequence[Chain], stretch: float) -> list[list[_Span]]:
    """Each chain's windows as floats; chains sharing one tuple of windows share one list."""
    done: dict[int, list[_Span]] = {}  # by identity: hashing windows costs more than converting
    out = []
    for c in chains:
        spans = done.get(id(c.windows))
        if spans is None:
            spans = done[id(c.windows)] = [_stretched(w.start, w.cutoff, w.end, stretch) for w in c.windows]
        out.append(spans)
    return out


def _rests(chains: Sequence[Chain]) -> list[list[float]]:
    """Per chain and operation, the predicted length of the rest of the chain from it on."""
    done: dict[tuple[int, ...], list[float]] = {}
    out = []
    for c in chains:
        rest = done.get(c.durations)
        if rest is None:
            d = c.durations
            rest = done[d] = [float(sum(d[k:])) for k in range(len(d))]
        out.append(rest)
    return out


def _split(
    st: _Static, seconds: npt.NDArray[np.float64], fails: npt.NDArray[np.bool_]
) -> tuple[list[list[float]], list[int]]:
    """Flat run times per chain, and the operation each chain finally fails at (-1: none)."""
    offs = st.offsets
    flat = seconds.tolist()
    secs = [flat[offs[i] : offs[i + 1]] for i in range(len(st.sizes))]
    fail_at = [-1] * len(st.sizes)
    for j in np.flatnonzero(fails).tolist():
        i = bisect.bisect_right(offs, j) - 1
        if fail_at[i] < 0:
            fail_at[i] = j - offs[i]
    return secs, fail_at


class _Replay:
    """One replay: events on a heap, first-come-first-served admission, windows, waves.

    Events are ``(time, sequence, code)``: ``code < n`` is chain ``code``'s operation ending,
    ``n <= code < 2n`` chain ``code - n`` asking to be admitted at a window's start, and ``2n + j`` the
    ``j``-th wave start pushed. Chains woken at the same instant are ordered at random (``ties``
    seeds it): the engine's timer heap pops equal deadlines in an order of its own. ``refused`` collects every resource that refused a request because it
    was at capacity: relaxing the capacity of any other resource replays the same run."""

    def __init__(
        self,
        problem: PlanningProblem,
        static: _Static,
        run_times: tuple[list[list[float]], list[int]],
        capacity: Mapping[int, float] | None = None,
        ties: int = 0,
    ) -> None:
        st = self.st = static
        self.tie = random.Random(ties).random  # the order of chains woken at the same instant
        self.cap = [float(r.capacity) for r in problem.resources]
        for r, units in (capacity or {}).items():
            self.cap[r] = units
        self.capeps = [c + 1e-9 for c in self.cap]
        self.used = [0.0] * len(problem.resources)
        n = self.n = len(st.sizes)
        self.secs, self.fail_at = run_times
        self.windows, self.rest, self.asks = st.windows, st.rest, st.asks
        self.k = [0] * n
        self.win = [-1] * n
        self.started = [False] * n
        self.end = [math.nan] * n
        self.done_window = [-1] * n
        self.failed = [False] * n
        self.queue: deque[_Req] = deque()
        self.holding: list[_Pairs] = [()] * n  # the pools of each chain's running operation
        self.heap: list[tuple[float, float, int]] = []  # (time, order among equal times, code)
        self.seq = 0
        self.wave_starts: list[tuple[int, int]] = []
        self.left: dict[tuple[int, int], int] = {}
        self.wave_end: dict[tuple[int, int], float] = {}
        self.universal = st.universal
        self.refused: set[int] = set()

    def _push(self, t: float, code: int) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, code))

    def run(self) -> None:
        n, n2 = self.n, 2 * self.n
        for si in range(len(self.st.waves)):
            self.wave_starts.append((si, 0))
            self._push(0.0, n2 + si)
        heap, queue, pop = self.heap, self.queue, heapq.heappop
        op_end, admit, pump = self._op_end, self._admit, self._pump
        while heap:
            t, _, code = pop(heap)
            if code < n:
                op_end(t, code)
            elif code < n2:
                admit(t, code - n)
            else:
                self._start_wave(t, *self.wave_starts[code - n2])
                continue
            if queue:
                pump(t)

    def _start_wave(self, t: float, si: int, pos: int) -> None:
        members = self.st.waves[si][pos]
        self.left[(si, pos)] = len(members)
        self.wave_end[(si, pos)] = t
        for i in members:
            self._admit(t, i)
        self._pump(t)

    def _chain_over(self, t: float, i: int) -> None:
        key = self.st.position[i]
        self.wave_end[key] = max(self.wave_end[key], t)
        self.left[key] -= 1
        if self.left[key] == 0:
            si, pos = key
            if pos + 1 < len(self.st.waves[si]):
                self.wave_starts.append((si, pos + 1))
                self._push(
                    self.wave_end[key] + self.st.gates[si][pos], 2 * self.n + len(self.wave_starts) - 1
                )

    def _admit(self, t: float, i: int) -> None:
        """Find the window the chain's rest fits in from ``t``; ask for admission there (at its start,
        when the chain waits for it: at the instant the engine's timer wakes it, see ``_woken``)."""
        k = self.k[i]
        cur = self.win[i]
        now = round(t, 6)  # the engine reads windows on a clock of whole microseconds
        if cur >= 0:
            s, cut, e = self.windows[i][cur]
            if s <= now < cut and now < e:
                self._ask(i)
                return
        pred = self.rest[i][k]
        for wi, (s, cut, e) in enumerate(self.windows[i]):
            at = max(now, s)
            if at < cut and at + pred <= e:
                self.win[i] = wi
                if at > now:  # the engine's timers due at one instant run in no order of ours
                    heapq.heappush(self.heap, (_woken(t, s), self.tie(), self.n + i))
                else:
                    self._ask(i)
                return
        self.end[i] = math.nan  # deferred: no window fits
        self._release_budget(i)
        self._chain_over(t, i)

    def _ask(self, i: int) -> None:
        k = self.k[i]
        self.queue.append(self.asks[i][k] if k or not self.started[i] else _without_budget(self.st, i))

    def _pump(self, t: float) -> None:
        """Grant waiting requests in order while they fit; then see who may pass the first that does not."""
        queue, used, capeps, granted = self.queue, self.used, self.capeps, self._granted
        while queue:
            req = queue[0]
            for r, a in req[1]:
                if used[r] + a > capeps[r]:
                    self.refused.add(r)
                    if not (req[5] and (not req[3] or self._holds(req) is req[2])):
                        self._pump_behind(t)  # it may not hold every pool: some behind may pass
                    return
            queue.popleft()
            for r, a in req[1]:
                used[r] += a
            granted(t, req)  # may ask again (at the back of the queue)

    def _pump_behind(self, t: float) -> None:
        """The head of the queue does not fit: grant those behind it that share nothing it waits
        for; stop at the first that blocks a pool everyone needs."""
        queue, used, capeps, universal = self.queue, self.used, self.capeps, self.universal
        head = queue.popleft()
        blocked = set(self._holds(head))
        if universal <= blocked:
            queue.appendleft(head)
            return
        keep = [head]
        while queue:
            req = queue.popleft()
            fits = blocked.isdisjoint(req[2])
            if fits:
                for r, a in req[1]:
                    if used[r] + a > capeps[r]:
                        self.refused.add(r)
                        fits = False
                        break
            if fits:
                for r, a in req[1]:
                    used[r] += a
                self._granted(t, req)
                continue
            blocked.update(self._holds(req))
            keep.append(req)
            if universal <= blocked:
                break
        queue.extendleft(reversed(keep))

    def _holds(self, req: _Req) -> tuple[int, ...]:
        """Where a refused request holds its place: like the engine, a new host waiting for a budget
        slot holds it on the budget only (hosts in maintenance free it, their next operations pass)."""
        used, cap = self.used, self.cap
        for r, a in req[3]:
            if used[r] + 1e-9 > cap[r] - a:
                self.refused.add(r)
                return tuple(b for b, _ in req[3])
        return req[2]

    def _granted(self, t: float, req: _Req) -> None:
        i = req[0]
        _, cut, e = self.windows[i][self.win[i]]
        k = self.k[i]
        if t < cut and t < e and (self.started[i] or t + self.rest[i][k] <= e):
            self.started[i] = True
            self.holding[i] = req[4]
            self.seq += 1
            heapq.heappush(self.heap, (t + self.secs[i][k], self.seq, i))
            return
        used = self.used
        for r, a in req[1]:
            used[r] -= a
        self.win[i] = -1
        self._admit(t, i)

    def _release_budget(self, i: int) -> None:
        if self.started[i]:
            used = self.used
            for r, a in self.st.budget_of[i]:
                used[r] -= a

    def _op_end(self, t: float, i: int) -> None:
        used = self.used
        for r, a in self.holding[i]:
            used[r] -= a
        k = self.k[i] + 1
        if self.fail_at[i] == k - 1:
            self.failed[i] = True
            self.end[i] = t
            self._release_budget(i)
            self._chain_over(t, i)
            return
        self.k[i] = k
        if k == self.st.sizes[i]:
            self.end[i] = t
            self.done_window[i] = self.win[i]
            self._release_budget(i)
            self._chain_over(t, i)
            return
        s, cut, e = self.windows[i][self.win[i]]
        if s <= t < cut and t < e:  # still inside the window it started in: ask for the next one
            self.queue.append(self.asks[i][k])
        else:
            self._admit(t, i)


def _woken(t: float, start: float) -> float:
    """When a chain that waits from ``t`` for a window opening at ``start`` asks again: when the
    engine's timer for it fires. The engine sleeps ``start - now`` seconds, ``now`` read on a clock
    of whole microseconds, and its loop adds that to its own (float) time: the timers of chains that
    wait for the same window are due within a microsecond of its start, in an order set by where
    each chain's ``t`` falls between two microseconds, not in the order they began to wait. That
    order decides which of them the window's first slots go to. Chains that began to wait at the
    same instant (those still queued for admission at the cutoff, released together by the first
    operation to end after it) are due at the same time and resume together, in the order the
    loop's timer heap pops equal deadlines: arbitrary, so the replay draws it."""
    return t + (timedelta(seconds=start) - timedelta(seconds=t)).total_seconds()


def _without_budget(st: _Static, i: int) -> _Req:
    """The first operation's request of a host already in maintenance (after a window change)."""
    pools = st.asks[i][0][4]
    ids = tuple(r for r, _ in pools)
    return (i, pools, ids, (), pools, st.universal.issubset(ids))


def _tail(pairs: Sequence[tuple[int, int]], pools: Sequence[bool]) -> _Tail:
    return (
        tuple(pairs),
        tuple(r for r, _ in pairs),
        tuple((r, a) for r, a in pairs if not pools[r]),
        tuple((r, a) for r, a in pairs if pools[r]),
    )


def _stretched(start: int, cutoff: int, end: int, stretch: float) -> tuple[float, float, float]:
    """A window ``stretch`` times as long, its cutoff as far from its end as before."""
    new_end = start + (end - start) * stretch
    return (float(start), new_end - (end - cutoff), new_end)


@dataclass(frozen=True)
class Replayed:
    """One replay's outcome per chain (end, finishing window, failure), and the resources that
    refused a request because they were at capacity (relaxing any other one changes nothing)."""

    end: list[float]
    window: list[int]
    failed: list[bool]
    refused: frozenset[int]


class Replays:
    """Replays of the same chains on the same run times with constraints relaxed in turn; what does
    not change between them (requests, predictions, waves, run times) is built once."""

    def __init__(
        self,
        problem: PlanningProblem,
        chains: Sequence[Chain],
        seconds: npt.NDArray[np.float64],
        fails: npt.NDArray[np.bool_],
    ) -> None:
        self.problem, self.chains = problem, chains
        self._static = {1.0: _Static(problem, chains)}
        self._run_times = _split(self._static[1.0], seconds, fails)

    def run(self, *, capacity: Mapping[int, float] | None = None, stretch: float = 1.0) -> Replayed:
        """One replay; ``capacity`` overrides resources' capacities, ``stretch`` scales every window."""
        st = self._static.get(stretch)
        if st is None:
            st = self._static[stretch] = self._static[1.0].stretched(self.chains, stretch)
        r = _Replay(self.problem, st, self._run_times, capacity)
        r.run()
        return Replayed(r.end, r.done_window, r.failed, frozenset(r.refused))


def replay(
    problem: PlanningProblem,
    chains: Sequence[Chain],
    seconds: npt.NDArray[np.float64],
    fails: npt.NDArray[np.bool_],
    *,
    capacity: Mapping[int, float] | None = None,
    stretch: float = 1.0,
) -> tuple[list[float], list[int], list[bool]]:
    """One replay of ``chains`` (in asking order) with these run times (flattened per chain, per
    operation) and final failures: per chain its end, finishing window and failure. ``capacity``
    overrides resources' capacities and ``stretch`` scales every window's length (relaxations)."""
    r = Replays(problem, chains, seconds, fails).run(capacity=capacity, stretch=stretch)
    return r.end, r.window, r.failed
