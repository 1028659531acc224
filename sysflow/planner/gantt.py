"""What a Gantt chart of a plan shows, as data: lanes, bars, windows, density; renderers live in the CLI.

Up to ``MAX_HOST_LANES`` hosts get one lane each with one bar per operation; beyond that a lane is
one datacenter / group / wave and shows, per task, the operations in flight over time (binned). Each
lane's maintenance windows are shaded; pool use (share of capacity) is a separate series. Pure: no
I/O, times are seconds from ``plan.origin``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Literal

from sysflow.planner.plan import Plan
from sysflow.planner.problem import Chain, ResourceKind
from sysflow.planner.solution import block_items, blocks

__all__ = ["MAX_HOST_LANES", "PALETTE", "Bar", "GanttChart", "gantt_chart"]

MAX_HOST_LANES = 300
DENSITY_BINS = 400
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")
_MARGIN_S = 300


@dataclass(frozen=True, slots=True)
class Bar:
    """One operation: its lane, start and end (seconds from the origin), task, host."""

    lane: int
    start: int
    end: int
    task: str
    host: str
    wave: int


@dataclass(frozen=True)
class GanttChart:
    """Everything a renderer draws. ``density[lane][task]`` is ops in flight per bin (group lanes)."""

    mode: Literal["host", "group"]
    lanes: list[str]
    bars: list[Bar]
    shades: list[tuple[int, int, int]]  # (lane, start, end)
    tasks: list[str]
    lo: int
    hi: int
    usage: dict[str, list[tuple[int, float]]]  # pool label -> steps (time, share)
    density: list[dict[str, list[float]]] = field(default_factory=list)
    hosts_per_lane: list[int] = field(default_factory=list)

    @property
    def bin_s(self) -> float:
        """Width of one density bin in seconds."""
        return max(1, self.hi - self.lo) / DENSITY_BINS

    def colour(self, task: str) -> str:
        """The task's colour, the same in every renderer."""
        return PALETTE[self.tasks.index(task) % len(PALETTE)]


def _lane_key(c: Chain) -> str:
    return " / ".join(x for x in (c.datacenter, c.group, f"wave {c.wave + 1}") if x)


def gantt_chart(plan: Plan, max_host_lanes: int = MAX_HOST_LANES) -> GanttChart:
    """The chart of ``plan``: host lanes up to ``max_host_lanes`` placed hosts, else group lanes."""
    p, a = plan.problem, plan.assignment
    placed = [c for c in p.chains if c.host in a.starts]
    by_host = len(placed) <= max_host_lanes
    keys = [c.host if by_host else _lane_key(c) for c in placed]
    lanes = list(dict.fromkeys(keys)) if by_host else sorted(set(keys))
    index = {r: i for i, r in enumerate(lanes)}
    tasks = list(dict.fromkeys(t for c in placed for t in c.tasks))
    bars = [
        Bar(index[k], s, s + c.durations[i], c.tasks[i], c.host, c.wave)
        for c, k in zip(placed, keys, strict=True)
        for i, s in enumerate(a.starts[c.host])
    ]
    lo = min((b.start for b in bars), default=0) - _MARGIN_S
    hi = max((b.end for b in bars), default=0) + _MARGIN_S
    shades = {
        (index[k], max(w.start, lo), min(w.end, hi))
        for c, k in zip(placed, keys, strict=True)
        for w in c.windows
        if w.end > lo and w.start < hi
    }
    counts = [keys.count(r) for r in lanes] if not by_host else [1] * len(lanes)
    chart = GanttChart(
        "host" if by_host else "group", lanes, bars, sorted(shades), tasks, lo, hi, _usage(plan)
    )
    if by_host:
        return chart
    return GanttChart(**{**chart.__dict__, "density": _density(chart), "hosts_per_lane": counts})


def _density(ch: GanttChart) -> list[dict[str, list[float]]]:
    """Per lane and task, the average number of operations in flight in each time bin."""
    width = ch.bin_s
    out: list[dict[str, list[float]]] = [defaultdict(lambda: [0.0] * DENSITY_BINS) for _ in ch.lanes]
    for b in ch.bars:
        series = out[b.lane][b.task]
        first, last = int((b.start - ch.lo) // width), int((b.end - ch.lo) // width)
        for k in range(max(0, first), min(DENSITY_BINS - 1, last) + 1):
            lo_k = ch.lo + k * width
            overlap = min(b.end, lo_k + width) - max(b.start, lo_k)
            series[k] += max(0.0, overlap) / width
    return [{t: d[t] for t in ch.tasks if t in d} for d in out]


def _usage(plan: Plan) -> dict[str, list[tuple[int, float]]]:
    p, a = plan.problem, plan.assignment
    events: dict[int, dict[int, int]] = {}
    for c in p.chains:
        s = a.starts.get(c.host)
        if s is None:
            continue
        for x, y in blocks(c, p.split_chains):
            for r, off, length, amount in block_items(p, c, x, y):
                if p.resources[r].kind is ResourceKind.POOL:
                    ev = events.setdefault(r, {})
                    ev[s[x] + off] = ev.get(s[x] + off, 0) + amount
                    ev[s[x] + off + length] = ev.get(s[x] + off + length, 0) - amount
    out: dict[str, list[tuple[int, float]]] = {}
    for r, ev in sorted(events.items()):
        res, level, steps = p.resources[r], 0, []
        for t in sorted(ev):
            level += ev[t]
            steps.append((t, level / res.capacity))
        out[res.label or res.name] = steps
    return out
