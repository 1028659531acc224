"""Patch schedules on the one window system: SSM-style cron (``#n``, ``L``) with a day offset
("Patch Tuesday + N") including offsets that cross a month end and a daylight-saving night, and
blackouts from public holidays and a recurring iCalendar freeze subtracted from the windows; every
expected date is computed here independently (calendar arithmetic, zoneinfo)."""

from __future__ import annotations

import calendar as cal
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from sysflow.constraints.calendar import Calendar
from sysflow.model.windows import WindowSpec

AMS = ZoneInfo("Europe/Amsterdam")


def nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    days = [
        d for d in range(1, cal.monthrange(year, month)[1] + 1) if date(year, month, d).weekday() == weekday
    ]
    return date(year, month, days[n - 1])


def starts(config: dict[str, object], begin: datetime, end: datetime) -> list[datetime]:
    built = Calendar.build(config, start=begin, end=end)
    return [w.start.astimezone(AMS) for w in built.windows("web", begin, end)]


def test_second_tuesday_plus_two() -> None:
    config = {
        "timezone": "Europe/Amsterdam",
        "groups": {"web": {"cron": "0 22 * * TUE#2", "duration": "4h", "offset_days": 2}},
    }
    begin, end = datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 12, 31, tzinfo=UTC)
    found = starts(config, begin, end)
    expected = [nth_weekday(2027, m, 1, 2) + timedelta(days=2) for m in range(1, 13)]
    assert [w.date() for w in found] == expected and all(w.hour == 22 for w in found)
    assert (
        WindowSpec.model_validate(config["groups"]["web"]).describe()
        == "cron '0 22 * * TUE#2' + 2 days for 14400s"
    )  # type: ignore[index]


def test_offsets_crossing_a_month_end_and_last_day() -> None:
    config = {
        "timezone": "Europe/Amsterdam",
        "groups": {"web": {"cron": "0 22 * * TUE#4", "duration": "2h", "offset_days": 7}},
    }
    begin, end = datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 12, 31, tzinfo=UTC)
    expected = [nth_weekday(2027, m, 1, 4) + timedelta(days=7) for m in range(1, 13)][:-1]  # Dec's: 2028
    assert [w.date() for w in starts(config, begin, end)] == expected
    assert any(d.month != (d - timedelta(days=7)).month for d in expected)  # some land in the next month
    last = {
        "timezone": "Europe/Amsterdam",
        "groups": {"web": {"cron": "0 23 L * *", "duration": "1h", "offset_days": 1}},
    }
    firsts = [w.date() for w in starts(last, begin, end)]
    assert firsts == [date(2027, m, 1) for m in range(1, 13)]  # the day after each month's last day


def test_dst_night() -> None:
    # the fourth Friday of March 2027 + 2 is Sunday 28 March, when Amsterdam moves to summer time
    config = {
        "timezone": "Europe/Amsterdam",
        "groups": {"web": {"cron": "30 1 * * FRI#4", "duration": "2h", "offset_days": 2}},
    }
    begin, end = datetime(2027, 3, 1, tzinfo=UTC), datetime(2027, 4, 1, tzinfo=UTC)
    built = Calendar.build(config, start=begin, end=end)
    (window,) = built.windows("web", begin, end)
    opens = datetime(2027, 3, 28, 1, 30, tzinfo=AMS)
    assert window.start == opens.astimezone(UTC) and window.end - window.start == timedelta(hours=2)
    assert window.end.astimezone(AMS).hour == 4  # 02:30 UTC is 04:30 summer time


def test_holiday_blackout() -> None:
    config = {
        "timezone": "Europe/Amsterdam",
        "groups": {"web": "daily 22:00-23:00"},
        "blackouts": [{"holidays": "NL"}],
    }
    begin, end = datetime(2027, 4, 20, tzinfo=UTC), datetime(2027, 5, 2, tzinfo=UTC)
    days = {w.date() for w in starts(config, begin, end)}
    assert date(2027, 4, 27) not in days  # King's Day (27 April, a Tuesday in 2027)
    assert {date(2027, 4, 26), date(2027, 4, 28)} <= days


def test_recurring_ical_freeze(tmp_path: Path) -> None:
    ics = tmp_path / "freeze.ics"
    ics.write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//sysflow tests//EN\r\nBEGIN:VEVENT\r\nUID:freeze@sysflow\r\n"
        "DTSTAMP:20270101T000000Z\r\nDTSTART;VALUE=DATE:20270101\r\nDTEND;VALUE=DATE:20270102\r\n"
        "RRULE:FREQ=WEEKLY;BYDAY=FR\r\nSUMMARY:Friday freeze\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    config = {
        "timezone": "Europe/Amsterdam",
        "groups": {"web": "daily 22:00-23:00"},
        "blackouts": [{"ical": str(ics)}],
    }
    begin, end = datetime(2027, 6, 1, tzinfo=UTC), datetime(2027, 7, 1, tzinfo=UTC)
    days = [w.date() for w in starts(config, begin, end)]
    fridays = [date(2027, 6, d) for d in range(1, 31) if date(2027, 6, d).weekday() == 4]
    assert not set(days) & set(fridays)
    assert len(days) == 30 - len(fridays)


def test_offset_only_on_cron() -> None:
    with pytest.raises(ValueError, match="offset_days belongs to a cron window"):
        WindowSpec.model_validate({"weekly": "Sun 01:00-03:00", "offset_days": 2})


def test_ical_from_a_url_with_timed_events(tmp_path: Path) -> None:
    import functools
    import http.server
    import threading

    (tmp_path / "change.ics").write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//sysflow tests//EN\r\nBEGIN:VEVENT\r\nUID:c1@sysflow\r\n"
        "DTSTAMP:20270101T000000Z\r\nDTSTART:20270607T210000Z\r\nDTEND:20270607T220000Z\r\n"
        "SUMMARY:freeze (UTC)\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:c2@sysflow\r\nDTSTAMP:20270101T000000Z\r\n"
        "DTSTART:20270608T220000\r\nDTEND:20270608T230000\r\nSUMMARY:freeze (local)\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/change.ics"
        config = {
            "timezone": "Europe/Amsterdam",
            "groups": {"web": "daily 22:00-23:00"},
            "blackouts": [{"ical": url}],
        }
        days = [
            w.date()
            for w in starts(config, datetime(2027, 6, 6, tzinfo=UTC), datetime(2027, 6, 10, tzinfo=UTC))
        ]
    finally:
        server.shutdown()
        server.server_close()
    # 21:00-22:00 UTC on the 7th is 23:00-24:00 local: after the 22:00-23:00 window, which stays;
    # 22:00-23:00 local (floating time) on the 8th covers that day's window
    assert date(2027, 6, 7) in days and date(2027, 6, 8) not in days and date(2027, 6, 9) in days


def test_patch_windows_command_shows_windows_after_blackouts(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "w.yaml").write_text(
        "windows:\n  timezone: Europe/Amsterdam\n  groups:\n    db: daily 22:00-23:00\n"
        "  blackouts:\n    - {holidays: NL, reason: public holidays}\n"
    )
    argv = [
        sys.executable,
        "-m",
        "sysflow",
        "patch",
        "windows",
        str(tmp_path / "w.yaml"),
        "--start",
        "2027-04-26",
        "--days",
        "3",
    ]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "  Mon 2027-04-26 22:00 - 23:00" in lines and "  Wed 2027-04-28 22:00 - 23:00" in lines
    # King's Day: the window's hour named as removed, the day listed among the blackouts
    assert "  removed Tue 2027-04-27 22:00 - 23:00  King's Day  [holidays NL (public holidays)]" in lines
    assert (
        "  Tue 2027-04-27 00:00 - Wed 2027-04-28 00:00  King's Day  [holidays NL (public holidays)]" in lines
    )
    assert not any(line.startswith("  Tue 2027-04-27") and "removed" not in line for line in lines[:-2])


def last_weekday(year: int, month: int, weekday: int) -> date:
    last = date(year, month, cal.monthrange(year, month)[1])
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def test_second_tuesday_plus_an_offset_into_the_next_month_and_last_friday() -> None:
    config = {
        "timezone": "Europe/Amsterdam",
        "groups": {"web": {"cron": "0 22 * * TUE#2", "duration": "2h", "offset_days": 20}},
    }
    begin, end = datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 12, 31, tzinfo=UTC)
    expected = [nth_weekday(2027, m, 1, 2) + timedelta(days=20) for m in range(1, 13)]
    expected = [d for d in expected if d < date(2027, 12, 31)]
    assert [w.date() for w in starts(config, begin, end)] == expected
    crossing = [d for d in expected if d.month != (d - timedelta(days=20)).month]
    # by hand: second Tuesdays on the 12th (Jan), 9th (Feb), 13th (Apr), 13th (Jul), 14th (Sep), 12th (Oct)
    assert crossing == [date(2027, m, d) for m, d in ((2, 1), (3, 1), (5, 3), (8, 2), (10, 4), (11, 1))]
    last_friday = {
        "timezone": "Europe/Amsterdam",
        "groups": {"web": {"cron": "0 21 * * 5L", "duration": "3h", "offset_days": 3}},
    }
    mondays = [last_weekday(2027, m, 4) + timedelta(days=3) for m in range(1, 12)]
    assert [w.date() for w in starts(last_friday, begin, end)] == mondays
    assert any(d.month != (d - timedelta(days=3)).month for d in mondays)


def test_fall_back_night() -> None:
    # the fifth Friday of October 2027 + 2 is Sunday 31 October: 02:30 happens twice in Amsterdam
    # (summer time ends at 03:00 CEST); the window opens at the first 02:30 and lasts 2 real hours
    config = {
        "timezone": "Europe/Amsterdam",
        "groups": {"web": {"cron": "30 2 * * FRI#5", "duration": "2h", "offset_days": 2}},
    }
    begin, end = datetime(2027, 10, 1, tzinfo=UTC), datetime(2027, 11, 15, tzinfo=UTC)
    built = Calendar.build(config, start=begin, end=end)
    (window,) = built.windows("web", begin, end)
    first = datetime(2027, 10, 31, 2, 30, tzinfo=AMS)  # fold=0: the CEST one
    assert first.utcoffset() == timedelta(hours=2)
    assert window.start == first.astimezone(UTC) == datetime(2027, 10, 31, 0, 30, tzinfo=UTC)
    assert window.end == datetime(2027, 10, 31, 2, 30, tzinfo=UTC)
    assert window.end.astimezone(AMS).strftime("%H:%M %Z") == "03:30 CET"


def test_ssm_last_weekday_forms() -> None:
    from sysflow.model.cron import croniter, ssm_form

    assert ssm_form("0 21 * * 5L") == ssm_form("0 21 * * FRIL") == "0 21 * * L5"
    assert ssm_form("0 3 * * 7L,MON") == "0 3 * * L0,MON" and ssm_form("0 23 L * *") == "0 23 L * *"
    assert croniter.is_valid("0 21 * * FRIL") and not croniter.is_valid("0 21 * * XYZL")
    fire = croniter("0 21 * * sunL", datetime(2027, 3, 1)).get_next(datetime)
    assert fire == datetime(2027, 3, 28, 21, 0)  # the last Sunday of March 2027
    assert WindowSpec.model_validate({"cron": "0 21 * * 5L", "duration": "1h"}).cron == "0 21 * * 5L"
