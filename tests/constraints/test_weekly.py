"""Weekly spec syntax, local→UTC conversion (the DST rule), and daylight-saving windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sysflow.constraints import Calendar, Window
from sysflow.constraints.weekly import LocalTime, local_seconds, utc_datetime
from sysflow.model.windows import WeeklyRule, parse_weekly, weekly_problem

SUN = 6


@pytest.mark.parametrize(
    ("text", "days", "start", "end"),
    [
        ("Sunday 01:00-03:00", {SUN}, 60, 180),
        ("Sun 01:00-03:00", {SUN}, 60, 180),
        ("sundays 01:00-03:00", {SUN}, 60, 180),
        ("Mon-Fri 22:00-02:00", {0, 1, 2, 3, 4}, 1320, 1560),
        ("Sat,Sun 00:00-06:00", {5, 6}, 0, 360),
        ("Sat, Sun 00:00 - 06:00", {5, 6}, 0, 360),
        ("daily 02:00-04:00", set(range(7)), 120, 240),
        ("weekdays 02:00-04:00", set(range(5)), 120, 240),
        ("weekends 23:00-24:00", {5, 6}, 1380, 1440),
        ("Fri-Mon 00:00-24:00", {4, 5, 6, 0}, 0, 1440),
    ],
)
def test_parse_weekly(text: str, days: set[int], start: int, end: int) -> None:
    rule = parse_weekly(text)
    assert rule == WeeklyRule(frozenset(days), start, end, text.strip())
    assert rule.length_minutes == end - start
    assert weekly_problem(text) is None


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("Sundy 01:00-03:00", "unknown day 'Sundy'"),
        ("25:00-26:00", "invalid time '25:00'"),
        ("Sun 01:60-03:00", "invalid time '01:60'"),
        ("Sun 24:00-03:00", "invalid time '24:00'"),
        ("Sun 01:00-01:00", "start equals end"),
        ("01:00-03:00", "names no days"),
        ("Sunday 1h-3h", "malformed weekly spec"),
        ("Mon-Fro 01:00-02:00", "unknown day 'Fro'"),
    ],
)
def test_malformed_weekly(text: str, needle: str) -> None:
    problem = weekly_problem(text)
    assert problem is not None
    assert needle in problem
    assert text in problem


ZONES = ["UTC", "Europe/Amsterdam", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
LO = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
HI = datetime(2027, 1, 1, tzinfo=UTC).timestamp()


@settings(max_examples=200, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    naive=st.datetimes(min_value=datetime(2026, 1, 2), max_value=datetime(2026, 12, 30)),
)
def test_local_to_utc_matches_python_fold0(zone: str, naive: datetime) -> None:
    table = LocalTime(zone, LO, HI)
    naive = naive.replace(microsecond=0)
    expected = naive.replace(tzinfo=ZoneInfo(zone), fold=0).timestamp()
    assert table.one_to_utc(local_seconds(naive)) == expected
    assert table.to_utc(np.array([local_seconds(naive)]))[0] == expected


def test_zone_tables_find_transitions() -> None:
    assert LocalTime("UTC", LO, HI).transitions == 0
    assert LocalTime("Europe/Amsterdam", LO, HI).transitions == 2
    assert LocalTime("America/New_York", LO, HI).transitions == 2


def _one(cal: Calendar, group: str, day: datetime) -> Window:
    found = cal.windows(group, day - timedelta(hours=12), day + timedelta(hours=36))
    assert len(found) == 1
    return found[0]


def _cal(zone: str, spec: str, start: datetime) -> Calendar:
    return Calendar.build({"timezone": zone, "groups": {"g": spec}}, start=start, horizon=timedelta(days=3))


def z(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "night", "start", "end", "hours"),
    [
        # spring forward: 02:00 -> 03:00 local, so 01:30-03:30 lasts one real hour
        ("Europe/Amsterdam", z(2026, 3, 29), z(2026, 3, 29, 0, 30), z(2026, 3, 29, 1, 30), 1),
        ("America/New_York", z(2026, 3, 8), z(2026, 3, 8, 6, 30), z(2026, 3, 8, 7, 30), 1),
        # fall back: 03:00 -> 02:00 (Amsterdam), 02:00 -> 01:00 (New York): three real hours
        ("Europe/Amsterdam", z(2026, 10, 25), z(2026, 10, 24, 23, 30), z(2026, 10, 25, 2, 30), 3),
        ("America/New_York", z(2026, 11, 1), z(2026, 11, 1, 5, 30), z(2026, 11, 1, 8, 30), 3),
    ],
)
def test_dst_nights(zone: str, night: datetime, start: datetime, end: datetime, hours: int) -> None:
    cal = _cal(zone, "Sunday 01:30-03:30", night - timedelta(days=1))
    window = _one(cal, "g", night)
    assert (window.start, window.end) == (start, end)
    assert window.duration == timedelta(hours=hours)
    # the neighbouring ordinary Sunday lasts the nominal two hours
    other = Calendar.build(
        {"timezone": zone, "groups": {"g": "Sunday 01:30-03:30"}},
        start=night + timedelta(days=6),
        horizon=timedelta(days=2),
    )
    assert _one(other, "g", night + timedelta(days=7)).duration == timedelta(hours=2)


def test_window_opening_inside_the_gap_opens_after_it() -> None:
    cal = _cal("Europe/Amsterdam", "Sunday 02:15-04:00", z(2026, 3, 28))
    window = _one(cal, "g", z(2026, 3, 29))
    assert window.start == z(2026, 3, 29, 1, 15)  # 03:15 CEST: 02:15 read with the CET offset
    assert window.end == z(2026, 3, 29, 2, 0)  # 04:00 CEST


def test_ambiguous_start_is_the_first_occurrence() -> None:
    cal = _cal("America/New_York", "Sunday 01:15-01:45", z(2026, 10, 31))
    window = _one(cal, "g", z(2026, 11, 1))
    assert window.start == z(2026, 11, 1, 5, 15)  # 01:15 EDT
    assert window.duration == timedelta(minutes=30)


def test_cron_on_dst_night_keeps_real_duration() -> None:
    cal = Calendar.build(
        {"timezone": "Europe/Amsterdam", "groups": {"g": {"cron": "30 1 * * SUN", "duration": "2h"}}},
        start=z(2026, 3, 28),
        horizon=timedelta(days=3),
    )
    window = _one(cal, "g", z(2026, 3, 29))
    assert window.start == z(2026, 3, 29, 0, 30)
    assert window.duration == timedelta(hours=2)


def test_utc_datetime_roundtrip() -> None:
    t = z(2026, 5, 17, 3, 4, 5)
    assert utc_datetime(t.timestamp()) == t
