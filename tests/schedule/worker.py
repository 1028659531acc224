"""A scheduler process for the two-process test: ``python -m tests.schedule.worker DB OWNER STOPFILE``.

Runs a real-time :class:`Scheduler` on the store at DB (local transport, polling every 0.1 s) until
STOPFILE exists or 90 s have passed, printing ``ready`` once it has started.
"""

from __future__ import annotations

import asyncio
import os
import sys

from sysflow.actors.local import LocalTransport
from sysflow.engine.engine import Engine
from sysflow.engine.store import RunStore
from sysflow.model.inventory import Inventory
from sysflow.schedule.model import Schedule
from sysflow.schedule.scheduler import Scheduler

HARD_LIMIT = 90.0  # seconds: the worker never outlives a test that forgot it


async def main(db: str, owner: str, stop_file: str) -> None:
    store = RunStore(db)

    def factory(schedule: Schedule, inventory: Inventory) -> Engine:
        return Engine(inventory, transport=LocalTransport(), store=store, plan=False)

    scheduler = Scheduler(store, engine_factory=factory, poll=0.1, forecast=False, owner=owner)

    async def watch() -> None:
        for _ in range(int(HARD_LIMIT / 0.1)):
            if os.path.exists(stop_file):  # noqa: ASYNC240  (a stat every 0.1 s)
                break
            await asyncio.sleep(0.1)
        scheduler.stop()

    print("ready", flush=True)
    await asyncio.gather(scheduler.run(), watch())
    store.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
