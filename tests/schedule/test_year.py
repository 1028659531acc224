"""A monthly schedule over a simulated year starts exactly the expected runs, across DST changes."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sysflow.audit.log import AuditLog
from sysflow.clock import utc
from sysflow.engine.states import RunStatus
from sysflow.engine.store import RunStore
from sysflow.schedule.model import ClaimState, MissedPolicy, ScheduleSpec
from sysflow.schedule.recurrence import Recurrence
from sysflow.schedule.scheduler import Scheduler, run_id_for
from sysflow.schedule.schedules import Schedules
from sysflow.sim.loop import current_virtual_clock
from tests.schedule.conftest import AMSTERDAM, sim_factory, small_inventory, small_workflow

TZ = ZoneInfo(AMSTERDAM)


def first_sundays_0100(year_months: list[tuple[int, int]]) -> list[datetime]:
    """01:00 Amsterdam wall time on the first Sunday of each month, as UTC."""
    out = []
    for y, m in year_months:
        d = datetime(y, m, 1, 1, 0, tzinfo=TZ)
        while d.weekday() != 6:
            d += timedelta(days=1)
        out.append(utc(d))
    return out


async def test_monthly_schedule_over_a_year_across_dst(store: RunStore, tmp_path: Path) -> None:
    clock = current_virtual_clock()
    start = clock.now()  # 2026-01-04 00:00 UTC: a first-Sunday window opens right now (not after)
    schedules = Schedules(store)
    spec = ScheduleSpec(name="web-monthly", recurrence=Recurrence.parse("first sunday window of web_servers"))
    schedules.add(spec, small_workflow(), small_inventory(), now=start)
    audit = AuditLog(tmp_path / "audit.db")
    scheduler = Scheduler(
        store, clock=clock, engine_factory=sim_factory(store, clock, start), audit=audit, poll=86400.0
    )
    await scheduler.run(until=start + timedelta(days=365))

    expected = first_sundays_0100([(2026, m) for m in range(2, 13)] + [(2027, 1)])
    claims = schedules.claims("web-monthly")
    assert [c.occurrence for c in claims] == expected
    assert all(c.state is ClaimState.FINISHED for c in claims)
    started = {rid: r.started for rid, r in scheduler.results.items()}
    assert sorted(started) == sorted(run_id_for("web-monthly", o) for o in expected)
    for o in expected:  # each run started at its window's opening instant: 01:00 local, CET or CEST
        assert started[run_id_for("web-monthly", o)] == o
        assert o.astimezone(TZ).hour == 1
    offsets = {o.astimezone(TZ).utcoffset() for o in expected}
    assert offsets == {timedelta(hours=1), timedelta(hours=2)}  # both sides of DST were crossed
    assert all(store.run(run_id_for("web-monthly", o)).status is RunStatus.COMPLETED for o in expected)

    events = [h.event for h in schedules.history("web-monthly")]
    assert events.count("started") == 12 and events.count("finished") == 12 and events.count("forecast") == 12
    records = list(audit.records())
    starts = [r for r in records if r.action == "schedule.start"]
    assert len(starts) == 12 and all("schedule web-monthly" in r.detail for r in starts)
    assert audit.verify() is None
    audit.close()


async def test_cron_schedule_keeps_local_wall_time_across_dst(store: RunStore) -> None:
    clock = current_virtual_clock()
    start = clock.now()
    schedules = Schedules(store)
    rec = Recurrence.parse('cron "0 1 * * SUN"', timezone=AMSTERDAM)
    spec = ScheduleSpec(name="weekly", recurrence=rec, missed=MissedPolicy.SKIP)
    schedules.add(spec, small_workflow(), small_inventory(), now=start)
    scheduler = Scheduler(
        store, clock=clock, engine_factory=sim_factory(store, clock, start), poll=86400.0, forecast=False
    )
    await scheduler.run(until=start + timedelta(days=7 * 52, hours=1))
    claims = schedules.claims("weekly")
    assert len(claims) == 52
    assert {c.occurrence.astimezone(TZ).strftime("%a %H:%M") for c in claims} == {"Sun 01:00"}
    assert all(c.state is ClaimState.FINISHED for c in claims)
