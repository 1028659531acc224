"""One writer per run: every write a run makes to its store comes through its ``RunRecorder``.

A ``RunStore`` subclass notes the module that called each write method (calls the store makes to
itself are part of the outer write); a simulated run, with an approval, a gate, a failure and a
rollback, and a resume that re-checks an interrupted operation, must show one writer module.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sysflow.engine.engine import Engine
from sysflow.engine.run import Run
from sysflow.engine.states import OpState, RunStatus
from sysflow.engine.store import RunStore
from sysflow.model.inventory import Inventory
from sysflow.sim.fleet import SimFleet
from sysflow.sim.loop import current_virtual_clock
from sysflow.sim.profile import HostFault, SimProfile
from sysflow.sim.transport import SimTransport
from tests.engine.conftest import SATURDAY_NOON, brief_workflow

WRITES = (
    "create_run",
    "set_status",
    "claim_run",
    "heartbeat",
    "disown",
    "set_position",
    "add_op",
    "op_started",
    "op_record",
    "gate",
    "add_plan",
    "save_durations",
    "take_leases",
    "renew_leases",
    "release_leases",
    "commit",
    "immediate",
)
STORE_MODULES = {c.__module__ for c in RunStore.__mro__ if c.__module__.startswith("sysflow.engine.store")}
RECORDER = "sysflow.engine.recorder"


def _witnessed(name: str) -> Callable[..., Any]:
    write = getattr(RunStore, name)

    def witnessed(self: WitnessStore, *args: Any, **kw: Any) -> Any:
        caller = sys._getframe(1).f_globals.get("__name__", "?")
        if caller not in STORE_MODULES:  # the store calling itself is part of the write that called it
            self.writers.setdefault(name, set()).add(caller)
        return write(self, *args, **kw)

    return witnessed


class WitnessStore(RunStore):
    """A run store that notes, per write method, the modules that called it."""

    def __init__(self, path: str | Path) -> None:
        self.writers: dict[str, set[str]] = {}
        super().__init__(path)

    def writer_modules(self) -> set[str]:
        return {m for modules in self.writers.values() for m in modules}


for _name in WRITES:
    setattr(WitnessStore, _name, _witnessed(_name))


def _advance_to_saturday() -> None:
    clock = current_virtual_clock()
    if clock.now() < SATURDAY_NOON:
        asyncio.get_running_loop().advance((SATURDAY_NOON - clock.now()).total_seconds())  # type: ignore[attr-defined]


def _engine(inventory: Inventory, store: RunStore, profile: SimProfile | None = None) -> Engine:
    clock = current_virtual_clock()
    fleet = SimFleet(inventory, profile, seed=1, start=clock.start)
    return Engine(inventory, transport=SimTransport(fleet, clock), clock=clock, store=store)


async def test_every_write_of_a_run_comes_through_its_recorder(tmp_path: Path, inventory: Inventory) -> None:
    _advance_to_saturday()
    wf = brief_workflow()
    wf.set_progressive_execution(
        {
            "groups": [
                ["web01.example.com"],
                ["web02.example.com", "web03.example.com"],
                ["db_servers", "cache_servers"],
            ],
            "approval": [2],
            "auto_rollback": True,
        }
    )
    store = WitnessStore(tmp_path / "state.db")
    engine = _engine(
        inventory, store, SimProfile(hosts=[HostFault(hosts="db01.example.com", hang="apt-get")])
    )
    run = engine.prepare(wf)

    async def approver(run: Run) -> None:
        while run.status is not RunStatus.PAUSED:
            await asyncio.sleep(60)
        run.approve(2)

    async with asyncio.TaskGroup() as tg:
        done = tg.create_task(engine.drive(run))
        tg.create_task(approver(run))
    result = done.result()
    assert result.status is RunStatus.ROLLED_BACK  # approval, gates, a failed wave and its rollback ran
    wrote = set(store.writers)
    assert {
        "create_run",
        "add_plan",
        "take_leases",
        "op_started",
        "op_record",
        "gate",
        "set_position",
    } <= wrote
    assert {"set_status", "commit", "release_leases", "disown", "save_durations"} <= wrote
    assert store.writer_modules() == {RECORDER}, store.writers
    store.close()


async def test_a_resume_writes_through_the_recorder_too(tmp_path: Path, inventory: Inventory) -> None:
    _advance_to_saturday()
    path = tmp_path / "state.db"
    wf = brief_workflow()
    first = RunStore(path)  # a controller that sent one command, then died
    run = _engine(inventory, first).prepare(wf)
    op_id = "backup@web01.example.com"
    first.op_started(run.id, op_id, at=datetime(2026, 11, 29, 1, tzinfo=UTC), attempt=1, command="tar")
    first.disown(run.id)
    first.close()

    store = WitnessStore(path)
    result = await _engine(inventory, store).resume_async(run.id)
    assert result.ops[op_id].state is OpState.FAILED  # not idempotent, no check: inspect the host
    assert {"claim_run", "commit", "op_record", "take_leases", "release_leases", "disown"} <= set(
        store.writers
    )
    assert store.writer_modules() == {RECORDER}, store.writers
    store.close()
