"""Schedule tests run on virtual time: the real scheduler and engine drive a simulated fleet."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from sysflow.clock import Clock
from sysflow.engine.engine import Engine
from sysflow.engine.store import RunStore
from sysflow.model.inventory import Inventory
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.schedule.model import Schedule
from sysflow.schedule.scheduler import EngineFactory
from sysflow.sim.fleet import SimFleet
from sysflow.sim.transport import SimTransport
from tests.fixtures.virtual import virtual_loop_factories as pytest_asyncio_loop_factories

__all__ = ["pytest_asyncio_loop_factories", "sim_factory", "small_inventory", "small_workflow"]

AMSTERDAM = "Europe/Amsterdam"


def small_inventory() -> Inventory:
    inv = Inventory()
    inv.add_group("web_servers", ["web01.example.com", "web02.example.com"])
    inv.add_group("db_servers", ["db01.example.com"])
    return inv


def small_workflow(timezone: str = AMSTERDAM) -> MaintenanceWorkflow:
    wf = MaintenanceWorkflow("patch")
    wf.add_task("update_repos", "apt-get update", targets=["*"])
    wf.add_task("upgrade", "apt-get -y upgrade", targets=["*"], depends_on=["update_repos"])
    wf.set_maintenance_window(
        {
            "timezone": timezone,
            "groups": {"web_servers": "Sunday 01:00-03:00", "db_servers": "Sunday 03:00-05:00"},
        }
    )
    return wf


def sim_factory(store: RunStore, clock: Clock, start: datetime, *, lease_wait: float = 0.0) -> EngineFactory:
    """Engines on a simulated fleet, sharing the scheduler's store and clock."""

    def build(schedule: Schedule, inventory: Inventory) -> Engine:
        fleet = SimFleet(inventory, None, seed=1, start=start)
        return Engine(
            inventory,
            transport=SimTransport(fleet, clock),
            clock=clock,
            store=store,
            lease_wait=lease_wait,
            plan=False,
        )

    return build


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RunStore]:
    s = RunStore(tmp_path / "state.db")
    yield s
    s.close()
