"""A scheduler down for two weeks applies each missed-run policy as documented."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sysflow.engine.store import RunStore
from sysflow.schedule.model import ClaimState, MissedPolicy, ScheduleSpec
from sysflow.schedule.recurrence import Recurrence
from sysflow.schedule.scheduler import Scheduler, run_id_for
from sysflow.schedule.schedules import Schedules
from sysflow.sim.loop import current_virtual_clock
from tests.schedule.conftest import sim_factory, small_inventory, small_workflow

FEB_1 = datetime(2026, 2, 1, 0, 0, tzinfo=UTC)  # first Sunday of February, 01:00 Amsterdam
FEB_15 = datetime(2026, 2, 15, 0, 0, tzinfo=UTC)  # the next web window after the restart
MAR_1 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)


async def down_for_two_weeks(store: RunStore, policy: MissedPolicy) -> tuple[Schedules, Scheduler, datetime]:
    """Up from Jan 20 to Jan 26, down until Feb 9 12:00 (Feb 1 passes), up again until Mar 2."""
    clock = current_virtual_clock()
    await clock.sleep((datetime(2026, 1, 20, tzinfo=UTC) - clock.now()).total_seconds())
    schedules = Schedules(store)
    spec = ScheduleSpec(
        name="monthly", recurrence=Recurrence.parse("first sunday window of web_servers"), missed=policy
    )
    schedules.add(spec, small_workflow(), small_inventory(), now=clock.now())
    factory = sim_factory(store, clock, clock.now())
    first = Scheduler(store, clock=clock, engine_factory=factory, poll=86400.0, forecast=False, owner="a")
    await first.run(until=datetime(2026, 1, 26, tzinfo=UTC))
    await clock.sleep((datetime(2026, 2, 9, 12, tzinfo=UTC) - clock.now()).total_seconds())
    restart = clock.now()
    second = Scheduler(store, clock=clock, engine_factory=factory, poll=86400.0, forecast=False, owner="b")
    await second.run(until=MAR_1 + timedelta(days=1))
    return schedules, second, restart


async def test_skip_records_the_missed_run_and_starts_nothing_for_it(store: RunStore) -> None:
    schedules, scheduler, _ = await down_for_two_weeks(store, MissedPolicy.SKIP)
    claims = {c.occurrence: c for c in schedules.claims("monthly")}
    assert claims[FEB_1].state is ClaimState.MISSED and claims[FEB_1].run_id is None
    assert list(scheduler.results) == [run_id_for("monthly", MAR_1)]
    missed = [h for h in schedules.history("monthly") if h.event == "missed"]
    assert [h.occurrence for h in missed] == [FEB_1]
    assert "skip" in missed[0].detail


async def test_catch_up_starts_one_run_at_once(store: RunStore) -> None:
    schedules, scheduler, restart = await down_for_two_weeks(store, MissedPolicy.CATCH_UP)
    claims = {c.occurrence: c for c in schedules.claims("monthly")}
    assert claims[FEB_1].state is ClaimState.FINISHED
    started = [h for h in schedules.history("monthly") if h.event == "started"]
    assert [(h.occurrence, h.at) for h in started] == [(FEB_1, restart), (MAR_1, MAR_1)]
    assert "catch_up" in started[0].detail
    assert sorted(scheduler.results) == [run_id_for("monthly", FEB_1), run_id_for("monthly", MAR_1)]


async def test_run_next_window_starts_one_run_when_the_next_window_opens(store: RunStore) -> None:
    schedules, scheduler, restart = await down_for_two_weeks(store, MissedPolicy.RUN_NEXT_WINDOW)
    history = schedules.history("monthly")
    postponed = [h for h in history if h.event == "postponed"]
    assert [(h.occurrence, h.at) for h in postponed] == [(FEB_1, restart)]
    started = [h for h in history if h.event == "started"]
    assert [(h.occurrence, h.at) for h in started] == [(FEB_1, FEB_15), (MAR_1, MAR_1)]
    assert scheduler.results[run_id_for("monthly", FEB_1)].started == FEB_15
    assert all(c.state is ClaimState.FINISHED for c in schedules.claims("monthly"))


@pytest.mark.parametrize("policy", list(MissedPolicy))
async def test_a_due_occurrence_supersedes_missed_ones(store: RunStore, policy: MissedPolicy) -> None:
    """Down across two weekly occurrences, back just as a third falls due: only that one runs."""
    clock = current_virtual_clock()
    schedules = Schedules(store)
    spec = ScheduleSpec(
        name="weekly", recurrence=Recurrence.parse("every window of web_servers"), missed=policy
    )
    schedules.add(spec, small_workflow(), small_inventory(), now=clock.now())
    await clock.sleep(timedelta(days=21, minutes=5).total_seconds())  # Jan 11, 18 missed; Jan 25 due
    scheduler = Scheduler(
        store, clock=clock, engine_factory=sim_factory(store, clock, clock.now()), forecast=False
    )
    await scheduler.run_once()
    states = [(c.occurrence.day, c.state) for c in schedules.claims("weekly")]
    assert states == [(11, ClaimState.MISSED), (18, ClaimState.MISSED), (25, ClaimState.FINISHED)]
    assert all("superseded" in h.detail for h in schedules.history("weekly") if h.event == "missed")
