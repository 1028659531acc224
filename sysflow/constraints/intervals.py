"""Vectorised algebra over sets of time intervals (UTC epoch seconds), for building calendars fast.

An interval set is three aligned float arrays (``starts``, ``ends``, ``cutoffs``: the latest start
instant of each interval) plus an int array of labels (index of the spec that opened it). Sets are
half-open ``[start, end)``. Building a calendar of 10,000 specs over a year is a few hundred thousand
intervals, so the work is done in numpy, imported lazily so that ``import sysflow`` stays light.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    FloatArray = npt.NDArray[np.float64]
    IntArray = npt.NDArray[np.int64]

__all__ = ["FAR_FUTURE", "FAR_PAST", "IntervalArrays", "intersect", "merge", "subtract"]

FAR_PAST = 0.0  # 1970-01-01T00:00Z: before any window anyone will plan
FAR_FUTURE = 253_402_300_799.0  # 9999-12-31T23:59:59Z


@dataclass(frozen=True)
class IntervalArrays:
    """Sorted, disjoint intervals with their cutoffs and labels."""

    starts: FloatArray
    ends: FloatArray
    cutoffs: FloatArray
    labels: IntArray

    def __len__(self) -> int:
        return len(self.starts)

    @classmethod
    def empty(cls) -> IntervalArrays:
        import numpy as np

        f = np.empty(0, dtype=np.float64)
        return cls(f, f, f, np.empty(0, dtype=np.int64))

    @classmethod
    def of(
        cls, starts: FloatArray, ends: FloatArray, cutoffs: FloatArray, labels: IntArray
    ) -> IntervalArrays:
        """Normalise possibly overlapping, unsorted intervals into a set (see :func:`merge`)."""
        return merge(starts, ends, cutoffs, labels)


def merge(starts: FloatArray, ends: FloatArray, cutoffs: FloatArray, labels: IntArray) -> IntervalArrays:
    """Union: overlapping or touching intervals become one; its cutoff is the latest of theirs.

    The label of a merged interval is the label of the interval that opened it.
    """
    import numpy as np

    if len(starts) == 0:
        return IntervalArrays.empty()
    order = np.argsort(starts, kind="stable")
    s, e, c, lab = starts[order], ends[order], cutoffs[order], labels[order]
    run_end = np.maximum.accumulate(e)
    fresh = np.empty(len(s), dtype=bool)
    fresh[0] = True
    fresh[1:] = s[1:] > run_end[:-1]
    idx = np.flatnonzero(fresh)
    return IntervalArrays(s[idx], np.maximum.reduceat(e, idx), np.maximum.reduceat(c, idx), lab[idx])


def _overlaps(a: IntervalArrays, b: IntervalArrays) -> tuple[FloatArray, FloatArray]:
    import numpy as np

    times = np.concatenate((a.starts, a.ends, b.starts, b.ends))
    delta = np.concatenate((np.ones(len(a)), -np.ones(len(a)), np.ones(len(b)), -np.ones(len(b)))).astype(
        np.int64
    )
    order = np.lexsort((delta, times))  # at equal times, ends (-1) come before starts (+1)
    count = np.cumsum(delta[order])
    t = times[order]
    pos = np.flatnonzero(count == 2)
    s, e = t[pos], t[pos + 1]
    keep = e > s
    return s[keep], e[keep]


def intersect(a: IntervalArrays, b: IntervalArrays) -> IntervalArrays:
    """Where both sets are open. A piece keeps the label of ``a``'s interval.

    Cutoff rule (the safe one): a piece's cutoff lies as far before the piece's end as the
    larger of its two parents' cutoff margins (``end - cutoff``), so a window cut short by another
    group or a blackout keeps its cutoff before the new end.
    """
    import numpy as np

    if len(a) == 0 or len(b) == 0:
        return IntervalArrays.empty()
    s, e = _overlaps(a, b)
    ia = np.searchsorted(a.starts, s, side="right") - 1
    ib = np.searchsorted(b.starts, s, side="right") - 1
    margin = np.maximum(a.ends[ia] - a.cutoffs[ia], b.ends[ib] - b.cutoffs[ib])
    return IntervalArrays(s, e, e - margin, a.labels[ia])


def complement(blocked: IntervalArrays) -> IntervalArrays:
    """Everything between FAR_PAST and FAR_FUTURE outside ``blocked`` (no cutoff margin)."""
    import numpy as np

    s = np.concatenate(([FAR_PAST], blocked.ends))
    e = np.concatenate((blocked.starts, [FAR_FUTURE]))
    keep = e > s
    s, e = s[keep], e[keep]
    return IntervalArrays(s, e, e.copy(), np.full(len(s), -1, dtype=np.int64))


def subtract(a: IntervalArrays, blocked: IntervalArrays) -> IntervalArrays:
    """``a`` with ``blocked`` cut out; pieces keep their parent's cutoff margin."""
    if len(blocked) == 0:
        return a
    return intersect(a, complement(blocked))


def covered(starts: FloatArray, ends: FloatArray, blocked: IntervalArrays) -> npt.NDArray[np.bool_]:
    """Which of the intervals lie wholly inside one interval of ``blocked`` (a merged set)."""
    import numpy as np

    if len(blocked) == 0:
        return np.zeros(len(starts), dtype=bool)
    idx = np.searchsorted(blocked.starts, starts, side="right") - 1
    inside = idx >= 0
    safe = np.where(inside, idx, 0)
    result: npt.NDArray[np.bool_] = inside & (blocked.ends[safe] >= ends)
    return result
