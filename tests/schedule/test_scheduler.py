"""The scheduler's edges: leases held by a live run, pause and resume, bad schedules, once mode."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sysflow.audit.log import AuditLog
from sysflow.engine.engine import Engine
from sysflow.engine.result import RunResult
from sysflow.engine.store import RunStore
from sysflow.errors import StoreError
from sysflow.model.inventory import Inventory
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.schedule.model import ClaimState, MissedPolicy, Schedule, ScheduleSpec, ScheduleState
from sysflow.schedule.recurrence import Recurrence
from sysflow.schedule.scheduler import Scheduler, next_window, run_id_for
from sysflow.schedule.schedules import Schedules
from sysflow.sim.loop import current_virtual_clock
from tests.schedule.conftest import sim_factory, small_inventory, small_workflow

JAN_11 = datetime(2026, 1, 11, tzinfo=UTC)  # Sunday 01:00 Amsterdam: the web window opens


def weekly(name: str = "weekly", **kw: object) -> ScheduleSpec:
    return ScheduleSpec(name=name, recurrence=Recurrence.parse("every window of web_servers"), **kw)


async def test_hosts_held_by_a_live_run_defer_the_occurrence(store: RunStore, tmp_path: Path) -> None:
    clock = current_virtual_clock()
    schedules = Schedules(store)
    schedules.add(weekly(lease_wait=600.0), small_workflow(), small_inventory(), now=clock.now())
    store.take_leases("manual-1", ["web01.example.com"], now=clock.now().timestamp(), ttl=30 * 86400)
    audit = AuditLog(tmp_path / "audit.db")
    scheduler = Scheduler(
        store,
        clock=clock,
        engine_factory=sim_factory(store, clock, clock.now(), lease_wait=600.0),
        audit=audit,
        poll=86400.0,
    )
    await scheduler.run(until=JAN_11 + timedelta(hours=1))
    (claim,) = schedules.claims("weekly")
    assert claim.state is ClaimState.DEFERRED and claim.run_id == run_id_for("weekly", JAN_11)
    deferred = [h for h in schedules.history("weekly") if h.event == "deferred"]
    assert [h.detail for h in deferred] == ["deferred: held by run manual-1"]
    assert deferred[0].at == JAN_11 + timedelta(seconds=600)  # it waited lease_wait first
    actions = [(r.action, r.run_id) for r in audit.records()]
    assert ("schedule.deferred", run_id_for("weekly", JAN_11)) in actions
    audit.close()


async def test_paused_schedules_start_nothing_and_resume_does_not_make_up(store: RunStore) -> None:
    clock = current_virtual_clock()
    schedules = Schedules(store)
    schedules.add(weekly(missed=MissedPolicy.CATCH_UP), small_workflow(), small_inventory(), now=clock.now())
    assert schedules.pause("weekly").state is ScheduleState.PAUSED
    scheduler = Scheduler(
        store,
        clock=clock,
        engine_factory=sim_factory(store, clock, clock.now()),
        forecast=False,
        poll=86400.0,
    )
    await scheduler.run(until=JAN_11 + timedelta(days=8))
    assert schedules.claims("weekly") == []
    schedules.resume("weekly", now=clock.now())
    await scheduler.run(until=JAN_11 + timedelta(days=15))
    assert [c.occurrence for c in schedules.claims("weekly")] == [JAN_11 + timedelta(days=14)]


async def test_only_named_schedules_and_once_mode(store: RunStore) -> None:
    clock = current_virtual_clock()
    schedules = Schedules(store)
    for name in ("a", "b"):
        schedules.add(weekly(name), small_workflow(), small_inventory(), now=clock.now())
    await clock.sleep((JAN_11 - clock.now()).total_seconds() + 60)
    scheduler = Scheduler(
        store, clock=clock, engine_factory=sim_factory(store, clock, clock.now()), names=["b"], forecast=False
    )
    await scheduler.run_once()
    assert schedules.claims("a") == [] and len(schedules.claims("b")) == 1
    await scheduler.run_once()  # the same pass again starts nothing twice
    assert len(schedules.claims("b")) == 1 and list(scheduler.results) == [run_id_for("b", JAN_11)]


async def test_a_run_that_cannot_start_is_recorded_failed(store: RunStore) -> None:
    clock = current_virtual_clock()
    schedules = Schedules(store)
    schedules.add(weekly(), small_workflow(), small_inventory(), now=clock.now())

    def broken(schedule: Schedule, inventory: Inventory) -> object:
        raise StoreError("no engine today")

    scheduler = Scheduler(store, clock=clock, engine_factory=broken, forecast=True, poll=86400.0)  # type: ignore[arg-type]
    await scheduler.run(until=JAN_11 + timedelta(hours=1))
    (claim,) = schedules.claims("weekly")
    assert claim.state is ClaimState.FAILED
    events = [(h.event, h.detail) for h in schedules.history("weekly")]
    assert events[0][0] == "forecast" and "hosts fit" in events[0][1]
    assert events[-1] == ("failed", "cannot start: no engine today")


async def test_stop_ends_the_loop(store: RunStore) -> None:
    clock = current_virtual_clock()
    scheduler = Scheduler(store, clock=clock, poll=3600.0)
    scheduler.stop()
    await scheduler.run()
    assert scheduler.results == {}


def test_schedules_api_errors_and_replace(store: RunStore) -> None:
    schedules = Schedules(store)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    schedules.add(weekly(), small_workflow(), small_inventory(), now=now)
    with pytest.raises(StoreError, match="exists"):
        schedules.add(weekly(), small_workflow(), small_inventory(), now=now)
    replaced = schedules.add(
        weekly(missed=MissedPolicy.SKIP, tolerance=60.0),
        small_workflow(),
        small_inventory(),
        now=now,
        replace=True,
    )
    assert replaced.spec.tolerance == 60.0 and len(replaced.workflow_digest) == 64
    for call in (schedules.get, schedules.pause, schedules.remove):
        with pytest.raises(StoreError, match="no schedule"):
            call("nope")
    never = ScheduleSpec(name="never", recurrence=Recurrence(cron="0 0 30 2 *"))
    with pytest.raises(StoreError, match="never fires"):
        schedules.add(never, small_workflow(), small_inventory(), now=now)
    schedules.remove("weekly")
    assert schedules.list() == []


def test_next_window_of_cron_schedules() -> None:
    now = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
    cron = Recurrence(cron="0 2 * * *")
    assert next_window(cron, small_workflow(), now) == datetime(2026, 1, 11, tzinfo=UTC)  # web opens first
    assert next_window(cron, MaintenanceWorkflow("none"), now) == now  # no windows: at once


async def test_a_broken_schedule_does_not_stop_the_others(store: RunStore) -> None:
    clock = current_virtual_clock()
    schedules = Schedules(store)
    for name in ("broken", "fine"):
        schedules.add(weekly(name), small_workflow(), small_inventory(), now=clock.now())
    with store.immediate() as db:  # its workflow lost the group's windows behind our back
        db.execute(
            "UPDATE schedules SET workflow_json=? WHERE name='broken'", (MaintenanceWorkflow("x").to_json(),)
        )
    scheduler = Scheduler(
        store,
        clock=clock,
        engine_factory=sim_factory(store, clock, clock.now()),
        forecast=False,
        poll=86400.0,
    )
    await scheduler.run(until=JAN_11 + timedelta(hours=1))
    assert schedules.claims("broken") == [] and len(schedules.claims("fine")) == 1


async def test_a_postponed_run_waits_while_its_schedule_is_paused(store: RunStore) -> None:
    clock = current_virtual_clock()
    schedules = Schedules(store)
    spec = ScheduleSpec(
        name="monthly",
        recurrence=Recurrence.parse("first sunday window of web_servers"),
        missed=MissedPolicy.RUN_NEXT_WINDOW,
    )
    schedules.add(spec, small_workflow(), small_inventory(), now=clock.now())
    await clock.sleep(timedelta(days=30).total_seconds())  # Feb 1 missed
    scheduler = Scheduler(
        store,
        clock=clock,
        engine_factory=sim_factory(store, clock, clock.now()),
        forecast=False,
        poll=86400.0,
    )
    await scheduler.run_once()
    (claim,) = schedules.claims("monthly")
    assert claim.state is ClaimState.POSTPONED and claim.due == datetime(2026, 2, 8, tzinfo=UTC)
    schedules.pause("monthly")
    await scheduler.run(until=datetime(2026, 2, 9, tzinfo=UTC))
    assert schedules.claims("monthly")[0].state is ClaimState.POSTPONED
    schedules.resume("monthly")
    await scheduler.run(until=datetime(2026, 2, 9, 1, tzinfo=UTC))
    assert schedules.claims("monthly")[0].state is ClaimState.FINISHED


async def test_a_crashing_run_is_recorded_failed_not_left_running(store: RunStore) -> None:
    clock = current_virtual_clock()
    schedules = Schedules(store)
    schedules.add(weekly(), small_workflow(), small_inventory(), now=clock.now())

    class Crashing(Engine):
        async def run(self, workflow: MaintenanceWorkflow, *, run_id: str | None = None) -> RunResult:
            raise RuntimeError("a bug")

    def factory(schedule: Schedule, inventory: Inventory) -> Engine:
        return Crashing(inventory, clock=clock)

    scheduler = Scheduler(store, clock=clock, engine_factory=factory, forecast=False, poll=86400.0)
    await scheduler.run(until=JAN_11 + timedelta(hours=1))
    (claim,) = schedules.claims("weekly")
    assert claim.state is ClaimState.FAILED
    assert schedules.history("weekly")[-1].detail == "crashed: RuntimeError"
