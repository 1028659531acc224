"""Blackouts named by their source (what ``sysflow windows`` prints): a holiday's name, an
iCalendar event's summary (or its UID), an explicit date or interval, a recurring blackout's
reason or spec; only intervals meeting the span are listed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sysflow.constraints.window_view import named_blackouts

AMS = ZoneInfo("Europe/Amsterdam")


def test_each_blackout_named_by_its_source(tmp_path: Path) -> None:
    (tmp_path / "c.ics").write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//sysflow tests//EN\r\nBEGIN:VEVENT\r\nUID:no-summary@x\r\n"
        "DTSTAMP:20270101T000000Z\r\nDTSTART:20270426T080000Z\r\nDTEND:20270426T090000Z\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n"
    )
    config = {
        "timezone": "Europe/Amsterdam",
        "blackouts": [
            {"holidays": "NL"},
            {"ical": str(tmp_path / "c.ics"), "reason": "vendor change calendar"},
            "2027-04-28T10:00/2027-04-28T12:00",
            {"weekly": "Sun 00:00-06:00", "reason": "backups"},
            {"cron": "0 3 * * *", "duration": "30m"},
        ],
    }
    begin, end = datetime(2027, 4, 25, 22, tzinfo=UTC), datetime(2027, 4, 27, 22, tzinfo=UTC)  # 26-27 local
    found = [(b.start.astimezone(AMS), b.name, b.source) for b in named_blackouts(config, begin, end)]
    assert found == [
        (datetime(2027, 4, 26, 3, tzinfo=AMS), "cron '0 3 * * *' for 1800s", "cron '0 3 * * *' for 1800s"),
        (
            datetime(2027, 4, 26, 10, tzinfo=AMS),
            "no-summary@x",
            f"iCalendar {tmp_path / 'c.ics'} (vendor change calendar)",
        ),
        (datetime(2027, 4, 27, 0, tzinfo=AMS), "King's Day", "holidays NL"),
        (datetime(2027, 4, 27, 3, tzinfo=AMS), "cron '0 3 * * *' for 1800s", "cron '0 3 * * *' for 1800s"),
    ]  # the Sunday (25th) and the interval on the 28th are outside the span
    wider = named_blackouts(config, begin, datetime(2027, 4, 29, tzinfo=UTC))
    (interval,) = [b for b in wider if b.source == "explicit interval"]
    assert interval.name == "2027-04-28T10:00:00/2027-04-28T12:00:00"
    assert interval.start == datetime(2027, 4, 28, 10, tzinfo=AMS)
