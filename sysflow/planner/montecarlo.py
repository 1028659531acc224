"""A fast model of how the engine executes a plan, replayed on sampled durations (Monte Carlo).

The forecast is a distribution because durations are: each sample draws every operation's duration
from the duration model (log-normal per task × group, with the uncertainty of the group's median
itself when little was observed), failed attempts and their retries, and replays the run as the engine
would, on the planning problem's integer seconds:

* waves of a stage one after another: wave ``w + 1`` starts when every chain of wave ``w`` has ended,
  plus the gate; hosts of a wave ask in the plan's order;
* a chain starts only in a window where its remaining chain, at the p50 durations the engine predicts
  with, ends before the window's end (and before its cutoff); a started chain's next operation starts
  before the cutoff or waits for the next window;
* admission is first come, first served per operation: a waiting request holds its place on every
  pool it needs (a later request that shares one waits behind it), budgets are held from a host's
  first operation to its last; a failed host stops its chain.

Rates and spacing are not modelled (they rarely bind a fleet-wide finish). The model is checked
against the real engine on the simulator by ``benchmarks/forecast_calibration.py``.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from sysflow.planner.durations import DurationModel
from sysflow.planner.problem import Chain, PlanningProblem, ResourceKind

__all__ = ["Outcomes", "TaskSpread", "ordered_chains", "replay", "simulate", "spreads"]

MIN_T_SAMPLES = 10  # observations from which a learned spread is replayed as Student's t
MAX_RETRY_DELAY = 60.0  # the engine's cap on one retry delay (actors.ops)


@dataclass(frozen=True, slots=True)
class TaskSpread:
    """What one task takes on one group: log-normal ``mu``/``sigma`` per host, ``mu_sd`` the
    uncertainty of ``mu`` itself, the failure probability of one attempt, retries and their delay."""

    mu: float
    sigma: float
    mu_sd: float = 0.0
    df: float = math.inf  # degrees of freedom of the per-host spread (Student's t when few were seen)
    fail_p: float = 0.0
    retries: int = 0
    retry_delay: float = 1.0


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
    retries = np.array([s.retries for s in specs], dtype=np.int64)
    delay = np.array([s.retry_delay for s in specs])
    idx = np.array(key_of, dtype=np.int64)
    n = len(idx)

    def draw(rng: np.random.Generator) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
        mu_s = mu + mu_sd * rng.standard_normal(len(specs))
        m, s, dfs = mu_s[idx], sigma[idx], df[idx]
        z = rng.standard_normal(n)
        few = np.isfinite(dfs)
        if few.any():  # the predictive spread of a log-normal whose sigma was estimated: Student's t
            z[few] = rng.standard_t(dfs[few])
        seconds = np.exp(m + s * z)
        failed = np.zeros(n, dtype=bool)
        p = fail[idx]
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
        r = _Replay(problem, static, seconds, fails)
        r.run()
        end[s], window[s], failed[s] = r.end, r.done_window, r.failed
    return Outcomes(tuple(c.host for c in chains), end, window, failed, tuple(chains))


def ordered_chains(problem: PlanningProblem, order: Sequence[str]) -> list[Chain]:
    """The chains in the order the engine dispatches them: by wave, then as ``order`` ranks hosts."""
    rank = {h: i for i, h in enumerate(order)}
    return sorted(problem.chains, key=lambda c: (c.wave, rank.get(c.host, len(rank))))


_Pairs = tuple[tuple[int, int], ...]
# (chain, resources, amounts, its budgets as (resource, amount), its pools as (resource, amount))
_Req = tuple[int, tuple[int, ...], tuple[int, ...], _Pairs, _Pairs]


class _Static:
    """What every replay of the same chains shares: windows, predictions, requests, waves."""

    def __init__(self, problem: PlanningProblem, chains: Sequence[Chain], stretch: float = 1.0) -> None:
        self.pools = [r.kind is ResourceKind.POOL for r in problem.resources]
        self.sizes = [len(c.ops) for c in chains]
        self.windows = [[_stretched(w.start, w.cutoff, w.end, stretch) for w in c.windows] for c in chains]
        self.rest = [[float(sum(c.durations[k:])) for k in range(len(c.ops))] for c in chains]
        self.asks: list[list[_Req]] = []  # per chain, per operation; the first takes the budgets too
        for i, c in enumerate(chains):
            per_op = []
            for k in range(len(c.ops)):
                us = [u for u in c.op_uses(k) if self.pools[u.resource] and u.amount > 0]
                if k == 0:
                    us += [u for u in c.span_uses if u.amount > 0]
                per_op.append(_request(i, [(u.resource, u.amount) for u in us], self.pools))
            self.asks.append(per_op)
        self.budget_of = [tuple(u for u in c.span_uses if u.amount > 0) for c in chains]
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
        everyone: set[int] | None = None
        for c in chains:
            ids = {u.resource for us in c.uses for u in us if self.pools[u.resource]}
            everyone = ids if everyone is None else everyone & ids
        self.universal = frozenset(everyone or ())


class _Replay:
    """One replay: events on a heap, first-come-first-served admission, windows, waves."""

    def __init__(
        self,
        problem: PlanningProblem,
        static: _Static,
        seconds: npt.NDArray[np.float64],
        fails: npt.NDArray[np.bool_],
        capacity: Mapping[int, float] | None = None,
    ) -> None:
        st = self.st = static
        self.cap = [float(r.capacity) for r in problem.resources]
        for r, units in (capacity or {}).items():
            self.cap[r] = units
        self.pools = st.pools
        self.used = [0.0] * len(problem.resources)
        n = len(st.sizes)
        offs = np.cumsum([0, *st.sizes])
        flat = seconds.tolist()
        self.secs = [flat[offs[i] : offs[i + 1]] for i in range(n)]
        self.fail_at = [-1] * n
        for j in np.flatnonzero(fails).tolist():
            i = int(np.searchsorted(offs, j, side="right")) - 1
            if self.fail_at[i] < 0:
                self.fail_at[i] = j - int(offs[i])
        self.windows = st.windows
        self.rest = st.rest
        self.k = [0] * n
        self.win = [-1] * n
        self.started = [False] * n
        self.end = [math.nan] * n
        self.done_window = [-1] * n
        self.failed = [False] * n
        self.queue: deque[_Req] = deque()
        self.holding: dict[int, _Req] = {}
        self.heap: list[tuple[float, int, int, int]] = []
        self.seq = 0
        self.left: dict[tuple[int, int], int] = {}
        self.wave_end: dict[tuple[int, int], float] = {}
        self.universal = st.universal

    # events: 0 start wave (a = stage index, b = wave position), 1 admit window (a = chain), 2 op end
    def push(self, t: float, kind: int, a: int, b: int = 0) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind * 1_000_000_000 + a, b))

    def run(self) -> None:
        for si in range(len(self.st.waves)):
            self.push(0.0, 0, si, 0)
        while self.heap:
            t, _, code, b = heapq.heappop(self.heap)
            kind, a = divmod(code, 1_000_000_000)
            if kind == 0:
                self._start_wave(t, a, b)
            elif kind == 1:
                self._admit(t, a)
            else:
                self._op_end(t, a)
            if kind != 0:
                self._pump(t)

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
                self.push(self.wave_end[key] + self.st.gates[si][pos], 0, si, pos + 1)

    def _admit(self, t: float, i: int) -> None:
        """Find the window the chain's rest fits in from ``t``; ask for admission there."""
        k = self.k[i]
        cur = self.win[i]
        if cur >= 0:
            s, cut, e = self.windows[i][cur]
            if s <= t < cut and t < e:
                self._ask(i)
                return
        pred = self.rest[i][k]
        for wi, (s, cut, e) in enumerate(self.windows[i]):
            at = max(t, s)
            if at < cut and at + pred <= e:
                self.win[i] = wi
                if at > t:
                    self.push(at, 1, i)
                else:
                    self._ask(i)
                return
        self.end[i] = math.nan  # deferred: no window fits
        self._release_budget(i)
        self._chain_over(t, i)

    def _ask(self, i: int) -> None:
        k = self.k[i]
        self.queue.append(self.st.asks[i][k] if k or not self.started[i] else _without_budget(self.st, i))

    def _pump(self, t: float) -> None:
        """Grant waiting requests in order; stop at the first that blocks a pool everyone needs."""
        queue = self.queue
        if not queue:
            return
        blocked: set[int] = set()
        keep: list[_Req] = []
        cap, used, universal = self.cap, self.used, self.universal
        while queue:
            req = queue.popleft()
            ids, amounts = req[1], req[2]
            fits = not blocked or blocked.isdisjoint(ids)
            if fits:
                for r, a in zip(ids, amounts):  # noqa: B905 - equal by construction; hot loop
                    if used[r] + a > cap[r] + 1e-9:
                        fits = False
                        break
            if fits:
                for r, a in zip(ids, amounts):  # noqa: B905
                    used[r] += a
                self._granted(t, req)  # may ask again (at the back of the queue)
                continue
            # like the engine: a new host waiting for a budget slot holds its place on the budget
            # only (hosts in maintenance free it, and their next operations must pass)
            budgets = req[3]
            if budgets and any(used[r] + 1e-9 > cap[r] - a for r, a in budgets):
                blocked.update(r for r, _ in budgets)
            else:
                blocked.update(ids)
            keep.append(req)
            if universal <= blocked:
                break
        queue.extendleft(reversed(keep))

    def _granted(self, t: float, req: _Req) -> None:
        i = req[0]
        _, cut, e = self.windows[i][self.win[i]]
        ok = t < cut and t < e
        if not self.started[i]:
            ok = ok and t + self.rest[i][self.k[i]] <= e
        if not ok:
            for r, a in zip(req[1], req[2]):  # noqa: B905 - equal by construction
                self.used[r] -= a
            self.win[i] = -1
            self._admit(t, i)
            return
        self.started[i] = True
        self.holding[i] = req
        self.push(t + self.secs[i][self.k[i]], 2, i)

    def _release_budget(self, i: int) -> None:
        if self.started[i]:
            for u in self.st.budget_of[i]:
                self.used[u.resource] -= u.amount

    def _op_end(self, t: float, i: int) -> None:
        req = self.holding.pop(i)
        used = self.used
        for r, a in req[4]:
            used[r] -= a
        k = self.k[i]
        if self.fail_at[i] == k:
            self.failed[i] = True
            self.end[i] = t
            self._release_budget(i)
            self._chain_over(t, i)
            return
        self.k[i] = k + 1
        if self.k[i] == self.st.sizes[i]:
            self.end[i] = t
            self.done_window[i] = self.win[i]
            self._release_budget(i)
            self._chain_over(t, i)
            return
        self._admit(t, i)


def _without_budget(st: _Static, i: int) -> _Req:
    """The first operation's request of a host already in maintenance (after a window change)."""
    return _request(i, list(st.asks[i][0][4]), st.pools)


def _request(chain: int, pairs: Sequence[tuple[int, int]], pools: Sequence[bool]) -> _Req:
    return (
        chain,
        tuple(r for r, _ in pairs),
        tuple(a for _, a in pairs),
        tuple((r, a) for r, a in pairs if not pools[r]),
        tuple((r, a) for r, a in pairs if pools[r]),
    )


def _stretched(start: int, cutoff: int, end: int, stretch: float) -> tuple[float, float, float]:
    """A window ``stretch`` times as long, its cutoff as far from its end as before."""
    new_end = start + (end - start) * stretch
    return (float(start), new_end - (end - cutoff), new_end)


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
    r = _Replay(problem, _Static(problem, chains, stretch), seconds, fails, capacity)
    r.run()
    return r.end, r.done_window, r.failed


def spreads(
    model: DurationModel, tasks: Mapping[str, tuple[int, float]] | None = None
) -> Callable[[str, str], TaskSpread]:
    """Each task × group's spread from the duration model: its log-normal (per host a Student's t
    with ``n - 1`` degrees of freedom in log space, so a spread learned from few hosts keeps its
    tail), the uncertainty of its median (``sigma / sqrt(n)``), its learned failure rate, and the
    task's ``(retries, retry delay)``."""
    known = dict(tasks or {})

    def spread(task: str, group: str) -> TaskSpread:
        e = model.estimate(task, group)
        retries, delay = known.get(task, (0, 1.0))
        fail = model.failure_rate(task, group)
        n = max(e.n, 1.0)
        df = n - 1.0 if n >= MIN_T_SAMPLES else math.inf  # a prior's sigma is a guess, not a sample's
        return TaskSpread(e.mu, e.sigma, e.sigma / math.sqrt(n), df, fail, retries, delay)

    return spread
