"""Exported systemd units pass ``systemd-analyze verify`` and fire when the schedule does."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sysflow.engine.store import RunStore
from sysflow.errors import ConstraintError
from sysflow.schedule.model import MissedPolicy, ScheduleSpec
from sysflow.schedule.recurrence import Recurrence, occurrences
from sysflow.schedule.schedules import Schedules
from sysflow.schedule.systemd import cron_to_calendar, export_systemd, on_calendar
from tests.schedule.conftest import AMSTERDAM, small_inventory, small_workflow

NEW_YEAR = datetime(2026, 1, 1, tzinfo=UTC)
YEAR_END = datetime(2027, 1, 1, tzinfo=UTC)
SPRING_GAP_0230 = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # Sunday 02:30 Amsterdam does not exist
_ELAPSE = re.compile(r"(?:Next elapse|Iter\. #\d+): \w+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC")


def systemd_elapses(expr: str, count: int) -> list[datetime]:
    """What systemd computes for ``expr`` from 2026-01-01 (``systemd-analyze calendar``)."""
    out = subprocess.run(
        ["systemd-analyze", "calendar", "--base-time=2026-01-01 00:00:00 UTC", f"--iterations={count}", expr],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return [datetime.fromisoformat(t).replace(tzinfo=UTC) for t in _ELAPSE.findall(out)]


def add_all(store: RunStore) -> Schedules:
    schedules = Schedules(store)
    wf, inv = small_workflow(), small_inventory()
    for name, when, policy in [
        ("web-first", "first sunday window of web_servers", MissedPolicy.CATCH_UP),
        ("db-last", "last sunday window of db_servers", MissedPolicy.RUN_NEXT_WINDOW),
        ("web-every", "every window of web_servers", MissedPolicy.SKIP),
    ]:
        schedules.add(
            ScheduleSpec(name=name, recurrence=Recurrence.parse(when), missed=policy), wf, inv, now=NEW_YEAR
        )
    cron = Recurrence.parse('cron "30 2 * * MON-FRI"', timezone=AMSTERDAM)
    schedules.add(ScheduleSpec(name="nightly", recurrence=cron), wf, inv, now=NEW_YEAR)
    return schedules


def test_exported_units_pass_systemd_analyze_verify(store: RunStore, tmp_path: Path) -> None:
    schedules = add_all(store)
    command = [sys.executable, "-m", "sysflow.cli"]
    paths = export_systemd(schedules.list(), tmp_path / "units", state=tmp_path / "state.db", command=command)
    assert len(paths) == 8
    done = subprocess.run(
        ["systemd-analyze", "verify", *map(str, paths)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "sysflow-schedule" not in done.stderr
    timer = (tmp_path / "units" / "sysflow-schedule-db-last.timer").read_text()
    assert "Persistent=true" in timer and "OnCalendar=Sun *-*~07/1 03:00:00 Europe/Amsterdam" in timer
    assert "OnCalendar=Sun *-*-* 03:00:00 Europe/Amsterdam" in timer  # the next window, for a postponed run
    assert "Persistent=false" in (tmp_path / "units" / "sysflow-schedule-web-every.timer").read_text()
    service = (tmp_path / "units" / "sysflow-schedule-web-first.service").read_text()
    assert "scheduler --once --schedule web-first --state" in service and "Type=oneshot" in service


@pytest.mark.parametrize(
    ("when", "timezone"),
    [
        ("first sunday window of web_servers", "UTC"),
        ("last sunday window of db_servers", "UTC"),
        ("second saturday window of web_servers", "UTC"),
        ('cron "0 1 1 * *"', AMSTERDAM),
        ('cron "30 2 * * SUN"', AMSTERDAM),
        ('cron "*/30 4 * 3,10 0-1"', AMSTERDAM),
    ],
)
def test_timers_fire_at_the_schedule_occurrences_across_dst(when: str, timezone: str) -> None:
    rec = Recurrence.parse(when, timezone=timezone)
    wf = small_workflow()
    if rec.weekday == "saturday":
        wf.set_maintenance_window({"timezone": AMSTERDAM, "groups": {"web_servers": "Sat,Sun 22:00-02:00"}})
    ours = occurrences(rec, wf.windows, NEW_YEAR, YEAR_END)
    (expr,) = on_calendar(rec, wf.windows)
    theirs = [t for t in systemd_elapses(expr, len(ours) + 1) if t <= YEAR_END]
    assert theirs == [t for t in ours if not in_spring_gap(t, rec)]


def in_spring_gap(t: datetime, rec: Recurrence) -> bool:
    """A cron wall time that does not exist: we fire after the gap (as the calendar does), systemd skips it."""
    return rec.cron is not None and rec.timezone == AMSTERDAM and t == SPRING_GAP_0230


def test_systemd_skips_a_wall_time_in_the_spring_gap_and_we_do_not() -> None:
    rec = Recurrence.parse('cron "30 2 * * SUN"', timezone=AMSTERDAM)
    ours = occurrences(rec, small_workflow().windows, NEW_YEAR, YEAR_END)
    assert SPRING_GAP_0230 in ours  # 02:30 CET that never was -> 03:30 CEST, like the constraints layer
    assert SPRING_GAP_0230 not in systemd_elapses(on_calendar(rec, small_workflow().windows)[0], 20)


def test_cron_conversion() -> None:
    assert cron_to_calendar("0 2 * * SUN", "UTC") == "Sun *-*-* 2:0:0 UTC"
    assert cron_to_calendar("*/15 1-3 1,15 * *", "UTC") == "*-*-1,15 1..3:0/15:0 UTC"
    assert cron_to_calendar("0 0 * * 1-5 30", "UTC") == "Mon..Fri *-*-* 0:0:30 UTC"
    assert cron_to_calendar("5/10 * * * *", "UTC") == "*-*-* *:5/10:0 UTC"
    for bad in ("0 2 1 * SUN", "0 2 L * *", "0 2 * * SUN#1", "1-5/2 * * * *", "0 2 * *", "0 2 * * 1/2"):
        with pytest.raises(ConstraintError):
            cron_to_calendar(bad, "UTC")


def test_window_forms_cron_and_one_off() -> None:
    wf = small_workflow()
    wf.set_maintenance_window(
        {
            "groups": {
                "web_servers": [{"cron": "0 1 * * SAT", "duration": "2h", "timezone": AMSTERDAM}],
                "db_servers": ["2026-03-01T01:00:00+01:00/PT2H", "2026-04-01T02:00/PT1H"],
            }
        }
    )
    assert on_calendar(Recurrence(group="web_servers"), wf.windows) == ["Sat *-*-* 1:0:0 Europe/Amsterdam"]
    assert on_calendar(Recurrence(group="db_servers"), wf.windows) == [
        "2026-03-01 00:00:00 UTC",
        "2026-04-01 02:00:00 UTC",
    ]
    with pytest.raises(ConstraintError):
        on_calendar(Recurrence(group="nobody"), wf.windows)
    assert on_calendar(
        Recurrence(group="web_servers", nth="first", weekday="sunday"), small_workflow().windows
    ) == ["Sun *-*-01..07 01:00:00 Europe/Amsterdam"]
    assert (
        on_calendar(Recurrence(group="web_servers", nth="first", weekday="monday"), small_workflow().windows)
        == []
    )
