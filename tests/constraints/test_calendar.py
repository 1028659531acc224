"""Calendar: the brief's windows, midnight, blackouts, cutoffs, intersection, defaults, errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sysflow.constraints import Calendar, Remaining, Window, load_windows
from sysflow.errors import ConstraintError
from sysflow.model.windows import WindowsConfig


def z(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


WEEK = z(2026, 11, 16)  # a Monday; Sunday is 2026-11-22
BRIEF = {
    "groups": {
        "web_servers": "Sunday 01:00-03:00",
        "db_servers": "Sunday 03:00-05:00",
        "cache_servers": "Sunday 01:00-05:00",
    }
}


def spans(windows: list[Window]) -> list[tuple[datetime, datetime]]:
    return [(w.start, w.end) for w in windows]


def build(config: dict[str, Any], start: datetime = WEEK, days: int = 7, **kw: Any) -> Calendar:
    return Calendar.build(config, start=start, end=start + timedelta(days=days), **kw)


def test_brief_windows_for_one_week() -> None:
    cal = build(BRIEF)
    assert cal.groups == ["cache_servers", "db_servers", "web_servers"]
    end = WEEK + timedelta(days=7)
    assert spans(cal.windows("web_servers", WEEK, end)) == [(z(2026, 11, 22, 1), z(2026, 11, 22, 3))]
    assert spans(cal.windows("db_servers", WEEK, end)) == [(z(2026, 11, 22, 3), z(2026, 11, 22, 5))]
    assert spans(cal.windows("cache_servers", WEEK, end)) == [(z(2026, 11, 22, 1), z(2026, 11, 22, 5))]
    assert cal.windows("web_servers", WEEK, end)[0].label == "web_servers: Sunday 01:00-03:00"


def test_queries() -> None:
    cal = build(BRIEF | {"cutoff": "30m"}, days=14)
    t = z(2026, 11, 22, 2)
    assert cal.is_open("web_servers", t)
    assert not cal.is_open("db_servers", t)
    assert cal.is_open("web_servers", z(2026, 11, 22, 1))  # half-open: start is in
    assert not cal.is_open("web_servers", z(2026, 11, 22, 3))  # end is out
    assert cal.current("db_servers", t) is None
    current = cal.current("web_servers", t)
    assert current is not None
    assert current.cutoff_at == z(2026, 11, 22, 2, 30)
    assert current.contains(t)
    assert cal.can_start("web_servers", t)
    assert not cal.can_start("web_servers", z(2026, 11, 22, 2, 45))
    assert not cal.can_start("db_servers", t)
    assert cal.remaining("web_servers", t) == Remaining(timedelta(minutes=30), timedelta(hours=1))
    assert cal.remaining("web_servers", z(2026, 11, 22, 2, 45)) == Remaining(
        timedelta(0), timedelta(minutes=15)
    )
    assert cal.remaining("db_servers", t) is None
    assert cal.next_open("web_servers", t) == t
    assert cal.next_open("db_servers", t) == z(2026, 11, 22, 3)
    assert cal.next_open("db_servers", z(2026, 11, 22, 6)) == z(2026, 11, 29, 3)
    assert cal.next_open("db_servers", z(2026, 11, 29, 6)) is None  # beyond the horizon
    assert len(cal.windows("cache_servers", WEEK, WEEK + timedelta(days=14))) == 2
    # a window open at the query start is returned whole
    assert spans(cal.windows("cache_servers", t, t + timedelta(minutes=1))) == [
        (z(2026, 11, 22, 1), z(2026, 11, 22, 5))
    ]


def test_midnight_crossing() -> None:
    cal = build({"groups": {"g": "Mon-Fri 22:00-02:00"}})
    found = spans(cal.windows("g", WEEK, WEEK + timedelta(days=7)))
    assert len(found) == 5
    assert found[0] == (z(2026, 11, 16, 22), z(2026, 11, 17, 2))
    assert found[-1] == (z(2026, 11, 20, 22), z(2026, 11, 21, 2))  # Friday night into Saturday
    assert cal.is_open("g", z(2026, 11, 21, 1, 59))
    assert not cal.is_open("g", z(2026, 11, 21, 22))  # no Saturday window


def test_sunday_night_window_reaches_into_horizon() -> None:
    cal = build({"groups": {"g": "Sun 23:00-01:00"}}, start=z(2026, 11, 16, 0, 30), days=1)
    assert cal.is_open("g", z(2026, 11, 16, 0, 45))
    assert spans(cal.windows("g", cal.start, cal.end)) == [(z(2026, 11, 15, 23), z(2026, 11, 16, 1))]


def test_blackout_cuts_a_window_in_two() -> None:
    cal = build(
        {
            "groups": {"g": {"weekly": "Sunday 00:00-06:00", "cutoff": "15m"}},
            "blackouts": [
                {"start": "2026-11-22T02:00:00Z", "end": "2026-11-22T03:00:00Z", "reason": "freeze"}
            ],
        }
    )
    windows = cal.windows("g", WEEK, WEEK + timedelta(days=7))
    assert spans(windows) == [
        (z(2026, 11, 22, 0), z(2026, 11, 22, 2)),
        (z(2026, 11, 22, 3), z(2026, 11, 22, 6)),
    ]
    assert [w.cutoff_at for w in windows] == [z(2026, 11, 22, 1, 45), z(2026, 11, 22, 5, 45)]
    assert not cal.is_open("g", z(2026, 11, 22, 2, 30))


def test_recurring_blackout_and_one_off_date() -> None:
    cal = build(
        {
            "groups": {"g": "daily 01:00-03:00"},
            "blackouts": ["Sat,Sun 00:00-24:00", "2026-11-18"],
        }
    )
    days = [w.start.day for w in cal.windows("g", WEEK, WEEK + timedelta(days=7))]
    assert days == [16, 17, 19, 20]


def test_merged_specs_in_a_group() -> None:
    cal = build({"groups": {"g": ["Sunday 01:00-03:00", "Sunday 02:00-04:00", "Sunday 04:00-05:00"]}})
    assert spans(cal.windows("g", WEEK, WEEK + timedelta(days=7))) == [
        (z(2026, 11, 22, 1), z(2026, 11, 22, 5))
    ]


def test_cron_and_iso_forms() -> None:
    cal = build(
        {
            "groups": {
                "cron": {"cron": "0 1 * * SUN", "duration": "2h"},
                "iso": "2026-11-18T10:00:00/2026-11-18T12:00:00",
                "iso_duration": "2026-11-18T10:00:00/PT1H30M",
                "day": {"timezone": "Europe/Amsterdam", "start": "2026-11-19", "end": "2026-11-20"},
                "aware": {"start": "2026-11-19T10:00:00+01:00", "end": "2026-11-19T11:00:00+01:00"},
            }
        }
    )
    end = WEEK + timedelta(days=7)
    assert spans(cal.windows("cron", WEEK, end)) == [(z(2026, 11, 22, 1), z(2026, 11, 22, 3))]
    assert spans(cal.windows("iso", WEEK, end)) == [(z(2026, 11, 18, 10), z(2026, 11, 18, 12))]
    assert spans(cal.windows("iso_duration", WEEK, end)) == [(z(2026, 11, 18, 10), z(2026, 11, 18, 11, 30))]
    assert spans(cal.windows("day", WEEK, end)) == [(z(2026, 11, 18, 23), z(2026, 11, 19, 23))]
    assert spans(cal.windows("aware", WEEK, end)) == [(z(2026, 11, 19, 9), z(2026, 11, 19, 10))]


def test_one_off_outside_horizon_is_absent() -> None:
    cal = build({"groups": {"g": "2027-05-01"}})
    assert cal.windows("g", WEEK, WEEK + timedelta(days=7)) == []
    assert cal.next_open("g", WEEK) is None


def test_per_window_timezone_overrides_default() -> None:
    cal = build(
        {
            "timezone": "America/New_York",
            "groups": {
                "a": "Sunday 01:00-03:00",
                "b": {"weekly": "Sunday 01:00-03:00", "timezone": "Asia/Tokyo"},
            },
        }
    )
    end = WEEK + timedelta(days=7)
    assert cal.windows("a", WEEK, end)[0].start == z(2026, 11, 22, 6)
    assert cal.windows("b", WEEK, end)[0].start == z(2026, 11, 21, 16)


def test_host_windows_intersection() -> None:
    cal = build(BRIEF | {"cutoff": "10m"})
    end = WEEK + timedelta(days=7)
    both = cal.host_windows(["web_servers", "cache_servers", "unwindowed"], WEEK, end)
    assert spans(both) == [(z(2026, 11, 22, 1), z(2026, 11, 22, 3))]
    assert both[0].cutoff_at == z(2026, 11, 22, 2, 50)
    assert both[0].label == "cache_servers ∩ web_servers"
    assert cal.host_windows(["web_servers", "db_servers"], WEEK, end) == []  # touching is not overlapping
    assert cal.host_key(["web_servers", "x", "cache_servers"]) == ("cache_servers", "web_servers")
    t = z(2026, 11, 22, 2)
    assert cal.host_is_open(["web_servers", "cache_servers"], t)
    assert not cal.host_is_open(["db_servers", "cache_servers"], t)
    assert cal.host_can_start(["cache_servers", "web_servers"], t)
    assert cal.host_current(["cache_servers"], t) == cal.current("cache_servers", t)
    assert cal.host_current(["db_servers"], t) is None
    assert cal.host_next_open(["db_servers", "cache_servers"], t) == z(2026, 11, 22, 3)
    assert cal.host_remaining(["web_servers", "cache_servers"], t) == Remaining(
        timedelta(minutes=50), timedelta(hours=1)
    )
    assert cal.host_windows(["web_servers"], WEEK, end) == cal.windows("web_servers", WEEK, end)


def test_cutoff_follows_a_shortened_intersection() -> None:
    cal = build(
        {"groups": {"a": {"weekly": "Sunday 01:00-05:00", "cutoff": "30m"}, "b": "Sunday 00:00-03:00"}}
    )
    (window,) = cal.host_windows(["a", "b"], WEEK, WEEK + timedelta(days=7))
    assert (window.start, window.end, window.cutoff_at) == (
        z(2026, 11, 22, 1),
        z(2026, 11, 22, 3),
        z(2026, 11, 22, 2, 30),
    )


def test_window_shorter_than_cutoff_admits_no_start() -> None:
    cal = build({"groups": {"g": {"weekly": "Sunday 01:00-01:20", "cutoff": "30m"}}})
    (window,) = cal.windows("g", WEEK, WEEK + timedelta(days=7))
    assert cal.is_open("g", z(2026, 11, 22, 1, 10))
    assert not window.can_start(window.start)
    assert not cal.can_start("g", window.start)
    assert cal.remaining("g", window.start) == Remaining(timedelta(0), timedelta(minutes=20))


def test_default_always_and_never() -> None:
    always = build(BRIEF | {"blackouts": ["2026-11-18"]})
    t = z(2026, 11, 17, 12)
    assert always.is_open("other", t)
    assert not always.is_windowed("other")
    assert not always.is_open("other", z(2026, 11, 18, 12))  # blackouts apply to everyone
    assert always.can_start("other", t)
    assert spans(always.host_windows(["other"], WEEK, WEEK + timedelta(days=1))) == [
        (WEEK, WEEK + timedelta(days=1))
    ]
    (w,) = always.host_windows([], t, t + timedelta(hours=1))
    assert (w.start, w.end, w.cutoff_at, w.label) == (
        t,
        t + timedelta(hours=1),
        t + timedelta(hours=1),
        "always",
    )
    never = build(BRIEF | {"default": "never"})
    assert not never.is_open("other", t)
    assert never.host_windows(["other"], WEEK, WEEK + timedelta(days=7)) == []
    assert never.next_open("other", t) is None


def test_accepts_model_instance() -> None:
    config = WindowsConfig.model_validate(BRIEF)
    assert Calendar.build(config, start=WEEK).groups == ["cache_servers", "db_servers", "web_servers"]
    assert load_windows(config) is config


# -- errors --------------------------------------------------------------------------------------


def error_of(config: dict[str, Any], **kw: Any) -> ConstraintError:
    with pytest.raises(ConstraintError) as info:
        build(config, location="maint.yaml", **kw)
    return info.value


@pytest.mark.parametrize(
    ("config", "needles"),
    [
        ({"groups": {"web": "Sundy 01:00-03:00"}}, ["maint.yaml: windows.groups.web[0]", "Sundy"]),
        ({"groups": {"web": "daily 25:00-26:00"}}, ["windows.groups.web[0]", "25:00"]),
        ({"groups": {"web": {"weekly": "Sun 01:00-02:00", "timezone": "Mars/Olympus"}}}, ["Mars/Olympus"]),
        ({"timezone": "Nowhere/Land", "groups": {}}, ["timezone", "Nowhere/Land"]),
        ({"groups": {"web": {"cron": "61 1 * * *", "duration": "1h"}}}, ["61 1 * * *"]),
        ({"groups": {"web": {"cron": "0 1 * * *"}}}, ["needs a positive duration"]),
        ({"groups": {"web": {"weekly": "Sun 01:00-02:00", "duration": "1h"}}}, ["duration belongs"]),
        ({"groups": {"web": {"start": "2026-11-20T10:00:00"}}}, ["needs both start and end"]),
        ({"groups": {"web": "2026-11-20T10:00:00/2026-11-20T09:00:00"}}, ["must end after it starts"]),
        ({"groups": {"web": "2026-11-20T10:00:00/Pxx"}}, ["not a duration: 'Pxx'"]),
        (
            {"groups": {"web": {"start": "2026-11-20T10:00:00Z", "end": "2026-11-20T11:00:00"}}},
            ["both have, or both lack"],
        ),
        (
            {"groups": {"web": {"weekly": "Sun 01:00-02:00", "cron": "0 1 * * *", "duration": 60}}},
            ["exactly one"],
        ),
    ],
)
def test_malformed_specs(config: dict[str, Any], needles: list[str]) -> None:
    message = str(error_of(config))
    for needle in needles:
        assert needle in message


def test_every_problem_is_reported() -> None:
    err = error_of({"groups": {"a": "Sundy 01:00-03:00", "b": "25:00-26:00"}})
    assert len(err.problems) == 2
    assert err.source == "maint.yaml"


def test_duration_longer_than_period() -> None:
    err = error_of({"groups": {"web": {"cron": "0 * * * *", "duration": "2h"}}})
    assert "longer than its period" in str(err)
    assert "maint.yaml: windows.groups.web[0]" in str(err)


def test_empty_after_blackouts() -> None:
    err = error_of(
        {"groups": {"web": ["daily 01:00-02:00", "Sunday 01:00-03:00"]}, "blackouts": ["Sun 00:00-12:00"]}
    )
    assert "'Sunday 01:00-03:00' is empty after blackouts" in str(err)
    assert "maint.yaml: windows.groups.web[1]" in str(err)


def test_unknown_group() -> None:
    err = error_of(BRIEF, known_groups={"web_servers", "db_servers"})
    assert "unknown group 'cache_servers'" in str(err)


def test_unknown_timezone_reaching_the_expander() -> None:
    config = WindowsConfig.model_validate(BRIEF).model_copy(update={"timezone": "Mars/Olympus"})
    with pytest.raises(ConstraintError, match="Mars/Olympus"):
        Calendar.build(config, start=WEEK)


def test_empty_horizon() -> None:
    with pytest.raises(ConstraintError, match="horizon is empty"):
        Calendar.build(BRIEF, start=WEEK, end=WEEK)


@pytest.mark.parametrize(
    ("expr", "count"),
    [("0 1 * * SUN", 4), ("30 22 * * 1-5", 20), ("0 3 1 * *", 1), ("0 2 * * 5#3", 1), ("0 0 * * *", 28)],
)
def test_cron_fires_match_croniter(expr: str, count: int) -> None:
    from croniter import croniter

    start = z(2026, 2, 1)
    cal = Calendar.build({"groups": {"g": {"cron": expr, "duration": "30m"}}}, start=start, end=z(2026, 3, 1))
    got = [w.start for w in cal.windows("g", start, z(2026, 3, 1))]
    it = croniter(expr, start.replace(tzinfo=None) - timedelta(seconds=1))
    expected = []
    while (t := it.get_next(datetime)) < datetime(2026, 3, 1):
        expected.append(t.replace(tzinfo=UTC))
    assert got == expected
    assert len(got) == count


def test_group_with_no_specs_is_never_open() -> None:
    cal = build({"groups": {"g": []}})
    assert cal.is_windowed("g")
    assert not cal.is_open("g", WEEK)
    assert cal.windows("g", WEEK, WEEK + timedelta(days=7)) == []


def test_interval_helpers_on_empty_sets() -> None:
    import numpy as np

    from sysflow.constraints.intervals import IntervalArrays, covered, intersect

    empty = IntervalArrays.empty()
    one = IntervalArrays.of(
        np.array([2.0, 0.0]), np.array([3.0, 1.0]), np.array([3.0, 1.0]), np.array([0, 1])
    )
    assert one.starts.tolist() == [0.0, 2.0]
    assert len(intersect(one, empty)) == 0
    assert covered(one.starts, one.ends, empty).tolist() == [False, False]
