"""What users write about maintenance windows; ``sysflow.constraints.calendar`` gives them meaning.

A window is written as one of:

* a weekly spec string: ``"Sunday 01:00-03:00"``, ``"Sun 01:00-03:00"``, ``"Mon-Fri 22:00-02:00"``,
  ``"Sat,Sun 00:00-06:00"``, ``"daily 02:00-04:00"``, ``"weekdays ..."``, ``"weekends ..."`` (the same
  syntax ``sysflow.model.weekly`` checks; crossing midnight is allowed; the days name the day the
  window *opens*; ``24:00`` is accepted as an end);
* ``{cron: "0 1 * * SUN", duration: 2h}`` (cron fields per croniter; the duration is real elapsed time);
* an ISO 8601 interval ``"2026-11-29T01:00/2026-11-29T03:00"`` or ``"2026-11-29T01:00/PT2H"`` (or
  ``start``/``end`` keys), or a one-off
  date ``"2026-11-29"`` (the whole day, midnight to midnight);

each with an optional ``timezone`` and ``cutoff``. Syntax is checked here (so a workflow file with
``"Sundy 01:00-03:00"`` or ``"25:00-26:00"`` is rejected when it is loaded); what depends on a horizon
(blackouts emptying a window, a cron period shorter than its duration) is checked by the calendar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from sysflow.model.base import FrozenModel
from sysflow.model.durations import Duration, parse_duration

__all__ = [
    "DAY_NAMES",
    "WeeklyRule",
    "WindowSpec",
    "WindowsConfig",
    "check_timezone",
    "parse_weekly",
    "weekly_problem",
]

DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
"""Index = ``datetime.weekday()`` (Monday is 0)."""

_DAY_INDEX = (
    {name: i for i, name in enumerate(DAY_NAMES)}
    | {f"{name}s": i for i, name in enumerate(DAY_NAMES)}
    | {n[:3]: i for i, n in enumerate(DAY_NAMES)}
)
_ALL_DAYS = frozenset(range(7))
_ALIASES = {
    "daily": _ALL_DAYS,
    "everyday": _ALL_DAYS,
    "weekdays": frozenset(range(5)),
    "weekends": frozenset({5, 6}),
}
_SPEC = re.compile(r"^\s*(?:(?P<days>.*?)\s+)?(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})\s*$")
_MINUTES_PER_DAY = 1440


@dataclass(frozen=True, slots=True)
class WeeklyRule:
    """A parsed weekly spec: opening days (0 = Monday) and wall-clock minutes after local midnight.

    ``end_minute`` is greater than ``start_minute``; a window crossing midnight ends after 1440.
    """

    days: frozenset[int]
    start_minute: int
    end_minute: int
    text: str

    @property
    def length_minutes(self) -> int:
        return self.end_minute - self.start_minute


def _parse_day(word: str, text: str) -> int:
    key = word.strip().lower()
    if key not in _DAY_INDEX:
        raise ValueError(
            f"unknown day {word.strip()!r} in weekly spec {text!r} (use e.g. Sunday, Sun, Mon-Fri)"
        )
    return _DAY_INDEX[key]


def _parse_days(part: str, text: str) -> frozenset[int]:
    alias = _ALIASES.get(part.strip().lower())
    if alias is not None:
        return alias
    days: set[int] = set()
    for item in part.split(","):
        first, sep, last = item.partition("-")
        lo = _parse_day(first, text)
        hi = _parse_day(last, text) if sep else lo
        days.update((lo + k) % 7 for k in range((hi - lo) % 7 + 1))
    return frozenset(days)


def _parse_clock(value: str, text: str, *, is_end: bool) -> int:
    hours, minutes = (int(v) for v in value.split(":"))
    if is_end and hours == 24 and minutes == 0:
        return _MINUTES_PER_DAY
    if hours > 23 or minutes > 59:
        raise ValueError(
            f"invalid time {value!r} in weekly spec {text!r} (use 00:00-23:59, or 24:00 as an end)"
        )
    return hours * 60 + minutes


def parse_weekly(text: str) -> WeeklyRule:
    """Parse ``"DAYS HH:MM-HH:MM"`` (DAYS: ``daily``, ``weekdays``, ``weekends``, ``Mon-Fri``,
    ``Sat,Sun``, ``Sunday``...). Raises ``ValueError`` naming the spec and what is wrong."""
    match = _SPEC.match(text)
    if match is None:
        raise ValueError(f"malformed weekly spec {text!r} (expected e.g. 'Sunday 01:00-03:00')")
    start = _parse_clock(match["start"], text, is_end=False)
    end = _parse_clock(match["end"], text, is_end=True)
    if not match["days"]:
        raise ValueError(f"weekly spec {text!r} names no days (e.g. 'daily 02:00-04:00')")
    days = _parse_days(match["days"], text)
    if end == start:
        raise ValueError(f"empty window in weekly spec {text!r}: start equals end")
    if end < start:
        end += _MINUTES_PER_DAY
    return WeeklyRule(days, start, end, text.strip())


def weekly_problem(text: str) -> str | None:
    """Why ``text`` is not a weekly spec, or None when it is one."""
    try:
        parse_weekly(text)
    except ValueError as exc:
        return str(exc)
    return None


def check_timezone(name: str) -> str:
    """Validate an IANA time zone name; raises ``ValueError`` naming it."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None
    return name


def _check_cron(expr: str) -> str:
    from sysflow.model.cron import croniter  # lazy: only window files with cron pay for it

    if not croniter.is_valid(expr):
        raise ValueError(f"invalid cron expression {expr!r}")
    return expr


def _text_form(text: str) -> dict[str, Any]:
    if "/" in text and text[:1].isdigit():
        start, _, end = (part.strip() for part in text.partition("/"))
        if end[:1].upper() == "P":  # ISO 8601 start/duration
            begin = datetime.fromisoformat(start)
            return {"start": begin, "end": begin + timedelta(seconds=parse_duration(end))}
        return {"start": start, "end": end}
    if text[:4].isdigit() and len(text) == 10:
        day = date.fromisoformat(text)
        return {"start": f"{day}T00:00:00", "end": f"{day + timedelta(days=1)}T00:00:00"}
    return {"weekly": text}


class WindowSpec(FrozenModel):
    """One recurring or one-off window (or blackout). Exactly one form is given."""

    weekly: str | None = Field(
        None, description='Weekly spec, e.g. "Sunday 01:00-03:00" or "Mon-Fri 22:00-02:00".'
    )
    cron: str | None = Field(None, description='Cron expression for the window start, e.g. "0 1 * * SUN".')
    duration: Duration | None = Field(None, description="Length of a cron window (e.g. 2h), real time.")
    offset_days: int = Field(
        0, ge=0, le=27, description='Days after each cron fire the window opens ("Patch Tuesday + 2").'
    )
    holidays: str | None = Field(
        None,
        description='Public holidays of a country[-subdivision] ("NL", "US-CA"), each a whole local day.',
    )
    ical: str | None = Field(None, description="iCalendar file or http(s) URL; recurring events expanded.")
    start: datetime | None = Field(None, description="Start of a one-off window (ISO 8601).")
    end: datetime | None = Field(None, description="End of a one-off window (ISO 8601).")
    timezone: str | None = Field(
        None, description="IANA time zone; defaults to the workflow's windows.timezone."
    )
    cutoff: Duration | None = Field(None, description="Nothing new starts when less than this remains.")
    reason: str | None = Field(None, description="Free text, shown for blackouts.")

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        if isinstance(data, str):
            return _text_form(data.strip())
        return data

    @field_validator("weekly")
    @classmethod
    def _weekly_syntax(cls, value: str | None) -> str | None:
        if value is not None:
            parse_weekly(value)
        return value

    @field_validator("cron")
    @classmethod
    def _cron_syntax(cls, value: str | None) -> str | None:
        return None if value is None else _check_cron(value)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else check_timezone(value)

    @model_validator(mode="after")
    def _one_form(self) -> WindowSpec:
        forms = [
            self.weekly is not None,
            self.cron is not None,
            self.start is not None or self.end is not None,
            self.holidays is not None,
            self.ical is not None,
        ]
        if sum(forms) != 1:
            raise ValueError(
                "a window is exactly one of: a weekly spec, cron + duration, start/end, holidays or ical"
            )
        if self.offset_days and self.cron is None:
            raise ValueError("offset_days belongs to a cron window")
        if self.cron is not None and not self.duration:
            raise ValueError(f"cron window {self.cron!r} needs a positive duration")
        if self.duration is not None and self.cron is None:
            raise ValueError("duration belongs to a cron window")
        if (self.start is None) != (self.end is None):
            raise ValueError("a one-off window needs both start and end")
        if self.start is not None and self.end is not None:
            self._check_order(self.start, self.end)
        return self

    @staticmethod
    def _check_order(start: datetime, end: datetime) -> None:
        if (start.tzinfo is None) != (end.tzinfo is None):
            raise ValueError("a one-off window's start and end must both have, or both lack, an offset")
        if end <= start:
            raise ValueError(f"a one-off window must end after it starts: {start}/{end}")

    @property
    def rule(self) -> WeeklyRule | None:
        """The parsed weekly rule, when this is a weekly spec."""
        return None if self.weekly is None else parse_weekly(self.weekly)

    def describe(self) -> str:
        """A short human form, for messages."""
        if self.weekly is not None:
            return self.weekly
        if self.cron is not None:
            offset = f" + {self.offset_days} days" if self.offset_days else ""
            return f"cron {self.cron!r}{offset} for {self.duration:g}s"
        if self.holidays is not None:
            return f"public holidays {self.holidays}"
        if self.ical is not None:
            return f"iCalendar {self.ical}"
        return f"{self.start.isoformat() if self.start else ''}/{self.end.isoformat() if self.end else ''}"


class WindowsConfig(FrozenModel):
    """Every window of a workflow: per group, blackouts, defaults."""

    timezone: str = Field("UTC", description="Default IANA time zone for window specs.")
    default: Literal["always", "never"] = Field(
        "always", description="Window of hosts in no windowed group: always open, or never."
    )
    groups: dict[str, list[WindowSpec]] = Field(default_factory=dict, description="Windows per group.")
    blackouts: list[WindowSpec] = Field(default_factory=list, description="Freeze periods, subtracted.")
    cutoff: Duration = Field(0.0, description="Default cutoff before each window's end.")
    allow_split_chains: bool = Field(
        False, description="Let a host's remaining tasks continue in a later window instead of one block."
    )

    @model_validator(mode="before")
    @classmethod
    def _lists(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("groups"), dict):
            data = dict(data)
            data["groups"] = {k: v if isinstance(v, list) else [v] for k, v in data["groups"].items()}
        if isinstance(data, dict) and data.get("blackouts") is not None:
            blackouts = data["blackouts"]
            if not isinstance(blackouts, list):
                data = dict(data) | {"blackouts": [blackouts]}
        return data

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return check_timezone(value)
