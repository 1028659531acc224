"""Traces: JSON round trip, recording from results, and replaying a run on the simulator."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sysflow.errors import ConnectTimeout, StoreError
from sysflow.model.inventory import Inventory
from sysflow.sim.fleet import SimFleet
from sysflow.sim.loop import VirtualClock
from sysflow.sim.profile import Empirical, Fixed, SimProfile
from sysflow.sim.replay import TRACE_FORMAT, Trace, TraceRecord, replay_fleet
from sysflow.sim.transport import SimTransport
from sysflow.transport import CommandResult

T0 = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)


def result(
    host: str, command: str, start: float, end: float, exit_status: int = 0, out: str = ""
) -> CommandResult:
    return CommandResult(
        host, command, exit_status, out, "", T0 + timedelta(seconds=start), T0 + timedelta(seconds=end)
    )


def recorded_run() -> Trace:
    return Trace.from_results(
        [
            result("web2", "apt-get -y upgrade", 10, 250, 0, "upgraded\n"),
            result("web1", "apt-get -y upgrade", 0, 130, 100),
            result("web1", "apt-get update", 130, 150),
            result("db1", "apt-get -y upgrade", 5, 65),
        ]
    )


def test_from_results_orders_by_start_and_keeps_offsets() -> None:
    trace = recorded_run()
    assert trace.start == T0
    assert len(trace) == 4
    assert [(r.host, r.start, r.duration) for r in trace] == [
        ("web1", 0, 130),
        ("db1", 5, 60),
        ("web2", 10, 240),
        ("web1", 130, 20),
    ]
    assert Trace.from_results([]).records == ()


def test_json_round_trip(tmp_path: Path) -> None:
    trace = recorded_run()
    path = tmp_path / "run.json"
    trace.save(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["format"] == TRACE_FORMAT
    assert data["records"][0]["start"] == "2026-11-29T01:00:00+00:00"
    assert Trace.load(path) == trace
    assert Trace.from_json(trace.to_json()).to_json() == trace.to_json()


def test_numeric_offsets_are_accepted() -> None:
    text = json.dumps(
        {
            "format": TRACE_FORMAT,
            "records": [
                {"host": "h", "command": "c", "start": 1.5, "end": 4, "exit_status": None, "error": "X"}
            ],
        }
    )
    (rec,) = Trace.from_json(text).records
    assert rec == TraceRecord("h", "c", 1.5, 4.0, None, "", "", "X", None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not JSON"),
        ('{"format": "other"}', "not a sysflow-trace/1"),
        ('{"format": "sysflow-trace/1", "start": "yesterday"}', "bad instant"),
        ('{"format": "sysflow-trace/1", "start": 5}', "bad instant"),
        ('{"format": "sysflow-trace/1", "records": [{"host": "h"}]}', "bad record"),
    ],
)
def test_bad_traces_are_refused(text: str, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        Trace.from_json(text, source="run.json")


def test_empirical_profile_from_a_trace() -> None:
    trace = Trace(
        T0,
        (
            *recorded_run().records,
            TraceRecord("db2", "apt-get -y upgrade", 0, 10, None, error="ConnectTimeout"),
            TraceRecord("db2", "deploy", 0, 7, 0, rule="deploy"),
        ),
    )
    profile = trace.empirical_profile(SimProfile(failure_probability={"apt_update": 0.5}))
    assert profile.durations["upgrade_packages"] == {"*": Empirical(samples=(130, 60, 240))}
    assert profile.durations["deploy"] == {"*": Empirical(samples=(7,))}
    assert profile.failure_probability["upgrade_packages"] == pytest.approx(1 / 3)
    assert profile.failure_probability["apt_update"] == 0.5  # the base profile wins


async def test_replay_reproduces_recorded_outcomes(inventory: Inventory, virtual_clock: VirtualClock) -> None:
    fleet = replay_fleet(recorded_run(), inventory, seed=1, start=virtual_clock.start)
    tr = SimTransport(fleet)
    # a new plan: web1 first runs update, then upgrade; web2 and web3 in parallel
    async with asyncio.TaskGroup() as tg:
        web1 = tg.create_task(tr.run("web1", "apt-get -y upgrade"))
        web2 = tg.create_task(tr.run("web2", "apt-get -y upgrade"))
        web3 = tg.create_task(tr.run("web3", "apt-get -y upgrade"))
    assert (web1.result().exit_status, web1.result().duration) == (100, 130)
    assert (web2.result().stdout, web2.result().duration) == ("upgraded\n", 240)
    assert web3.result().duration in (130, 60, 240)  # not recorded: drawn from the recording
    # the failed upgrade's failure effect applied on web1: nginx is down
    assert (await tr.run("web1", "systemctl is-active nginx")).exit_status == 3


async def test_a_simulated_run_replays_identically(inventory: Inventory) -> None:
    profile = SimProfile(
        durations={"upgrade_packages": {"*": Fixed(seconds=100)}},
        hosts=[{"hosts": "db2", "unreachable": "timeout"}],  # type: ignore[list-item]
        failure_probability={"apt_update": 0.5},
    )

    async def run(tr: SimTransport) -> list[tuple[str, str, float, int | None, str]]:
        async def chain(host: str) -> None:
            for command in ("apt-get update", "apt-get -y upgrade", "dpkg -l | grep openssl"):
                try:
                    await tr.run(host, command)
                except ConnectTimeout:
                    return

        async with asyncio.TaskGroup() as tg:
            for host in inventory.hosts:
                tg.create_task(chain(host))
        return sorted((r.host, r.command, r.duration, r.exit_status, r.stdout) for r in tr.trace)

    first = SimTransport(SimFleet(inventory, profile, seed=5))
    original = await run(first)
    trace = Trace.from_json(first.recorded_trace().to_json())
    again = await run(SimTransport(replay_fleet(trace, inventory, seed=99)))
    assert [(h, c, x, o) for h, c, _, x, o in again] == [(h, c, x, o) for h, c, _, x, o in original]
    # ISO 8601 instants keep microseconds
    assert [d for *_, d, _x, _o in again] == pytest.approx([d for *_, d, _x, _o in original], abs=2e-6)
