"""When a schedule fires: cron, "the first/second/.../last <weekday> window of the month", or every window.

A :class:`Recurrence` is what users write (``sysflow schedule add --when TEXT`` or the Python API):

* ``cron "0 2 * * SUN"`` with a ``timezone``: the cron fields are wall-clock times in that zone (so a
  02:00 job stays at 02:00 local across daylight saving). A wall time skipped by a spring-forward
  gap fires at the instant the same UTC offset as before the gap gives (02:30 CET that never was is
  03:30 CEST); a wall time repeated in autumn fires once, at its first occurrence.
* ``first sunday window of web_servers`` (``first`` | ``second`` | ``third`` | ``fourth`` |
  ``last``): among the group's windows that *open* on that weekday, counted per calendar month in
  the windows' own time zone, the n-th one; the occurrence is the window's opening instant.
* ``every window of web_servers``: every opening of the group's windows.

Window occurrences come from :class:`sysflow.constraints.calendar.Calendar` (blackouts subtracted,
DST-correct), so a schedule and the engine never disagree about when a window opens.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from enum import StrEnum
from itertools import groupby
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, model_validator

from sysflow.clock import utc
from sysflow.errors import ConstraintError, Problem
from sysflow.model.base import FrozenModel
from sysflow.model.windows import DAY_NAMES, WindowsConfig, check_timezone

__all__ = ["Nth", "Recurrence", "RecurrenceKind", "occurrences"]

Nth = Literal["first", "second", "third", "fourth", "last"]
_NTH_INDEX: dict[str, int] = {"first": 0, "second": 1, "third": 2, "fourth": 3, "last": -1}
_MARGIN = timedelta(days=40)  # windows expanded beyond the asked span: whole months, whole windows
_CRON_TEXT = re.compile(r'^\s*cron\s+"?(?P<expr>[^"]+?)"?\s*$', re.IGNORECASE)
_NTH_TEXT = re.compile(
    r"^\s*(?P<nth>first|second|third|fourth|last)\s+(?P<day>\w+)\s+window\s+of\s+(?P<group>\S+)\s*$",
    re.IGNORECASE,
)
_EVERY_TEXT = re.compile(r"^\s*every\s+window\s+of\s+(?P<group>\S+)\s*$", re.IGNORECASE)


class RecurrenceKind(StrEnum):
    """The three forms of recurrence."""

    CRON = "cron"
    NTH_WINDOW = "nth_window"
    EVERY_WINDOW = "every_window"


class Recurrence(FrozenModel):
    """When a schedule fires. Build with :meth:`parse` or with the fields directly."""

    cron: str | None = Field(None, description="Cron expression (5 fields, or 6 with seconds last).")
    timezone: str = Field("UTC", description="IANA zone of the cron fields.")
    group: str | None = Field(None, description="Group whose windows the schedule follows.")
    nth: Nth | None = Field(None, description="Which window of the month: first ... fourth, or last.")
    weekday: str | None = Field(None, description="Weekday the counted windows open on (monday ...).")

    @model_validator(mode="after")
    def _one_form(self) -> Recurrence:
        check_timezone(self.timezone)
        if (self.cron is None) == (self.group is None):
            raise ValueError("a recurrence is either a cron expression or a group's windows")
        if self.cron is not None:
            _check_cron(self.cron)
        if (self.nth is None) != (self.weekday is None):
            raise ValueError("'nth' and 'weekday' go together")
        if self.weekday is not None and _weekday(self.weekday) < 0:
            raise ValueError(f"unknown weekday {self.weekday!r}")
        return self

    @property
    def kind(self) -> RecurrenceKind:
        if self.cron is not None:
            return RecurrenceKind.CRON
        return RecurrenceKind.NTH_WINDOW if self.nth is not None else RecurrenceKind.EVERY_WINDOW

    @classmethod
    def parse(cls, text: str, *, timezone: str = "UTC") -> Recurrence:
        """``cron "0 2 * * SUN"`` | ``first sunday window of GROUP`` | ``every window of GROUP``."""
        if m := _CRON_TEXT.match(text):
            return cls(cron=m["expr"].strip(), timezone=timezone)
        if m := _NTH_TEXT.match(text):
            return cls(group=m["group"], nth=m["nth"].lower(), weekday=m["day"].lower())
        if m := _EVERY_TEXT.match(text):
            return cls(group=m["group"])
        raise ValueError(
            f"cannot read recurrence {text!r}: expected 'cron \"EXPR\"', "
            "'first|second|third|fourth|last WEEKDAY window of GROUP' or 'every window of GROUP'"
        )

    def describe(self) -> str:
        if self.cron is not None:
            return f'cron "{self.cron}" ({self.timezone})'
        if self.nth is not None:
            return f"{self.nth} {self.weekday} window of {self.group}"
        return f"every window of {self.group}"


def _weekday(name: str) -> int:
    key = name.strip().lower()
    for i, day in enumerate(DAY_NAMES):
        if key in (day, day[:3]):
            return i
    return -1


def _check_cron(expr: str) -> None:
    from sysflow.model.cron import croniter

    if not croniter.is_valid(expr):
        raise ValueError(f"invalid cron expression {expr!r}")


def occurrences(rec: Recurrence, windows: WindowsConfig, start: datetime, end: datetime) -> list[datetime]:
    """Instants (UTC, sorted) at which ``rec`` fires in ``(start, end]``."""
    lo, hi = utc(start), utc(end)
    if hi <= lo:
        return []
    if rec.cron is not None:
        return list(_cron(rec.cron, ZoneInfo(rec.timezone), lo, hi))
    return [t for t in _window_starts(rec, windows, lo, hi) if lo < t <= hi]


def _cron(expr: str, tz: ZoneInfo, lo: datetime, hi: datetime) -> Iterator[datetime]:
    """Cron fired on naive local wall time, each wall time mapped to UTC once (fold 0)."""
    from sysflow.model.cron import CroniterBadDateError, croniter

    local = lo.astimezone(tz).replace(tzinfo=None) - timedelta(hours=3)  # DST shifts are < 3 h
    it = croniter(expr, local)
    seen: set[datetime] = set()
    while True:
        try:
            wall: datetime = it.get_next(datetime)
        except CroniterBadDateError:  # an expression that never fires (30 February)
            return
        t = utc(wall.replace(tzinfo=tz))
        if t > hi and wall - timedelta(hours=3) > hi.astimezone(tz).replace(tzinfo=None):
            return
        if lo < t <= hi and t not in seen:
            seen.add(t)
            yield t


def zone_of(windows: WindowsConfig, group: str) -> ZoneInfo:
    """The time zone a group's windows are written in (its first spec's, else the default)."""
    specs = windows.groups.get(group, [])
    name = next((s.timezone for s in specs if s.timezone), None) or windows.timezone
    return ZoneInfo(name)


def _window_starts(rec: Recurrence, windows: WindowsConfig, lo: datetime, hi: datetime) -> list[datetime]:
    from sysflow.constraints.calendar import Calendar

    group = str(rec.group)
    if group not in windows.groups:
        raise ConstraintError(
            [Problem(f"schedule follows the windows of {group!r}, but the workflow gives it none")]
        )
    cal = Calendar.build(windows, start=lo - _MARGIN, end=hi + _MARGIN)
    starts = [w.start for w in cal.windows(group, lo - _MARGIN, hi + _MARGIN)]
    if rec.nth is None:
        return starts
    tz, day = zone_of(windows, group), _weekday(str(rec.weekday))
    local = [t for t in starts if t.astimezone(tz).weekday() == day]
    picked: list[datetime] = []
    for _, month in groupby(local, key=lambda t: (t.astimezone(tz).year, t.astimezone(tz).month)):
        items = list(month)
        index = _NTH_INDEX[rec.nth]
        if -len(items) <= index < len(items):
            picked.append(items[index])
    return picked
