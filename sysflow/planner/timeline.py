"""Resource usage over time, one array per second inside the spans where a resource can be used.

The greedy scheduler and the checker both need "how much of resource r is in use at second t". A
dense array over the whole horizon costs too much memory with hundreds of per-group pools over two
weeks, so each resource keeps one NumPy array per merged span of the windows its users can run in;
everything outside those spans is, by construction of the problem, never used.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from sysflow.planner.problem import PlanningProblem, ResourceKind

__all__ = ["Timeline", "timelines"]


def _merge(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


class Timeline:
    """Usage of one resource per second over a set of disjoint spans."""

    def __init__(self, capacity: int, spans: Iterable[tuple[int, int]]) -> None:
        self.capacity = capacity
        self.spans = _merge(spans)
        self._starts = [a for a, _ in self.spans]
        self._arrays: list[npt.NDArray[np.int32]] = [
            np.zeros(max(0, b - a), dtype=np.int32) for a, b in self.spans
        ]

    def _view(self, start: int, length: int) -> npt.NDArray[np.int32]:
        i = bisect_right(self._starts, start) - 1
        a, b = self.spans[i] if i >= 0 else (0, -1)
        if i < 0 or start + length > b:
            raise ValueError(f"[{start}, {start + length}) lies outside the resource's spans")
        return self._arrays[i][start - a : start - a + length]

    def jump(self, start: int, length: int, amount: int) -> int | None:
        """None if ``amount`` more fits over ``[start, start + length)``; else one past the last conflict."""
        if length <= 0 or amount <= 0:
            return None
        view = self._view(start, length)
        limit = self.capacity - amount
        if int(view.max()) <= limit:
            return None
        return start + int(np.flatnonzero(view > limit)[-1]) + 1

    def add(self, start: int, length: int, amount: int) -> None:
        """Use ``amount`` over ``[start, start + length)``."""
        if length > 0 and amount:
            self._view(start, length)[:] += amount

    def add_many(self, starts: Iterable[int], lengths: Iterable[int], amounts: Iterable[int]) -> None:
        """Use each ``amount`` over its ``[start, start + length)`` at once: one pass over the arrays
        (a difference array per span) instead of a slice per interval, for thousands of intervals."""
        s = np.fromiter(starts, dtype=np.int64)
        n = np.fromiter(lengths, dtype=np.int64, count=len(s))
        q = np.fromiter(amounts, dtype=np.int64, count=len(s))
        keep = (n > 0) & (q != 0)
        s, n, q = s[keep], n[keep], q[keep]
        if not len(s):
            return
        which = np.searchsorted(np.asarray(self._starts, dtype=np.int64), s, side="right") - 1
        ends = np.asarray([b for _, b in self.spans], dtype=np.int64)
        if (which < 0).any() or (s + n > ends[np.maximum(which, 0)]).any():
            raise ValueError("an interval lies outside the resource's spans")
        for i in np.unique(which):
            mine = which == i
            a = self._starts[i]
            delta = np.zeros(len(self._arrays[i]) + 1, dtype=np.int64)
            np.add.at(delta, s[mine] - a, q[mine])
            np.add.at(delta, s[mine] + n[mine] - a, -q[mine])
            self._arrays[i] += np.cumsum(delta[:-1]).astype(np.int32)

    def busy(self, start: int, end: int) -> int:
        """Unit-seconds used within ``[start, end)``."""
        total = 0
        for (a, b), arr in zip(self.spans, self._arrays, strict=True):
            lo, hi = max(a, start), min(b, end)
            if lo < hi:
                total += int(arr[lo - a : hi - a].sum(dtype=np.int64))
        return total

    def peak(self) -> int:
        """The highest usage anywhere."""
        return max((int(a.max()) for a in self._arrays if a.size), default=0)

    def busy_seconds(self) -> int:
        """Sum of usage over time (unit-seconds)."""
        return sum(int(a.sum(dtype=np.int64)) for a in self._arrays)

    def over(self) -> list[tuple[int, int]]:
        """Seconds (and usage) where usage exceeds capacity."""
        out: list[tuple[int, int]] = []
        for (a, _), arr in zip(self.spans, self._arrays, strict=True):
            for i in np.flatnonzero(arr > self.capacity)[:10]:
                out.append((a + int(i), int(arr[i])))
        return out


def timelines(problem: PlanningProblem) -> list[Timeline]:
    """An empty timeline per resource of ``problem``, covering every span its users may run in."""
    spans: list[set[tuple[int, int]]] = [set() for _ in problem.resources]
    seen: set[tuple[object, ...]] = set()
    for c in problem.chains:
        used = frozenset(u.resource for us in c.uses for u in us) | {u.resource for u in c.span_uses}
        key = (id(c.windows), used)
        if key in seen or not c.windows:
            continue
        seen.add(key)
        for r in used:
            res = problem.resources[r]
            if res.kind is ResourceKind.BUDGET and problem.split_chains:
                spans[r].add((c.windows[0].start, c.windows[-1].end))
                continue
            ext = res.period if res.kind is ResourceKind.RATE else 0
            spans[r].update((w.start, w.end + ext) for w in c.windows)
    for b in problem.background:
        spans[b.resource].add((b.start, b.start + b.length))
    out = [Timeline(res.capacity, s) for res, s in zip(problem.resources, spans, strict=True)]
    by_resource: dict[int, list[tuple[int, int, int]]] = {}
    for b in problem.background:  # thousands of fixed operations when re-planning: added at once
        by_resource.setdefault(b.resource, []).append((b.start, b.length, b.amount))
    for r, items in by_resource.items():
        out[r].add_many((x[0] for x in items), (x[1] for x in items), (x[2] for x in items))
    return out
