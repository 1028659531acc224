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
from sysflow.planner.montecarlo import simulate, spreads
from sysflow.planner.plan import Plan
from sysflow.planner.problem import Chain, ResourceKind
from sysflow.planner.solution import block_items, blocks, done_window
from sysflow.planner.timeline import Timeline, timelines

__all__ = ["Distribution", "Forecast", "WindowForecast", "distribution", "forecast", "plan_order"]


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
        _binding(p50, rows),
        p50.at(p50.bound.makespan),
        p50.at(p50.quality.makespan),
        p50.notes,
    )


def _binding(plan: Plan, rows: list[WindowForecast]) -> str:
    """The most common reason hosts are deferred, else the bottleneck most windows report."""
    reasons = Counter(plan.assignment.deferred.values())
    if reasons:
        return reasons.most_common(1)[0][0]
    necks = Counter(r.bottleneck.rsplit(" at ", 1)[0] for r in rows if r.bottleneck != "none")
    return necks.most_common(1)[0][0] if necks else "none"


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

    @property
    def samples(self) -> int:
        return len(self.finish)

    @property
    def first_window_end(self) -> datetime:
        """The end of the latest first window of any host (what "this window" means for the fleet)."""
        ends = [c.windows[0].end for c in self.plan.problem.chains if c.windows]
        return self.plan.at(max(ends, default=0))

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
            "groups": {
                g: {f"p{round(q * 100)}": _iso(self.plan, _quantile(v, q)) for q in (0.1, 0.5, 0.9)}
                for g, v in sorted(self.group_finish.items())
            },
        }


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
    for i, c in enumerate(chains):
        groups.setdefault(c.group, []).append(i)
    finish = out.finish()
    per_group = {}
    for g, idx in groups.items():
        sub = out.end[:, idx]
        settled = (~np.isnan(sub) | out.failed[:, idx]).all(axis=1)
        last = np.nanmax(np.where(np.isnan(sub), -np.inf, sub), axis=1)
        per_group[g] = tuple(float(x) for x in np.where(settled, last, np.inf))
    return Distribution(
        plan,
        tuple(float(x) for x in finish),
        tuple(int(x) for x in (first * weights).sum(axis=1)),
        per_group,
        int(weights.sum()),
    )
