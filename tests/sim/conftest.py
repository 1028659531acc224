"""Every async test of the simulator runs on virtual time."""

from __future__ import annotations

import pytest

from sysflow.model.inventory import Inventory
from tests.fixtures.virtual import virtual_loop_factories

pytest_asyncio_loop_factories = virtual_loop_factories


@pytest.fixture
def inventory() -> Inventory:
    """web1-3 in ams, db1-2 in fra, lb1 in fra's dmz segment."""
    inv = Inventory()
    for i in (1, 2, 3):
        inv.add_host(f"web{i}", ["web"], datacenter="ams")
    for i in (1, 2):
        inv.add_host(f"db{i}", ["db"], datacenter="fra")
    inv.add_host("lb1", ["lb"], datacenter="fra", segment="dmz")
    return inv
