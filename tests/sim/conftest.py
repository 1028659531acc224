"""Every async test of the simulator runs on virtual time."""

from __future__ import annotations

from tests.fixtures.virtual import virtual_loop_factories

pytest_asyncio_loop_factories = virtual_loop_factories
