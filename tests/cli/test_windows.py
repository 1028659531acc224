"""``sysflow windows`` (and ``sysflow patch windows``, the same command) through the real CLI app:
a workflow with a daily window, a "second Tuesday + 2" cron window, Dutch public holidays, a
weekly iCalendar freeze and an explicit date; every expected date is computed here independently
(Easter by dateutil, King's Day by its rule, Fridays by weekday), never by the holidays package."""

from __future__ import annotations

import calendar as cal
import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.easter import easter
from typer.testing import CliRunner

from sysflow.cli import app

AMS = ZoneInfo("Europe/Amsterdam")
runner = CliRunner()
FIRST, DAYS = date(2027, 4, 1), 61  # April and May 2027

ICS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//sysflow tests//EN\r\nBEGIN:VEVENT\r\nUID:freeze@sysflow\r\n"
    "DTSTAMP:20270101T000000Z\r\nDTSTART;VALUE=DATE:20270101\r\nDTEND;VALUE=DATE:20270102\r\n"
    "RRULE:FREQ=WEEKLY;BYDAY=FR\r\nSUMMARY:Friday change freeze\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def dutch_holidays(year: int) -> dict[date, str]:
    """The Dutch public holidays that fall in spring, by their own rules."""
    e = easter(year)
    kings = date(year, 4, 27)
    if kings.weekday() == 6:  # on a Sunday it moves to Saturday the 26th
        kings = date(year, 4, 26)
    found = {kings: "King's Day", e + timedelta(days=39): "Ascension Day"}
    found |= {e + timedelta(days=49): "Pentecost", e + timedelta(days=50): "Pentecost Monday"}
    if year % 5 == 0:  # Liberation Day is a public holiday every fifth year
        found[date(year, 5, 5)] = "Liberation Day"
    return found


def second_tuesday(year: int, month: int) -> date:
    tuesdays = [
        d for d in range(1, cal.monthrange(year, month)[1] + 1) if date(year, month, d).weekday() == 1
    ]
    return date(year, month, tuesdays[1])


def files(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "freeze.ics").write_text(ICS)
    wf = tmp_path / "patching.yaml"
    wf.write_text(
        "name: patching\ntasks:\n  - {id: patch, command: 'true'}\nwindows:\n  timezone: Europe/Amsterdam\n"
        "  groups:\n    web: daily 22:00-23:00\n"
        '    db: {cron: "0 22 * * TUE#2", duration: 4h, offset_days: 2}\n'
        "  blackouts:\n    - {holidays: NL, reason: public holidays}\n"
        f"    - {{ical: {tmp_path / 'freeze.ics'}}}\n"
        '    - "2027-04-15"\n'
    )
    inv = tmp_path / "hosts.ini"
    inv.write_text("[web]\nw1\nw2\nw3\n[db]\nd1\n[batch]\nb1\n")
    return wf, inv


def run_json(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, [*args, "--from", FIRST.isoformat(), "--days", str(DAYS), "--json"])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.output)
    return data


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(AMS)


def test_windows_with_holidays_and_a_recurring_ical_freeze(tmp_path: Path) -> None:
    wf, inv = files(tmp_path)
    data = run_json("windows", str(wf), "-i", str(inv))
    groups = {g["group"]: g for g in data["groups"]}
    assert set(groups) == {"web", "db"} and groups["web"]["hosts"] == 3 and data["other_hosts"] == 1
    days = [FIRST + timedelta(days=i) for i in range(DAYS)]
    holidays = {d: n for d, n in dutch_holidays(2027).items() if d in days}
    fridays = {d for d in days if d.weekday() == 4}
    explicit = date(2027, 4, 15)
    assert set(holidays) == {date(2027, 4, 27), date(2027, 5, 6), date(2027, 5, 16), date(2027, 5, 17)}

    # web: every evening 22:00-23:00 except the blacked-out days, each removal named by its source
    web = [local(w["start"]) for w in groups["web"]["windows"]]
    assert [w.date() for w in web] == [
        d for d in days if d not in holidays and d not in fridays and d != explicit
    ]
    assert all((w.hour, w.minute) == (22, 0) for w in web)
    removed = {(local(r["start"]).date(), r["name"], r["source"]) for r in groups["web"]["removed"]}
    expected = {(d, n, "holidays NL (public holidays)") for d, n in holidays.items()}
    expected |= {(d, "Friday change freeze", f"iCalendar {tmp_path / 'freeze.ics'}") for d in fridays}
    expected |= {(explicit, "2027-04-15", "explicit date")}
    assert removed == expected

    # db: second Tuesday + 2 at 22:00 for 4 h; April's (Thursday 15th, then Friday) is removed by the
    # explicit date and by the freeze; May's keeps its Thursday part, the freeze takes its Friday part
    april, may = (second_tuesday(2027, m) + timedelta(days=2) for m in (4, 5))
    assert april == explicit and may == date(2027, 5, 13)
    (window,) = groups["db"]["windows"]
    assert (local(window["start"]), local(window["end"])) == (
        datetime(2027, 5, 13, 22, tzinfo=AMS),
        datetime(2027, 5, 14, 0, tzinfo=AMS),
    )
    db_removed = [(local(r["start"]), local(r["end"]), r["name"]) for r in groups["db"]["removed"]]
    assert db_removed == [
        (datetime(2027, 4, 15, 22, tzinfo=AMS), datetime(2027, 4, 16, 0, tzinfo=AMS), "2027-04-15"),
        (datetime(2027, 4, 16, 0, tzinfo=AMS), datetime(2027, 4, 16, 2, tzinfo=AMS), "Friday change freeze"),
        (datetime(2027, 5, 14, 0, tzinfo=AMS), datetime(2027, 5, 14, 2, tzinfo=AMS), "Friday change freeze"),
    ]
    # every blackout met in the span, each a whole local day
    listed = sorted((local(b["start"]), b["name"]) for b in data["blackouts"])
    assert listed == sorted(
        [(datetime.combine(d, datetime.min.time(), AMS), n) for d, n in holidays.items()]
        + [(datetime.combine(d, datetime.min.time(), AMS), "Friday change freeze") for d in fridays]
        + [(datetime(2027, 4, 15, tzinfo=AMS), "2027-04-15")]
    )


def test_text_form_patch_windows_is_the_same_command_and_errors(tmp_path: Path) -> None:
    wf, inv = files(tmp_path)
    args = [str(wf), "-i", str(inv), "--from", "2027-04-26", "--days", "3"]
    text = runner.invoke(app, ["windows", *args])
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert lines[0] == "windows 2027-04-26 .. 2027-04-28 (Europe/Amsterdam), blackouts removed"
    assert "web (3 hosts):" in lines and "  Mon 2027-04-26 22:00 - 23:00" in lines
    assert "  removed Tue 2027-04-27 22:00 - 23:00  King's Day  [holidays NL (public holidays)]" in lines
    assert "other hosts (1): always open outside blackouts (windows.default: always)" in lines
    assert (
        "  Tue 2027-04-27 00:00 - Wed 2027-04-28 00:00  King's Day  [holidays NL (public holidays)]" in lines
    )
    same = runner.invoke(app, ["patch", "windows", *args])
    assert same.exit_code == 0 and same.output == text.output
    in_utc = runner.invoke(app, ["windows", *args, "--tz", "UTC"])
    assert "  Mon 2027-04-26 20:00 - 21:00" in in_utc.output.splitlines()  # 22:00 CEST
    inv.write_text("[web]\nw1\n")
    unknown = runner.invoke(app, ["windows", *args])
    assert unknown.exit_code != 0 and "unknown group 'db'" in unknown.output
