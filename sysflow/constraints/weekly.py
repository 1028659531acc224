"""Wall-clock time in a zone → UTC instants, and weekly rules → concrete intervals.

The daylight-saving rule (one rule for starts, ends, cron fires and one-off times): a local
wall-clock time is read as Python reads ``datetime(..., tzinfo=ZoneInfo(tz), fold=0)``:

* a time that occurs twice (fall-back night) is the *first* occurrence;
* a time that does not exist (spring-forward gap) is read with the offset in force before the
  gap, i.e. it lands as many minutes after the gap as it was inside it (02:30 → 03:30 CEST).

Hence a ``01:30-03:30`` window lasts one real hour on a spring-forward night in Europe/Amsterdam
and three on a fall-back night; the window's wall-clock edges never move. Cron windows last their
``duration`` of real time from their (so-read) start.

:class:`LocalTime` precomputes a zone's offset transitions over a horizon so that whole arrays of
local times convert at once (``numpy.searchsorted``), which is what makes a year of 10,000 specs
build in well under a second.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sysflow.model.windows import WeeklyRule

if TYPE_CHECKING:
    from sysflow.constraints.intervals import FloatArray

__all__ = ["DAY", "DayGrid", "LocalTime", "expand_weekly", "local_seconds", "utc_datetime"]

DAY = 86400.0
_SAMPLE = 86400.0  # zones change offset at most once a day (in practice twice a year)
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)


def local_seconds(naive: datetime) -> float:
    """Seconds since 1970-01-01 of a naive wall-clock time, counting every day as 86,400 s."""
    return naive.replace(tzinfo=UTC).timestamp()


def _offset(zone: ZoneInfo, instant: float) -> float:
    off = datetime.fromtimestamp(instant, zone).utcoffset()
    return off.total_seconds() if off is not None else 0.0


class LocalTime:
    """Converts local wall-clock seconds of one zone to UTC seconds within ``[lo, hi]`` (UTC)."""

    def __init__(self, zone: str, lo: float, hi: float) -> None:
        self.zone = ZoneInfo(zone)
        self.name = zone
        self._bounds: list[float] = []
        self._offsets: list[float] = [_offset(self.zone, lo)]
        self._arrays: tuple[FloatArray, FloatArray] | None = None
        t = lo
        while t < hi:
            nxt = min(t + _SAMPLE, hi)
            if _offset(self.zone, nxt) != self._offsets[-1]:
                self._add_transition(t, nxt)
            t = nxt

    def _add_transition(self, before: float, after: float) -> None:
        old = self._offsets[-1]
        while after - before > 1:
            mid = (before + after) // 2
            if _offset(self.zone, mid) == old:
                before = mid
            else:
                after = mid
        new = _offset(self.zone, after)
        # local times before this bound read with the old offset (fold=0 for gaps and folds)
        self._bounds.append(after + max(old, new))
        self._offsets.append(new)

    @property
    def transitions(self) -> int:
        return len(self._bounds)

    def to_utc(self, local: FloatArray) -> FloatArray:
        """UTC seconds of an array of local wall-clock seconds."""
        import numpy as np

        if not self._bounds:
            result: FloatArray = local - self._offsets[0]
            return result
        if self._arrays is None:
            self._arrays = (np.asarray(self._bounds), np.asarray(self._offsets, dtype=np.float64))
        bounds, offsets = self._arrays
        shifted: FloatArray = local - offsets[np.searchsorted(bounds, local, side="right")]
        return shifted

    def one_to_utc(self, local: float) -> float:
        """UTC seconds of one local wall-clock second count."""
        import bisect

        return local - self._offsets[bisect.bisect_right(self._bounds, local)]


class DayGrid:
    """Every local day that may open a window overlapping ``[lo, hi)``: midnights and weekdays."""

    def __init__(self, lo: float, hi: float) -> None:
        import numpy as np

        first = int((lo - 2 * DAY) // DAY)
        last = int((hi + 2 * DAY) // DAY)
        days = np.arange(first, last + 1, dtype=np.int64)
        self.weekday = (days + _EPOCH_WEEKDAY) % 7
        self.midnight = days.astype(np.float64) * DAY
        self.lo = lo
        self.hi = hi

    def midnights(self, weekdays: frozenset[int]) -> FloatArray:
        """Local midnights (as local seconds) of the days whose weekday is in ``weekdays``."""
        import numpy as np

        if len(weekdays) == 7:
            return self.midnight
        table = np.zeros(7, dtype=bool)
        table[list(weekdays)] = True
        selected: FloatArray = self.midnight[table[self.weekday]]
        return selected


def expand_weekly(rule: WeeklyRule, tz: LocalTime, grid: DayGrid) -> tuple[FloatArray, FloatArray]:
    """Every occurrence of ``rule`` in ``tz`` that overlaps the grid's ``[lo, hi)`` (UTC seconds)."""
    base = grid.midnights(rule.days)
    starts = tz.to_utc(base + rule.start_minute * 60.0)
    ends = tz.to_utc(base + rule.end_minute * 60.0)
    keep = (ends > grid.lo) & (starts < grid.hi) & (ends > starts)
    return starts[keep], ends[keep]


def utc_datetime(seconds: float) -> datetime:
    """An aware UTC datetime from epoch seconds."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
