"""Recurrences: the three forms, their text, and occurrences across DST and blackouts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from sysflow.errors import ConstraintError
from sysflow.model.windows import WindowsConfig
from sysflow.schedule.recurrence import Recurrence, RecurrenceKind, occurrences

JAN = datetime(2026, 1, 1, tzinfo=UTC)
WINDOWS = WindowsConfig.model_validate(
    {
        "timezone": "Europe/Amsterdam",
        "groups": {
            "web": "Sunday 01:00-03:00",
            "db": {"weekly": "Sat 23:00-01:00", "timezone": "America/New_York"},
        },
        "blackouts": [{"start": "2026-03-01T00:00:00+01:00", "end": "2026-03-02T00:00:00+01:00"}],
    }
)


def test_text_forms() -> None:
    assert Recurrence.parse('cron "0 2 * * SUN"', timezone="Europe/Amsterdam").kind is RecurrenceKind.CRON
    assert Recurrence.parse("cron 0 2 * * *").cron == "0 2 * * *"
    r = Recurrence.parse("Last Sunday window of web")
    assert (r.kind, r.nth, r.weekday, r.group) == (RecurrenceKind.NTH_WINDOW, "last", "sunday", "web")
    assert Recurrence.parse("every window of web").kind is RecurrenceKind.EVERY_WINDOW
    assert Recurrence.parse("every window of web").describe() == "every window of web"
    assert r.describe() == "last sunday window of web"
    assert Recurrence.parse('cron "0 2 * * *"').describe() == 'cron "0 2 * * *" (UTC)'


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"cron": "0 2 * * *", "group": "web"},
        {"cron": "not a cron"},
        {"group": "web", "nth": "first"},
        {"group": "web", "nth": "first", "weekday": "funday"},
        {"cron": "0 2 * * *", "timezone": "Mars/Olympus"},
    ],
)
def test_invalid_recurrences(kw: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        Recurrence(**kw)


def test_unreadable_text() -> None:
    with pytest.raises(ValueError, match="cannot read recurrence"):
        Recurrence.parse("now and then")


def test_blackouts_remove_a_first_sunday_and_the_first_becomes_the_next_one() -> None:
    found = occurrences(
        Recurrence.parse("first sunday window of web"), WINDOWS, JAN, JAN + timedelta(days=90)
    )
    assert datetime(2026, 3, 1, 0, tzinfo=UTC) not in found  # blacked out
    assert datetime(2026, 3, 8, 0, tzinfo=UTC) in found  # the month's first Sunday window is now the 8th


def test_windows_in_their_own_zone_and_weekday() -> None:
    """db opens Saturday 23:00 New York: Sunday in UTC, but counted as a Saturday window."""
    found = occurrences(
        Recurrence.parse("second saturday window of db"), WINDOWS, JAN, JAN + timedelta(days=60)
    )
    assert found == [datetime(2026, 1, 11, 4, tzinfo=UTC), datetime(2026, 2, 15, 4, tzinfo=UTC)]
    assert (
        occurrences(Recurrence.parse("first sunday window of db"), WINDOWS, JAN, JAN + timedelta(days=60))
        == []
    )


def test_unknown_group_empty_span_and_fall_back_night() -> None:
    with pytest.raises(ConstraintError, match="nobody"):
        occurrences(Recurrence(group="nobody"), WINDOWS, JAN, JAN + timedelta(days=1))
    assert occurrences(Recurrence(group="web"), WINDOWS, JAN, JAN) == []
    fall = occurrences(
        Recurrence(cron="30 2 * * *", timezone="Europe/Amsterdam"),
        WINDOWS,
        datetime(2026, 10, 24, tzinfo=UTC),
        datetime(2026, 10, 27, tzinfo=UTC),
    )
    assert fall == [  # 02:30 happens twice on Oct 25: the run fires once, at the first
        datetime(2026, 10, 24, 0, 30, tzinfo=UTC),
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        datetime(2026, 10, 26, 1, 30, tzinfo=UTC),
    ]
