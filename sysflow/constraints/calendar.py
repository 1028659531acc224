"""Concrete maintenance windows per group over a horizon, and fast questions about them.

:meth:`Calendar.build` expands a ``WindowsConfig`` into sorted, disjoint UTC intervals per group:
the union of the group's specs, minus every blackout (explicit or recurring). Each interval is a
:class:`Window` with a ``cutoff_at``: the latest instant a new operation may start in it
(``end - cutoff``; a window cut short by a blackout or by another group keeps its cutoff before
its new end, so a freeze is never entered by work started "just in time").

Rules the planner and the engine rely on:

* **Intersection.** A host in several windowed groups is open only where *all* of them are open
  (the stricter rule is the safe one): :meth:`Calendar.host_windows`, :meth:`Calendar.host_is_open`.
  Groups without windows do not restrict a host.
* **Default.** A host in no windowed group follows ``windows.default``: ``always`` (open except
  during blackouts) or ``never``.
* **Half-open.** A window is open for ``start <= t < end``; starting is allowed for
  ``start <= t < cutoff_at`` (so ``t < end``): at the cutoff, as at the end, nothing new starts.
  A window shorter than its cutoff admits no start.
* **Horizon.** Answers are exact between the horizon's start and end; windows overlapping either
  edge are kept whole. Recurring blackouts beyond the horizon are not known.
* **Daylight saving.** See :mod:`sysflow.constraints.weekly`.

Queries are bisections over Python lists (``is_open`` is about a microsecond).
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sysflow.clock import utc
from sysflow.constraints.intervals import (
    FAR_FUTURE,
    FAR_PAST,
    IntervalArrays,
    covered,
    intersect,
    merge,
    subtract,
)
from sysflow.constraints.specs import SpecExpander, SpecSource, load_windows
from sysflow.constraints.weekly import utc_datetime
from sysflow.errors import ConstraintError, Problem
from sysflow.model.windows import WindowsConfig, WindowSpec

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["DEFAULT_HORIZON", "Calendar", "Remaining", "Window"]

DEFAULT_HORIZON = timedelta(days=35)  # five weeks: every weekly window at least four times


@dataclass(frozen=True, slots=True)
class Window:
    """One concrete window: open on ``[start, end)``, new work may start on ``[start, cutoff_at)``."""

    start: datetime
    end: datetime
    cutoff_at: datetime
    label: str = ""

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    def contains(self, t: datetime) -> bool:
        return self.start <= t < self.end

    def can_start(self, t: datetime) -> bool:
        """True when a new operation may start at ``t`` (the cutoff and the end are exclusive)."""
        return self.start <= t < self.cutoff_at and t < self.end


@dataclass(frozen=True, slots=True)
class Remaining:
    """Time left in the current window: until its cutoff (never negative) and until its end."""

    until_cutoff: timedelta
    until_end: timedelta


class _Lists:
    """An interval set as one flat, sorted array ``[s0, e0, s1, e1, ...]`` (for bisection).

    ``bisect_right(bounds, t)`` is odd exactly when ``t`` lies in some ``[s, e)``; cutoffs and
    labels stay in arrays, read only when a window is materialised.
    """

    __slots__ = ("_cutoffs", "_label_ids", "_labels", "bounds")

    def __init__(self, arrays: IntervalArrays, labels: Sequence[str]) -> None:
        import numpy as np

        self.bounds: array[float] = array("d")  # compact: fewer cache misses than a list of floats
        self.bounds.frombytes(np.column_stack((arrays.starts, arrays.ends)).astype(np.float64).tobytes())
        self._cutoffs = arrays.cutoffs
        self._label_ids = arrays.labels
        self._labels = labels

    def __len__(self) -> int:
        return len(self.bounds) // 2

    def start(self, i: int) -> float:
        return self.bounds[2 * i]

    def end(self, i: int) -> float:
        return self.bounds[2 * i + 1]

    def cutoff(self, i: int) -> float:
        return float(self._cutoffs[i])

    def label(self, i: int) -> str:
        k = int(self._label_ids[i])
        return self._labels[k] if k >= 0 else ""

    def find(self, t: float) -> int:
        """Index of the interval containing ``t``, or -1."""
        k = bisect.bisect_right(self.bounds, t)
        return k // 2 if k & 1 else -1

    def window(self, i: int) -> Window:
        return Window(
            utc_datetime(self.start(i)),
            utc_datetime(self.end(i)),
            utc_datetime(self.cutoff(i)),
            self.label(i),
        )

    def between(self, lo: float, hi: float) -> range:
        """Indexes of the intervals overlapping ``[lo, hi)``."""
        first = bisect.bisect_right(self.bounds, lo) // 2  # the one containing lo, or the next
        return range(first, (bisect.bisect_left(self.bounds, hi) + 1) // 2)


class Calendar:
    """Windows per group over a horizon. Build with :meth:`build`."""

    def __init__(
        self,
        groups: Mapping[str, IntervalArrays],
        *,
        labels: Sequence[str],
        default: IntervalArrays,
        start: datetime,
        end: datetime,
    ) -> None:
        self.start = utc(start)
        self.end = utc(end)
        self._arrays = dict(groups)
        self._labels = list(labels)
        self._groups = {g: _Lists(a, self._labels) for g, a in groups.items()}
        self._default = _Lists(default, self._labels)
        self._bounds = {g: lists.bounds for g, lists in self._groups.items()}  # is_open's fast path
        self._default_arrays = default
        self._hosts: dict[tuple[str, ...], _Lists] = {}

    # -- building ---------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        config: WindowsConfig | Mapping[str, object],
        *,
        start: datetime,
        end: datetime | None = None,
        horizon: timedelta = DEFAULT_HORIZON,
        known_groups: Collection[str] | None = None,
        location: str | None = None,
    ) -> Calendar:
        """Expand ``config`` over ``[start, end)`` (``end`` defaults to ``start + horizon``).

        Raises ``ConstraintError`` naming the spec and its source (``location`` is prefixed) for
        an unknown group, an unknown time zone, a cron duration longer than its period, or a spec
        that blackouts leave empty.
        """
        cfg = load_windows(config, location=location)
        lo = utc(start)
        hi = utc(end) if end is not None else lo + horizon
        if hi <= lo:
            raise ConstraintError("calendar horizon is empty: end must be after start", source=location)
        _check_groups(cfg, known_groups, location)
        return _Builder(cfg, lo.timestamp(), hi.timestamp(), location).calendar(lo, hi)

    # -- per group ----------------------------------------------------------------------------

    @property
    def groups(self) -> list[str]:
        """Groups that have windows."""
        return sorted(self._groups)

    def is_windowed(self, group: str) -> bool:
        return group in self._groups

    def _lists(self, group: str) -> _Lists:
        return self._groups.get(group, self._default)

    def is_open(self, group: str, t: datetime) -> bool:
        """True when ``group``'s window is open at ``t``."""
        return bisect.bisect_right(self._bounds.get(group, self._default.bounds), t.timestamp()) & 1 == 1

    def can_start(self, group: str, t: datetime) -> bool:
        """True when a new operation of ``group`` may start at ``t`` (open and before the cutoff)."""
        lists = self._lists(group)
        ts = t.timestamp()
        i = lists.find(ts)
        return i >= 0 and ts < lists.cutoff(i)

    def current(self, group: str, t: datetime) -> Window | None:
        """The window open at ``t``, or None."""
        lists = self._lists(group)
        i = lists.find(t.timestamp())
        return lists.window(i) if i >= 0 else None

    def next_open(self, group: str, t: datetime) -> datetime | None:
        """``t`` itself when open, else the start of the next window (None: none in the horizon)."""
        return _next_open(self._lists(group), t)

    def remaining(self, group: str, t: datetime) -> Remaining | None:
        """Time left until the current window's cutoff and end, or None when closed at ``t``."""
        return _remaining(self._lists(group), t)

    def windows(self, group: str, start: datetime, end: datetime) -> list[Window]:
        """Windows of ``group`` overlapping ``[start, end)``, whole (not clipped)."""
        return _windows(self._lists(group), start, end)

    # -- per host (intersection of its windowed groups) ----------------------------------------

    def host_key(self, groups: Iterable[str]) -> tuple[str, ...]:
        """The windowed groups among ``groups`` and ``all`` (every host is in it, as in Ansible),
        sorted: hosts with equal keys share windows (the intersection of their groups' windows)."""
        return tuple(sorted({g for g in (*groups, "all") if g in self._groups}))

    def _host(self, groups: Iterable[str]) -> _Lists:
        key = self.host_key(groups)
        if not key:
            return self._default
        if len(key) == 1:
            return self._groups[key[0]]
        lists = self._hosts.get(key)
        if lists is None:
            import numpy as np

            arrays = self._arrays[key[0]]
            for g in key[1:]:
                arrays = intersect(arrays, self._arrays[g])
            self._labels.append(" ∩ ".join(key))
            label = np.full(len(arrays), len(self._labels) - 1, dtype=np.int64)
            arrays = IntervalArrays(arrays.starts, arrays.ends, arrays.cutoffs, label)
            lists = self._hosts[key] = _Lists(arrays, self._labels)
        return lists

    def host_is_open(self, groups: Iterable[str], t: datetime) -> bool:
        return self._host(groups).find(t.timestamp()) >= 0

    def host_can_start(self, groups: Iterable[str], t: datetime) -> bool:
        lists = self._host(groups)
        ts = t.timestamp()
        i = lists.find(ts)
        return i >= 0 and ts < lists.cutoff(i)

    def host_current(self, groups: Iterable[str], t: datetime) -> Window | None:
        lists = self._host(groups)
        i = lists.find(t.timestamp())
        return lists.window(i) if i >= 0 else None

    def host_next_open(self, groups: Iterable[str], t: datetime) -> datetime | None:
        return _next_open(self._host(groups), t)

    def host_remaining(self, groups: Iterable[str], t: datetime) -> Remaining | None:
        return _remaining(self._host(groups), t)

    def host_windows(self, groups: Iterable[str], start: datetime, end: datetime) -> list[Window]:
        """Where a host of ``groups`` may be worked on within ``[start, end)``.

        Windows are whole (a window open at ``start`` keeps its earlier start), except that the
        ``always`` default is clipped to ``[start, end)`` with ``cutoff_at = end``.
        """
        lists = self._host(groups)
        found = _windows(lists, start, end)
        if lists is self._default:
            found = [_clip(w, utc(start), utc(end)) for w in found]
        return found


def _clip(w: Window, start: datetime, end: datetime) -> Window:
    s, e = max(w.start, start), min(w.end, end)
    return Window(s, e, min(w.cutoff_at, e), w.label)


def _next_open(lists: _Lists, t: datetime) -> datetime | None:
    ts = t.timestamp()
    if lists.find(ts) >= 0:
        return t
    i = bisect.bisect_right(lists.bounds, ts) // 2
    return utc_datetime(lists.start(i)) if i < len(lists) else None


def _remaining(lists: _Lists, t: datetime) -> Remaining | None:
    ts = t.timestamp()
    i = lists.find(ts)
    if i < 0:
        return None
    return Remaining(timedelta(seconds=max(0.0, lists.cutoff(i) - ts)), timedelta(seconds=lists.end(i) - ts))


def _windows(lists: _Lists, start: datetime, end: datetime) -> list[Window]:
    return [lists.window(i) for i in lists.between(start.timestamp(), end.timestamp())]


def _check_groups(cfg: WindowsConfig, known: Collection[str] | None, location: str | None) -> None:
    if known is None:
        return
    unknown = sorted(set(cfg.groups) - set(known))
    if unknown:
        problems = [Problem(f"window for unknown group {g!r}", f"windows.groups.{g}") for g in unknown]
        raise ConstraintError(problems, source=location or "windows")


class _Builder:
    """One calendar build: expands specs, merges per group, subtracts blackouts."""

    def __init__(self, cfg: WindowsConfig, lo: float, hi: float, location: str | None) -> None:
        self.cfg = cfg
        self.lo = lo
        self.hi = hi
        self.location = location
        self.expander = SpecExpander(lo, hi, default_tz=cfg.timezone, location=location)
        self.labels: list[str] = []
        self._blackout_starts: list[float] | None = None

    def calendar(self, start: datetime, end: datetime) -> Calendar:
        import numpy as np

        blackouts = self._blackouts()
        groups = {g: self._group(g, specs, blackouts) for g, specs in self.cfg.groups.items()}
        if self.cfg.default == "always":
            everything = IntervalArrays(
                np.array([FAR_PAST]), np.array([FAR_FUTURE]), np.array([FAR_FUTURE]), np.array([-1])
            )
            default = subtract(everything, blackouts)
        else:
            default = IntervalArrays.empty()
        labels = [*self.labels, "always"]
        if len(default):
            default = IntervalArrays(
                default.starts,
                default.ends,
                default.cutoffs,
                np.full(len(default), len(labels) - 1, dtype=np.int64),
            )
        return Calendar(groups, labels=labels, default=default, start=start, end=end)

    def _blackouts(self) -> IntervalArrays:
        import numpy as np

        parts = [
            self.expander.expand(s, SpecSource("blackouts", i, self.location))
            for i, s in enumerate(self.cfg.blackouts)
        ]
        if not parts:
            return IntervalArrays.empty()
        starts = np.concatenate([p[0] for p in parts])
        ends = np.concatenate([p[1] for p in parts])
        return merge(starts, ends, ends.copy(), np.full(len(starts), -1, dtype=np.int64))

    def _group(self, group: str, specs: list[WindowSpec], blackouts: IntervalArrays) -> IntervalArrays:
        import numpy as np

        starts: list[npt.NDArray[np.float64]] = []
        ends: list[npt.NDArray[np.float64]] = []
        cutoffs: list[float] = []
        counts: list[int] = []
        for i, spec in enumerate(specs):
            source = SpecSource(group, i, self.location)
            s, e = self.expander.expand(spec, source)
            self._check_not_blacked_out(spec, source, s, e, blackouts)
            cutoffs.append(spec.cutoff if spec.cutoff is not None else self.cfg.cutoff)
            counts.append(len(s))
            starts.append(s)
            ends.append(e)
        if not starts:
            return IntervalArrays.empty()
        first_label = len(self.labels)
        self.labels.extend(f"{group}: {spec.describe()}" for spec in specs)
        all_ends = np.concatenate(ends)
        merged = merge(
            np.concatenate(starts),
            all_ends,
            all_ends - np.repeat(np.asarray(cutoffs), counts),
            np.repeat(np.arange(first_label, len(self.labels), dtype=np.int64), counts),
        )
        return subtract(merged, blackouts)

    def _blackout_lists(self, blackouts: IntervalArrays) -> tuple[list[float], int]:
        if self._blackout_starts is None:
            self._blackout_starts = blackouts.starts.tolist()
        return self._blackout_starts, len(self._blackout_starts)

    def _check_not_blacked_out(
        self,
        spec: WindowSpec,
        source: SpecSource,
        starts: npt.NDArray[np.float64],
        ends: npt.NDArray[np.float64],
        blackouts: IntervalArrays,
    ) -> None:
        if not len(starts) or not len(blackouts):
            return
        first, _ = self._blackout_lists(blackouts)
        i = bisect.bisect_right(first, float(starts[0])) - 1
        if i < 0 or float(blackouts.ends[i]) < float(ends[0]):
            return  # fast path: the first occurrence survives
        if bool(covered(starts, ends, blackouts).all()):
            msg = f"window {spec.describe()!r} is empty after blackouts within the horizon"
            raise self.expander.error(msg, source)
