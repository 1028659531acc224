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
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from sysflow.constraints.weekly import DAY, LocalTime, expand_weekly, local_seconds, utc_datetime
from sysflow.errors import ConstraintError, Problem
from sysflow.model.windows import WindowsConfig, WindowSpec, check_timezone

if TYPE_CHECKING:
    from sysflow.constraints.intervals import FloatArray

__all__ = ["SpecExpander", "SpecSource", "load_windows", "problems_of"]


@dataclass(frozen=True, slots=True)
class SpecSource:
    """Where a spec came from: its group (or ``"blackouts"``), index, and the caller's location."""

    group: str
    index: int
    location: str | None = None

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        return f"{where}windows.{self.group}[{self.index}]"


def problems_of(exc: ValidationError, location: str | None) -> list[Problem]:
    """One :class:`Problem` per pydantic error, located by field path (and the caller's location)."""
    out: list[Problem] = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"])
        where = f"{location}: {path}" if location and path else (location or path)
        out.append(Problem(f"{err['msg']} (input {err.get('input')!r})", where))
    return out


def load_windows(data: Mapping[str, Any] | WindowsConfig, *, location: str | None = None) -> WindowsConfig:
    """Validate ``data`` into a ``WindowsConfig``; raises ``ConstraintError`` with every problem."""
    if isinstance(data, WindowsConfig):
        return data
    try:
        return WindowsConfig.model_validate(data)
    except ValidationError as exc:
        raise ConstraintError(problems_of(exc, location), source=location or "windows") from None


class SpecExpander:
    """Expands specs over ``[lo, hi)`` (UTC seconds); caches zone tables and cron fire times."""

    def __init__(self, lo: float, hi: float, *, default_tz: str, location: str | None = None) -> None:
        self.lo = lo
        self.hi = hi
        self.default_tz = default_tz
        self.location = location
        self._zones: dict[str, LocalTime] = {}
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
        rule = spec.rule
        if rule is not None:
            return expand_weekly(rule, tz, self.lo, self.hi)
        if spec.cron is not None and spec.duration is not None:
            return self._expand_cron(spec.cron, spec.duration, tz, source)
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
        self, expr: str, duration: float, tz: LocalTime, source: SpecSource
    ) -> tuple[FloatArray, FloatArray]:
        fires = tz.to_utc(self._cron_local(expr, duration))
        if len(fires) > 1 and float((fires[1:] - fires[:-1]).min()) < duration:
            gap = float((fires[1:] - fires[:-1]).min())
            msg = f"cron window {expr!r}: duration {duration:g}s is longer than its period ({gap:g}s)"
            raise self.error(msg, source)
        ends = fires + duration
        keep = (ends > self.lo) & (fires < self.hi)
        return fires[keep], ends[keep]

    def _cron_local(self, expr: str, duration: float) -> FloatArray:
        """Local wall-clock fire times covering the horizon (cached per expression)."""
        import numpy as np
        from croniter import croniter

        lead = max(duration, DAY) + DAY
        key = f"{expr}|{lead}"
        cached = self._cron.get(key)
        if cached is not None:
            return cached
        first = utc_datetime(self.lo - lead).replace(tzinfo=None)
        last = local_seconds(utc_datetime(self.hi + DAY).replace(tzinfo=None))
        it = croniter(expr, first - timedelta(seconds=1))
        out: list[float] = []
        while True:
            t = local_seconds(it.get_next(datetime))
            if t > last:
                break
            out.append(t)
        arr = np.asarray(out, dtype=np.float64)
        self._cron[key] = arr
        return arr
