"""The run store: schema and migrations, write-ahead, leases between runs, learned durations."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Mapping
from pathlib import Path

import pytest

from sysflow.engine.engine import Engine
from sysflow.engine.events import EventKind, RecordingObserver
from sysflow.engine.leases import HostLeases
from sysflow.engine.states import OpState, RunStatus
from sysflow.engine.store import SCHEMA_VERSION, RunStore
from sysflow.engine.store_schema import MIGRATIONS
from sysflow.errors import LeaseConflict, StoreError
from sysflow.model.inventory import Inventory
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.sim.fleet import SimFleet
from sysflow.sim.loop import current_virtual_clock
from sysflow.sim.transport import SimTransport
from sysflow.transport import CommandResult


def _inventory(n: int = 4, prefix: str = "h") -> Inventory:
    inv = Inventory()
    inv.add_group("app", [f"{prefix}{i}" for i in range(n)])
    return inv


def _workflow(name: str = "patch") -> MaintenanceWorkflow:
    wf = MaintenanceWorkflow(name)
    wf.add_task("upgrade", "apt-get -y upgrade")
    wf.add_task("health", "curl -s http://localhost/health", depends_on=["upgrade"])
    return wf


def test_an_old_store_is_migrated_forward(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript("BEGIN;" + MIGRATIONS[0] + "PRAGMA user_version=1; COMMIT;")
    db.close()
    with RunStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.leases() == {}


def test_a_store_from_a_newer_sysflow_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    sqlite3.connect(path).execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer than this sysflow"):
        RunStore(path)


def test_an_unknown_run_is_a_clear_error(tmp_path: Path) -> None:
    with RunStore(tmp_path / "s.db") as store, pytest.raises(StoreError, match="no run 'nope'"):
        store.run("nope")


class Auditor(SimTransport):
    """Before each command goes out, reads the store from a second connection, as a crash would."""

    def __init__(self, fleet: SimFleet, path: str) -> None:
        super().__init__(fleet)
        self.path = path
        self.seen: list[str] = []

    async def run(
        self,
        host: str,
        command: str,
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        stdin: str | bytes | None = None,
        cwd: str | None = None,
    ) -> CommandResult:
        db = sqlite3.connect(self.path)
        task = "upgrade" if "upgrade" in command else "health"
        (state,) = db.execute("SELECT state FROM ops WHERE op_id=?", (f"{task}@{host}",)).fetchone()
        db.close()
        self.seen.append(state)
        return await super().run(host, command, timeout=timeout)


async def test_an_operation_is_durably_running_before_its_command_is_sent(tmp_path: Path) -> None:
    inv = _inventory()
    path = str(tmp_path / "state.db")
    transport = Auditor(SimFleet(inv, start=current_virtual_clock().start), path)
    engine = Engine(inv, transport=transport, clock=current_virtual_clock(), store=path)
    result = await engine.run(_workflow())
    assert result.status is RunStatus.COMPLETED
    assert transport.seen == ["running"] * 8
    stored = engine.store.ops(result.run_id)  # type: ignore[union-attr]
    assert {r.state for r in stored.values()} == {OpState.SUCCEEDED}
    assert all(r.start is not None and r.end is not None for r in stored.values())


async def test_a_second_run_on_leased_hosts_is_refused_naming_the_holder(tmp_path: Path) -> None:
    path = str(tmp_path / "state.db")
    clock = current_virtual_clock()
    store = RunStore(path)
    async with HostLeases(store, "nightly-1", ["h1", "h2"], clock=clock, ttl=60):
        inv = _inventory()
        events = RecordingObserver()
        engine = Engine(
            inv,
            transport=SimTransport(SimFleet(inv, start=clock.start)),
            clock=clock,
            store=store,
            observers=[events],
        )
        with pytest.raises(LeaseConflict, match=r"held by run nightly-1: h1, h2") as info:
            await engine.run(_workflow(), run_id="adhoc-1")
        assert info.value.holder == "nightly-1"
        assert store.run("adhoc-1").status is RunStatus.FAILED
        assert events.of(EventKind.LEASE_REFUSED)
    assert store.leases() == {}


async def test_a_second_run_may_wait_for_the_first_to_finish(tmp_path: Path) -> None:
    clock = current_virtual_clock()
    store = RunStore(tmp_path / "state.db")
    inv = _inventory()

    def engine() -> Engine:
        fleet = SimFleet(inv, start=clock.start)
        return Engine(inv, transport=SimTransport(fleet), clock=clock, store=store, lease_wait=3600)

    first, second = await asyncio.gather(
        engine().run(_workflow(), run_id="a"), engine().run(_workflow(), run_id="b")
    )
    assert first.status is second.status is RunStatus.COMPLETED
    assert max(r.end for r in first.ops.values() if r.end) <= min(
        r.start for r in second.ops.values() if r.start
    )


async def test_the_leases_of_a_crashed_run_expire(tmp_path: Path) -> None:
    clock = current_virtual_clock()
    store = RunStore(tmp_path / "state.db")
    now = clock.now().timestamp()
    assert store.take_leases("crashed", ["h0", "h1"], now=now, ttl=60) == {}  # and then it died: no heartbeat
    assert store.take_leases("other", ["h1"], now=now + 30, ttl=60) == {"h1": "crashed"}
    await asyncio.sleep(61)
    leases = HostLeases(store, "other", ["h0", "h1"], clock=clock, ttl=60)
    await leases.acquire()
    assert {h: r for h, (r, _) in store.leases().items()} == {"h0": "other", "h1": "other"}
    await asyncio.sleep(600)  # the heartbeat keeps a live run's leases
    assert store.take_leases("third", ["h0"], now=clock.now().timestamp(), ttl=60) == {"h0": "other"}
    await leases.release()


async def test_learned_durations_carry_over_to_the_next_run(tmp_path: Path) -> None:
    clock = current_virtual_clock()
    path = tmp_path / "state.db"
    inv = _inventory()
    wf = _workflow()
    first = Engine(inv, transport=SimTransport(SimFleet(inv, start=clock.start)), clock=clock, store=path)
    await first.run(wf)
    second = Engine(inv, transport=SimTransport(SimFleet(inv, start=clock.start)), clock=clock, store=path)
    model = second._durations_for(wf)
    learned = model.seconds("upgrade", "app")
    assert learned != pytest.approx(wf.tasks[0].estimate)  # no longer the 60 s prior
    assert 30 < learned < 600  # the simulator's apt-get upgrade takes minutes
