"""Window specs → concrete UTC intervals, with errors that name the spec and where it came from.

:func:`load_windows` validates raw user data (a mapping from YAML/JSON or the Python API) into a
``WindowsConfig`` and turns pydantic's errors into one :class:`~sysflow.errors.ConstraintError`
listing every problem. :class:`SpecExpander` expands validated specs over a horizon: weekly rules
(see :mod:`sysflow.constraints.weekly` for the daylight-saving rule), cron + duration (croniter,
evaluated in local wall-clock time, each distinct expression once per build), and one-off
intervals (naive times are local to the spec's zone).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from sysflow.constraints.weekly import DAY, DayGrid, LocalTime, expand_weekly, local_seconds, utc_datetime
from sysflow.errors import ConstraintError, Problem
from sysflow.model.windows import WeeklyRule, WindowsConfig, WindowSpec, check_timezone, parse_weekly

if TYPE_CHECKING:
    from sysflow.constraints.intervals import FloatArray

__all__ = ["SpecExpander", "SpecSource", "field_path", "load_windows", "problems_of"]


@dataclass(frozen=True, slots=True)
class SpecSource:
    """Where a spec came from: its group (or ``"blackouts"``), index, and the caller's location."""

    group: str
    index: int
    location: str | None = None

    def __str__(self) -> str:
        """The field path; the location goes in the error's ``source``."""
        path = "windows.blackouts" if self.group == "blackouts" else f"windows.groups.{self.group}"
        return f"{path}[{self.index}]"


def field_path(loc: tuple[int | str, ...], prefix: str = "") -> str:
    """``("groups", "web", 0)`` → ``"groups.web[0]"`` (with ``prefix.`` in front when given)."""
    text = prefix
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def problems_of(exc: ValidationError, prefix: str = "") -> list[Problem]:
    """One :class:`Problem` per pydantic error, located by field path (the file goes in ``source``)."""
    return [
        Problem(f"{err['msg']} (input {err.get('input')!r})", field_path(tuple(err["loc"]), prefix))
        for err in exc.errors()
    ]


def load_windows(data: Mapping[str, Any] | WindowsConfig, *, location: str | None = None) -> WindowsConfig:
    """Validate ``data`` into a ``WindowsConfig``; raises ``ConstraintError`` with every problem."""
    if isinstance(data, WindowsConfig):
        return data
    try:
        return WindowsConfig.model_validate(data)
    except ValidationError as exc:
        raise ConstraintError(problems_of(exc, "windows"), source=location or "windows") from None


class SpecExpander:
    """Expands specs over ``[lo, hi)`` (UTC seconds); caches zone tables and cron fire times."""

    def __init__(self, lo: float, hi: float, *, default_tz: str, location: str | None = None) -> None:
        self.lo = lo
        self.hi = hi
        self.default_tz = default_tz
        self.location = location
        self._zones: dict[str, LocalTime] = {}
        self._grid: DayGrid | None = None
        self._rules: dict[str, WeeklyRule] = {}
        self._cron: dict[str, FloatArray] = {}
        self._margin = 8 * DAY  # zone tables cover the horizon plus the longest lead-in we use

    def zone(self, name: str, source: SpecSource) -> LocalTime:
        table = self._zones.get(name)
        if table is None:
            try:
                check_timezone(name)
            except ValueError as exc:
                raise self.error(str(exc), source) from None
            table = LocalTime(name, self.lo - self._margin, self.hi + self._margin)
            self._zones[name] = table
        return table

    def error(self, message: str, source: SpecSource) -> ConstraintError:
        return ConstraintError([Problem(message, str(source))], source=self.location)

    def expand(self, spec: WindowSpec, source: SpecSource) -> tuple[FloatArray, FloatArray]:
        """UTC (starts, ends) of every occurrence of ``spec`` overlapping the horizon."""
        tz = self.zone(spec.timezone or self.default_tz, source)
        if spec.weekly is not None:
            rule = self._rules.get(spec.weekly)
            if rule is None:
                rule = self._rules[spec.weekly] = parse_weekly(spec.weekly)
            if self._grid is None:
                self._grid = DayGrid(self.lo, self.hi)
            return expand_weekly(rule, tz, self._grid)
        if spec.cron is not None and spec.duration is not None:
            return self._expand_cron(spec.cron, spec.duration, tz, source, spec.offset_days)
        if spec.holidays is not None or spec.ical is not None:
            from sysflow.constraints.blackouts import expand_holidays, expand_ical

            if spec.holidays is not None:
                return expand_holidays(spec.holidays, tz, self.lo, self.hi)
            assert spec.ical is not None
            return expand_ical(spec.ical, tz, self.lo, self.hi)
        assert spec.start is not None
        assert spec.end is not None
        return self._expand_once(spec.start, spec.end, tz)

    def _expand_once(self, start: datetime, end: datetime, tz: LocalTime) -> tuple[FloatArray, FloatArray]:
        import numpy as np

        s, e = (
            t.timestamp() if t.tzinfo is not None else tz.one_to_utc(local_seconds(t)) for t in (start, end)
        )
        keep = e > self.lo and s < self.hi
        return np.array([s] if keep else []), np.array([e] if keep else [])

    def _expand_cron(
        self, expr: str, duration: float, tz: LocalTime, source: SpecSource, offset_days: int = 0
    ) -> tuple[FloatArray, FloatArray]:
        offset = offset_days * DAY  # in wall-clock days: "second Tuesday + 2" opens at the same local time
        fires = tz.to_utc(self._cron_local(expr, duration + offset) + offset)
        if len(fires) > 1 and float((fires[1:] - fires[:-1]).min()) < duration:
            gap = float((fires[1:] - fires[:-1]).min())
            msg = f"cron window {expr!r}: duration {duration:g}s is longer than its period ({gap:g}s)"
            raise self.error(msg, source)
        ends = fires + duration
        keep = (ends > self.lo) & (fires < self.hi)
        return fires[keep], ends[keep]

    def _cron_local(self, expr: str, duration: float) -> FloatArray:
        """Local wall-clock fire times covering the horizon (cached per expression)."""
        lead = max(duration, _WEEK) + DAY  # one lead-in for all windows up to a week long
        key = f"{expr}|{lead}"
        cached = self._cron.get(key)
        if cached is None:
            first = self.lo - lead
            last = self.hi + DAY
            cached = _fires(expr, first, last)
            self._cron[key] = cached
        return cached


_WEEK = 7 * DAY
_MONDAY = 4 * DAY  # 1970-01-05, the first Monday after the epoch


def _fires(expr: str, first: float, last: float) -> FloatArray:
    """croniter's fire times in ``(first, last]`` (naive local seconds).

    An expression that depends only on weekday and time of day (no day of month, month, ``#`` or
    ``L``) repeats every week in wall-clock time: croniter gives one week, tiled over the rest.
    """
    import numpy as np

    from sysflow.model.cron import croniter

    it = croniter(expr, utc_datetime(first).replace(tzinfo=None))
    fields = it.expanded
    weekly = len(fields) == 5 and fields[2] == ["*"] and fields[3] == ["*"] and not it.nth_weekday_of_month
    if not weekly:
        return np.asarray(_walk(it, last), dtype=np.float64)
    week0 = _MONDAY + ((first - _MONDAY) // _WEEK) * _WEEK
    it.set_current(utc_datetime(week0 - 1).replace(tzinfo=None), force=True)
    offsets = np.asarray(_walk(it, week0 + _WEEK - 1), dtype=np.float64) - week0
    weeks = week0 + _WEEK * np.arange(int((last - week0) // _WEEK) + 1, dtype=np.float64)
    tiled = (weeks[:, None] + offsets[None, :]).ravel()
    result: FloatArray = tiled[(tiled > first) & (tiled <= last)]
    return result


def _walk(it: Any, last: float) -> list[float]:
    out: list[float] = []
    while True:
        t = local_seconds(it.get_next(datetime))
        if t > last:
            return out
        out.append(t)
