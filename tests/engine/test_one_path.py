"""One execution path: ``Engine.execute``, ``sysflow sim``, ``sysflow run`` and the scheduler all run
their operations through HostPool actors, as every record and ``op_finished`` event names the pool
(``executor = <shard>@<node>``). ``sysflow run`` over the real sshd is shown in tests/cli/test_backend.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

from typer.testing import CliRunner

from sysflow.cli import app
from sysflow.engine.engine import Engine
from sysflow.engine.events import EventKind, RecordingObserver
from sysflow.engine.store import RunStore
from sysflow.schedule.scheduler import Scheduler
from sysflow.schedule.schedules import Schedules
from sysflow.sim.fleet import SimFleet
from sysflow.sim.loop import current_virtual_clock, run_virtual
from sysflow.sim.transport import SimTransport
from tests.engine.conftest import brief_inventory, brief_workflow
from tests.schedule.conftest import sim_factory, small_inventory, small_workflow
from tests.schedule.test_scheduler import JAN_11, weekly

HERE = f"{os.uname().nodename}:{os.getpid()}"  # in-process pools run in this process


def test_engine_execute_runs_every_operation_through_a_hostpool() -> None:
    inventory = brief_inventory()
    events = RecordingObserver()

    async def main() -> None:
        clock = current_virtual_clock()
        fleet = SimFleet(inventory, None, seed=4, start=clock.start)
        engine = Engine(inventory, transport=SimTransport(fleet, clock), clock=clock, observers=[events])
        result = await engine.run(brief_workflow())
        assert result.ops and all(r.executor.endswith(f"@{HERE}") for r in result.ops.values() if r.start)

    run_virtual(main())
    finished = events.of(EventKind.OP_FINISHED)
    assert finished
    shards = {e.data["executor"].partition("@")[0] for e in finished}
    assert shards <= {"default", "controller"}  # the brief's hosts name no segment; hooks run locally


def test_sysflow_sim_dispatches_through_hostpools(tmp_path: Path) -> None:
    out = CliRunner().invoke(app, ["sim", "examples/demo/patching.yaml", "--hosts", "30", "--json"])
    events = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    finished = [e for e in events if e["kind"] == "op_finished"]
    assert finished, out.output
    assert all(e["data"]["executor"].endswith(f"@{HERE}") for e in finished)
    assert {e["data"]["executor"].partition("@")[0] for e in finished} == {
        "ams",
        "fra",
        "lon",
    }  # per datacenter


def test_scheduled_runs_dispatch_through_hostpools(tmp_path: Path) -> None:
    async def main() -> None:
        clock = current_virtual_clock()
        store = RunStore(tmp_path / "state.db")
        Schedules(store).add(weekly("nightly"), small_workflow(), small_inventory(), now=clock.now())
        await clock.sleep((JAN_11 - clock.now()).total_seconds() + 60)
        scheduler = Scheduler(
            store, clock=clock, engine_factory=sim_factory(store, clock, clock.now()), forecast=False
        )
        await scheduler.run_once()
        (result,) = scheduler.results.values()
        ran = [r for r in result.ops.values() if r.start]
        assert ran and all(r.executor.endswith(f"@{HERE}") for r in ran)
        store.close()

    run_virtual(main(), start=None)
