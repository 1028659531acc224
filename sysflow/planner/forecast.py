"""``Forecast``: what an administrator reads before the window.

Per window and group: how many of the group's remaining hosts fit at p50 and at p90, the utilisation
of each resource the group uses while it works in that window, the binding constraint (the most used
one, or the one that deferred hosts), plus every deferred host and why, and the lower bound. For
example: "Sun 2026-11-29 01:00-03:00 UTC, web: 480 of 500 hosts fit at p50, 430 at p90;
bottleneck: ams uplink MB/s at 92 %".
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from sysflow.planner.durations import DurationModel
from sysflow.planner.montecarlo import Outcomes, Replays, ordered_chains, simulate, spreads
from sysflow.planner.plan import Plan
from sysflow.planner.problem import Chain, ResourceKind
from sysflow.planner.solution import block_items, blocks, done_window
from sysflow.planner.timeline import Timeline, timelines

__all__ = [
    "Distribution",
    "Forecast",
    "WindowForecast",
    "binding_constraint",
    "distribution",
    "forecast",
    "plan_order",
    "relaxations",
    "samples_for",
    "task_retries",
]


@dataclass(frozen=True)
class WindowForecast:
    """One group's k-th window."""

    group: str
    index: int
    start: datetime
    end: datetime
    candidates: int  # hosts of the group not done in an earlier window (at p50)
    fit_p50: int
    fit_p90: int | None
    utilisation: Mapping[str, float]  # resource label -> share of capacity while the group works
    bottleneck: str

    def summary(self) -> str:
        when = f"{self.start:%a %Y-%m-%d %H:%M}-{self.end:%H:%M} {self.start:%Z}".rstrip()
        p90 = f", {self.fit_p90} at p90" if self.fit_p90 is not None else ""
        return f"{when}, {self.group}: {self.fit_p50} of {self.candidates} hosts fit at p50{p90}; bottleneck: {self.bottleneck}"


@dataclass(frozen=True)
class Forecast:
    """Per window and group what fits, what binds, what is deferred, and the bound."""

    windows: tuple[WindowForecast, ...]
    deferred: Mapping[str, str]
    deferred_p90: Mapping[str, str]
    binding: str
    lower_bound: datetime
    makespan: datetime
    notes: tuple[str, ...] = field(default=())

    def lines(self) -> list[str]:
        out = [w.summary() for w in self.windows]
        if self.deferred:
            out.append(f"{len(self.deferred)} hosts deferred at p50; binding: {self.binding}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "windows": [
                {
                    "group": w.group,
                    "index": w.index,
                    "start": w.start.isoformat(),
                    "end": w.end.isoformat(),
                    "candidates": w.candidates,
                    "fit_p50": w.fit_p50,
                    "fit_p90": w.fit_p90,
                    "utilisation": {k: round(v, 4) for k, v in w.utilisation.items()},
                    "bottleneck": w.bottleneck,
                }
                for w in self.windows
            ],
            "deferred": [{"host": h, "reason": r} for h, r in sorted(self.deferred.items())],
            "deferred_p90": [{"host": h, "reason": r} for h, r in sorted(self.deferred_p90.items())],
            "binding": self.binding,
            "lower_bound": self.lower_bound.isoformat(),
            "makespan": self.makespan.isoformat(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)


def _usage(plan: Plan) -> list[Timeline]:
    p = plan.problem
    lines = timelines(p)
    for c in p.chains:
        starts = plan.assignment.starts.get(c.host)
        if starts is None:
            continue
        for a, b in blocks(c, p.split_chains):
            for r, off, length, amount in block_items(p, c, a, b):
                lines[r].add(starts[a] + off, length, amount)
        if p.split_chains:
            end = starts[-1] + c.durations[-1]
            for u in c.span_uses:
                lines[u.resource].add(starts[0], end - starts[0], u.amount)
    return lines


def _fits(plan: Plan | None, group: str) -> Counter[int]:
    out: Counter[int] = Counter()
    if plan is None:
        return out
    for c in plan.problem.chains:
        s = plan.assignment.starts.get(c.host)
        if c.group == group and s is not None:
            out[done_window(c, s[-1])] += c.weight
    return out


def _group_window(plan: Plan, lines: list[Timeline], chains: list[Chain], k: int) -> dict[str, float]:
    """Utilisation of each resource the group uses, over the time it works in window ``k``."""
    p, w = plan.problem, chains[0].windows[k]
    ends = [
        plan.assignment.end(c)
        for c in chains
        if c.host in plan.assignment.starts and done_window(c, plan.assignment.starts[c.host][-1]) == k
    ]
    stop = max(ends, default=w.end)
    used = {u.resource for us in chains[0].uses for u in us} | {u.resource for u in chains[0].span_uses}
    out: dict[str, float] = {}
    for r in sorted(used):
        res = p.resources[r]
        if res.kind is ResourceKind.RATE or stop <= w.start:
            continue
        out[res.label or res.name] = lines[r].busy(w.start, stop) / (res.capacity * (stop - w.start))
    return out


def forecast(p50: Plan, p90: Plan | None = None) -> Forecast:
    """The forecast of a plan made at p50 durations, and optionally the same made at p90."""
    lines = _usage(p50)
    groups: dict[str, list[Chain]] = {}
    for c in p50.problem.chains:
        groups.setdefault(c.group, []).append(c)
    rows: list[WindowForecast] = []
    for group, chains in sorted(groups.items()):
        fit50, fit90 = _fits(p50, group), _fits(p90, group)
        remaining = sum(c.weight for c in chains)
        for k, w in enumerate(chains[0].windows):
            if remaining <= 0:
                break
            util = _group_window(p50, lines, chains, k)
            neck = max(util, key=lambda n: util[n], default="")
            label = f"{neck} at {util[neck]:.0%}" if neck and util[neck] > 0 else "none"
            rows.append(
                WindowForecast(
                    group,
                    k,
                    p50.at(w.start),
                    p50.at(w.end),
                    remaining,
                    fit50[k],
                    fit90[k] if p90 is not None else None,
                    util,
                    label,
                )
            )
            remaining -= fit50[k]
    rows.sort(key=lambda r: (r.start, r.group))
    return Forecast(
        tuple(rows),
        p50.deferred,
        p90.deferred if p90 is not None else {},
        binding_constraint(p50),
        p50.at(p50.bound.makespan),
        p50.at(p50.quality.makespan),
        p50.notes,
    )


# -- the forecast as a distribution (Monte Carlo over the plan) -----------------------------------


@dataclass(frozen=True)
class Distribution:
    """What the Monte Carlo replays of a plan say, in the plan's seconds and as datetimes.

    ``finish``: per sample when the last host finished (``inf`` when some host did not);
    ``done_first``: per sample how many hosts finished inside their first window;
    ``group_finish``: per group and sample when its last host finished.
    """

    plan: Plan
    finish: tuple[float, ...]
    done_first: tuple[int, ...]
    group_finish: Mapping[str, tuple[float, ...]]
    hosts: int
    wave_finish: Mapping[int, tuple[float, ...]] = field(default_factory=dict)

    @property
    def samples(self) -> int:
        return len(self.finish)

    @property
    def first_window_end(self) -> datetime:
        """The end of the latest first window of any host (what "this window" means for the fleet)."""
        ends = [c.windows[0].end for c in self.plan.problem.chains if c.windows]
        return self.plan.at(max(ends, default=0))

    @staticmethod
    def quantile_of(values: Sequence[float], q: float) -> float:
        """The ``q`` quantile of ``values`` (the smallest value at or above that share of them)."""
        return _quantile(values, q)

    def finish_quantile(self, q: float) -> float:
        """Seconds from the plan's origin by which the run finishes with probability ``q``."""
        return _quantile(self.finish, q)

    def finish_at(self, q: float) -> datetime | None:
        """The same as a time; None when in more than ``1 - q`` of the samples some host is not done."""
        s = self.finish_quantile(q)
        return None if math.isinf(s) else self.plan.at(round(s))

    def done_interval(self, mass: float = 0.8) -> tuple[int, int]:
        """The central ``mass`` interval of the hosts done in their first window."""
        lo, hi = (1 - mass) / 2, 1 - (1 - mass) / 2
        return int(_quantile(self.done_first, lo)), int(_quantile(self.done_first, hi))

    def p_all_in_first_window(self) -> float:
        """The probability that every host finishes inside its first window."""
        return sum(d >= self.hosts for d in self.done_first) / max(1, self.samples)

    def to_dict(self) -> dict[str, Any]:
        def when(q: float) -> str | None:
            t = self.finish_at(q)
            return t.isoformat() if t else None

        lo, hi = self.done_interval()
        return {
            "samples": self.samples,
            "finish": {"p10": when(0.1), "p50": when(0.5), "p90": when(0.9)},
            "hosts": self.hosts,
            "done_first_window": {"p10": lo, "p50": int(_quantile(self.done_first, 0.5)), "p90": hi},
            "p_all_in_first_window": round(self.p_all_in_first_window(), 4),
            "groups": {g: self._quantiles(v) for g, v in sorted(self.group_finish.items())},
            "waves": {str(w): self._quantiles(v) for w, v in sorted(self.wave_finish.items())},
        }

    def _quantiles(self, values: Sequence[float]) -> dict[str, str | None]:
        return {f"p{round(q * 100)}": _iso(self.plan, _quantile(values, q)) for q in (0.1, 0.5, 0.9)}


def _iso(plan: Plan, s: float) -> str | None:
    return None if math.isinf(s) else plan.at(round(s)).isoformat()


def _quantile(values: Sequence[float], q: float) -> float:
    if not values:
        return math.inf
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))])


def plan_order(plan: Plan) -> list[str]:
    """Hosts in the order the plan starts them, deferred ones last (the engine's dispatch order)."""
    starts = plan.assignment.starts
    placed = sorted(starts, key=lambda h: starts[h][0] if starts[h] else 0)
    return placed + [c.host for c in plan.problem.chains if c.host not in starts]


def distribution(
    plan: Plan,
    model: DurationModel,
    *,
    retries: Mapping[str, tuple[int, float]] | None = None,
    samples: int = 200,
    seed: int = 0,
) -> Distribution:
    """Replay ``plan`` ``samples`` times on durations drawn from ``model`` (see ``montecarlo``)."""
    p = plan.problem
    out = simulate(p, plan_order(plan), spreads(model, retries), samples=samples, seed=seed)
    chains = out.chains
    ok = ~out.failed & ~np.isnan(out.end)
    first = (out.window == 0) & ok
    weights = np.array([c.weight for c in chains])
    groups: dict[str, list[int]] = {}
    waves: dict[int, list[int]] = {}
    for i, c in enumerate(chains):
        groups.setdefault(c.group, []).append(i)
        waves.setdefault(c.wave, []).append(i)
    return Distribution(
        plan,
        tuple(float(x) for x in out.finish()),
        tuple(int(x) for x in (first * weights).sum(axis=1)),
        {g: _last_end(out, idx) for g, idx in groups.items()},
        int(weights.sum()),
        {w: _last_end(out, idx) for w, idx in waves.items()},
    )


def _last_end(out: Outcomes, idx: Sequence[int]) -> tuple[float, ...]:
    """Per sample, when the last of these chains ended (``inf`` when one did not finish)."""
    sub = out.end[:, idx]
    settled = (~np.isnan(sub) | out.failed[:, idx]).all(axis=1)
    last = np.nanmax(np.where(np.isnan(sub), -np.inf, sub), axis=1)
    return tuple(float(x) for x in np.where(settled, last, np.inf))


# -- the binding constraint, by relaxation --------------------------------------------------------

WINDOWS = "maintenance windows"
RELAX = 2.0  # each constraint is relaxed by this factor: capacity doubled, windows twice as long


def _family(name: str) -> str:
    """A resource's constraint: ``uplink[datacenter=ams]`` and ``uplink[datacenter=fra]`` are one."""
    return name.split("[", 1)[0]


def _key(end: Sequence[float]) -> tuple[int, float]:
    """(hosts not finished, finish) of one replay: smaller is better."""
    done = [e for e in end if not math.isnan(e)]
    return len(end) - len(done), max(done, default=0.0)


def relaxations(plan: Plan, *, prune: bool = True) -> dict[str, tuple[int, float]]:
    """For each constraint, (hosts not finished, finish) when only it is relaxed; ``""`` is none.

    Replays run at the plan's durations, so they are deterministic: a resource family that never
    refused a request in the unrelaxed replay (``prune``) gives that same replay when relaxed, and is
    not replayed. The windows are always replayed."""
    p = plan.problem
    chains = ordered_chains(p, plan_order(plan))
    secs = np.array([d for c in chains for d in c.durations], dtype=float)
    runs = Replays(p, chains, secs, np.zeros(len(secs), dtype=bool))
    base = runs.run()
    out = {"": _key(base.end)}
    families: dict[str, dict[int, float]] = {}
    for r, res in enumerate(p.resources):
        if res.kind is ResourceKind.RATE:
            continue
        families.setdefault(_family(res.label or res.name), {})[r] = res.capacity * RELAX
    for name, capacity in families.items():
        moves = not prune or not base.refused.isdisjoint(capacity)
        out[name] = _key(runs.run(capacity=capacity).end) if moves else out[""]
    out[WINDOWS] = _key(runs.run(stretch=RELAX).end)
    return out


def binding_constraint(plan: Plan) -> str:
    """The constraint whose relaxation moves the finish most (most hosts finished, then earliest
    finish), checked by replaying the plan with each relaxed in turn; ``"none"`` if none moves it."""
    keys = relaxations(plan)
    base = keys.pop("")
    best = min(keys, key=lambda k: (keys[k], k), default="")
    return best if best and keys[best] < base else "none"


SAMPLE_OPS = 400_000  # operations replayed per forecast at most: 200 samples of 2,000, 20 of 20,000
MIN_SAMPLES, MAX_SAMPLES = 4, 200


def samples_for(plan: Plan) -> int:
    """How many Monte Carlo samples a forecast of ``plan`` takes: fewer for a bigger fleet, whose
    finish varies less from one run to the next (it sums more operations)."""
    ops = sum(len(c.ops) for c in plan.problem.chains)
    return max(MIN_SAMPLES, min(MAX_SAMPLES, SAMPLE_OPS // max(1, ops)))


def task_retries(workflow: Any) -> dict[str, tuple[int, float]]:
    """Each task's ``(retries, first retry delay in seconds)`` as the engine retries it."""
    out: dict[str, tuple[int, float]] = {}
    for t in workflow.tasks:
        delay = t.retry_delay
        out[t.id] = (int(t.retries), float(delay) if delay is not None else 1.0)
    return out
