"""The window end and the cutoff are exclusive at run time: nothing starts at or after them.

The real engine runs on the simulator's virtual clock. Forty hosts wait for ten slots while
25-minute commands run, so slots free up exactly at the instants that matter: with a 10-minute
cutoff the third batch would start at exactly the cutoff (01:50); without one, under ``abort`` or
``rollback`` the commands stopped at the window end (02:00) free their slots at exactly the end.
Whatever the expiry policy, the operation records and the fleet's own trace show no forward command
starting at or after the end or the cutoff. And on a clock that reads a hair early when the end's
timer fires (as a real clock may), the slots freed by the abort still start nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from sysflow.engine.engine import Engine
from sysflow.engine.events import EventKind, RecordingObserver
from sysflow.engine.states import OpState, RunStatus
from sysflow.engine.windows import OpenWindow
from sysflow.model.inventory import Inventory
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.sim.fleet import SimFleet
from sysflow.sim.loop import VirtualClock, current_virtual_clock
from sysflow.sim.profile import SimProfile
from sysflow.sim.transport import SimTransport
from tests.engine.conftest import Sim, simulate

HOSTS = 40
SLOTS = 10
ROLLBACK = "restore /backup/packages"
OPEN, END = time(1, 0), time(2, 0)


def _fleet() -> Inventory:
    inv = Inventory()
    inv.add_group("app", [f"app{i:02d}" for i in range(HOSTS)])
    return inv


def _workflow(policy: str, cutoff: str | None) -> MaintenanceWorkflow:
    wf = MaintenanceWorkflow("patch")
    wf.add_task("upgrade", "apt-get -y upgrade", rollback=ROLLBACK, expected_duration=60)
    wf.set_progressive_execution({"auto_rollback": policy == "rollback", "max_failures": "100%"})
    spec: dict[str, object] = {"weekly": "Sunday 01:00-02:00"}
    if cutoff is not None:
        spec["cutoff"] = cutoff
    wf.set_maintenance_window({"groups": {"app": spec}, "allow_split_chains": True})
    wf.set_parallelization({"max_parallel_servers": SLOTS})
    wf.on_window_expiry = policy  # type: ignore[assignment]
    return wf


async def _run(policy: str, cutoff: str | None) -> Sim:
    slow = SimProfile(durations={"upgrade_packages": "25m"})
    return await simulate(_workflow(policy, cutoff), _fleet(), slow)


def _last_start(at: datetime, cutoff: timedelta) -> datetime:
    """The instant at which (and after which) nothing may start in the window ``at`` falls in."""
    return datetime.combine(at.date(), END, at.tzinfo) - cutoff


def _assert_nothing_starts_late(sim: Sim, cutoff: timedelta) -> None:
    """No forward command starts outside ``[01:00, 02:00 - cutoff)`` of a Sunday: by the operation
    records, the OP_STARTED events, and the fleet's trace (which holds the commands that ended by
    themselves; rollback commands run after the end on purpose and are left out)."""
    starts = [r.start for r in sim.result.ops.values() if r.start is not None]
    starts += [e.at for e in sim.events.of(EventKind.OP_STARTED)]
    starts += [
        sim.fleet.start + timedelta(seconds=r.start) for r in sim.transport.trace if r.command != ROLLBACK
    ]
    assert starts
    for at in starts:
        assert at.weekday() == 6 and at.time() >= OPEN, at  # a Sunday, inside the window
        assert at < _last_start(at, cutoff), f"started at {at:%a %H:%M:%S}, at or after the end/cutoff"


def _first_sunday(sim: Sim) -> datetime:
    return min(r.start for r in sim.result.ops.values() if r.start is not None)


@pytest.mark.parametrize("policy", ["finish", "abort", "rollback"])
async def test_nothing_starts_at_or_after_the_cutoff(policy: str) -> None:
    sim = await _run(policy, "10m")
    _assert_nothing_starts_late(sim, timedelta(minutes=10))
    first = _first_sunday(sim)
    cutoff_at = first.replace(hour=1, minute=50)  # batches start 01:00 and 01:25; slots free at 01:50
    freed = [r for r in sim.result.ops.values() if r.end == cutoff_at]
    assert len(freed) == SLOTS  # the cutoff was reached with hosts waiting for those slots
    by_day = sorted(r.start for r in sim.result.ops.values() if r.start is not None)
    assert [t.date() for t in by_day].count(first.date()) == 2 * SLOTS
    assert [t.date() for t in by_day].count((first + timedelta(days=7)).date()) == 2 * SLOTS
    assert sim.result.status is RunStatus.COMPLETED  # nothing ran into the end, so nothing was stopped
    assert all(r.state is OpState.SUCCEEDED for r in sim.result.ops.values())


async def test_abort_stops_what_runs_at_the_end_and_frees_no_slot_for_a_late_start() -> None:
    sim = await _run("abort", None)
    _assert_nothing_starts_late(sim, timedelta(0))
    end = _first_sunday(sim).replace(hour=2, minute=0)
    stopped = [r for r in sim.result.ops.values() if r.state is OpState.UNKNOWN]
    assert len(stopped) == SLOTS  # the batch started at 01:50, stopped at 02:00; none after it
    assert all(r.start == end - timedelta(minutes=10) and r.end == end for r in stopped)
    closed = [e for e in sim.events.of(EventKind.WINDOW_CLOSED) if e.task == "upgrade"]
    assert len(closed) == SLOTS
    waited = [r for r in sim.result.ops.values() if r.start is not None and r.start > end]
    assert len(waited) == SLOTS and all(r.state is OpState.SUCCEEDED for r in waited)  # next Sunday
    assert sim.result.status is RunStatus.COMPLETED_WITH_FAILURES
    assert sorted(sim.result.failed_servers) == sorted(r.host for r in stopped)


async def test_rollback_stops_what_runs_at_the_end_and_starts_nothing_but_rollbacks() -> None:
    sim = await _run("rollback", None)
    _assert_nothing_starts_late(sim, timedelta(0))
    end = _first_sunday(sim).replace(hour=2, minute=0)
    assert sim.result.status is RunStatus.ROLLED_BACK
    states = [r.state for r in sim.result.ops.values()]
    assert states.count(OpState.ROLLED_BACK) == 3 * SLOTS and states.count(OpState.SKIPPED) == SLOTS
    rollbacks = [r for r in sim.transport.trace if r.command == ROLLBACK]
    assert len(rollbacks) == 3 * SLOTS
    assert all(sim.fleet.start + timedelta(seconds=r.start) >= end for r in rollbacks)


async def test_finish_lets_running_commands_end_and_continues_next_window() -> None:
    sim = await _run("finish", None)
    _assert_nothing_starts_late(sim, timedelta(0))
    assert sim.result.status is RunStatus.COMPLETED
    first = _first_sunday(sim)
    days = [r.start.date() for r in sim.result.ops.values() if r.start is not None]
    assert days.count(first.date()) == 3 * SLOTS  # 01:00, 01:25, 01:50 (ending 02:15: finish)
    assert days.count((first + timedelta(days=7)).date()) == SLOTS
    assert all(r.state is OpState.SUCCEEDED for r in sim.result.ops.values())


def test_open_window_edges_are_exclusive() -> None:
    base = datetime(2026, 11, 29, 1, 0).astimezone()
    w = OpenWindow(base, base + timedelta(hours=1), base + timedelta(minutes=50))
    assert w.may_start(base) and w.may_start(w.cutoff_at - timedelta(microseconds=1))
    assert not w.may_start(w.cutoff_at) and not w.may_start(w.end)
    assert not w.admits(w.cutoff_at, 0.0)
    no_cutoff = OpenWindow(base, base + timedelta(hours=1), base + timedelta(hours=1))
    assert not no_cutoff.may_start(no_cutoff.end) and not no_cutoff.admits(no_cutoff.end, 0.0)


class _EarlyAtTheEnd:
    """The virtual clock, except that at the window end it reads a millisecond early: what a real
    clock may read when the end's timer (on the loop's monotonic time) fires."""

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock

    def now(self) -> datetime:
        t = self._clock.now()
        return t - timedelta(milliseconds=1) if t.time() == END else t

    def monotonic(self) -> float:
        return self._clock.monotonic()

    async def sleep(self, seconds: float) -> None:
        await self._clock.sleep(seconds)


async def test_a_clock_reading_early_at_the_end_starts_nothing_after_an_abort() -> None:
    virtual = current_virtual_clock()
    saturday = datetime(2026, 11, 28, 12, tzinfo=UTC)
    virtual.loop.advance((saturday - virtual.now()).total_seconds())
    clock = _EarlyAtTheEnd(virtual)
    fleet = SimFleet(_fleet(), SimProfile(durations={"upgrade_packages": "25m"}), start=virtual.start)
    events = RecordingObserver()
    engine = Engine(_fleet(), transport=SimTransport(fleet, clock), clock=clock, observers=[events])
    result = await engine.prepare(_workflow("abort", None)).execute()
    starts = [r.start for r in result.ops.values() if r.start is not None]
    starts += [e.at for e in events.of(EventKind.OP_STARTED)]
    late = [t for t in starts if t.time() >= time(1, 59, 59)]
    assert not late, f"{len(late)} operations started at the window end, e.g. at {late[0]:%H:%M:%S.%f}"
    assert sum(r.state is OpState.UNKNOWN for r in result.ops.values()) == SLOTS
