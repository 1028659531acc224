"""Syntax check of weekly window specs (``"Sunday 01:00-03:00"``, ``"Mon-Fri 22:00-02:00"``).

Only the *syntax*, so a workflow file with a typo fails at validation with its line number;
``sysflow.constraints`` owns what a window means (time zones, calendars, DST). Accepted form::

    DAYS HH:MM-HH:MM
    DAYS = daily | weekdays | weekends | DAY[-DAY][,DAY[-DAY]...]   (names or 3-letter abbreviations)

A window may cross midnight (``22:00-02:00``); ``24:00`` is allowed as an end.
"""

from __future__ import annotations

import re

__all__ = ["parse_days", "weekly_problem"]

_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_ALIASES = {"daily": range(7), "everyday": range(7), "weekdays": range(5), "weekends": range(5, 7)}
_SPEC = re.compile(
    r"^\s*(?P<days>\S+(?:\s*,\s*\S+)*)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})\s*$"
)


def _day(name: str) -> int | None:
    text = name.strip().lower()
    for i, full in enumerate(_DAYS):
        if text in (full, full[:3], f"{full}s"):
            return i
    return None


def parse_days(text: str) -> set[int] | None:
    """Weekday numbers (Monday = 0) of a day list like ``Mon-Fri`` or ``Sat,Sun``; None if malformed."""
    alias = _ALIASES.get(text.strip().lower())
    if alias is not None:
        return set(alias)
    days: set[int] = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        a, b = _day(first), _day(last) if last else _day(first)
        if a is None or b is None:
            return None
        days.update((a + k) % 7 for k in range((b - a) % 7 + 1))
    return days


def _minutes(text: str, *, end: bool) -> int | None:
    hours, minutes = (int(x) for x in text.split(":"))
    if minutes > 59 or hours > 24 or (hours == 24 and (minutes or not end)):
        return None
    return hours * 60 + minutes


def weekly_problem(spec: str) -> str | None:
    """Why ``spec`` is not a valid weekly window spec, or None when it is."""
    m = _SPEC.match(spec)
    if m is None:
        return f"not a weekly window {spec!r} (expected e.g. 'Sunday 01:00-03:00' or 'Mon-Fri 22:00-02:00')"
    if parse_days(m["days"]) is None:
        return f"unknown day in window {spec!r} (use Monday..Sunday, Mon..Sun, daily, weekdays, weekends)"
    start, end = _minutes(m["start"], end=False), _minutes(m["end"], end=True)
    if start is None or end is None:
        return f"bad time of day in window {spec!r} (use HH:MM, 00:00-23:59, 24:00 as an end)"
    if start == end % 1440:
        return f"empty window {spec!r}: start equals end"
    return None
