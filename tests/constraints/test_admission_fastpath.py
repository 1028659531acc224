"""``acquire`` grants at once, without queueing, when no earlier waiter shares an instance."""

from __future__ import annotations

import asyncio

from sysflow.clock import ManualClock
from sysflow.constraints import Admission, Grant, Limits
from tests.constraints.ops import make_op

CONFIG = {"max_parallel_per_group": 1, "pools": [{"name": "big", "capacity": 2, "default_demand": 0}]}


async def test_disjoint_acquire_passes_a_waiter_without_queueing() -> None:
    adm = Admission(Limits.build(CONFIG), ManualClock())
    held = await adm.acquire(make_op("a", demands=(("big", 1.0),), groups=("db",)))
    wide = asyncio.create_task(adm.acquire(make_op("w", demands=(("big", 2.0),))))
    await asyncio.sleep(0)
    assert adm.waiting == 1
    # other instances only: granted at once, no ticket filed, the waiter keeps its place
    other = await adm.acquire(make_op("x", groups=("cache",)))
    assert isinstance(other, Grant)
    assert adm.waiting == 1
    # a request sharing the waiter's pool queues behind it, though the pool has room for it
    late = asyncio.create_task(adm.acquire(make_op("y", demands=(("big", 1.0),), groups=("web",))))
    await asyncio.sleep(0)
    assert adm.waiting == 2
    adm.release(held)
    first = await wide
    assert first.host == "w"
    assert not late.done()
    adm.release(first)
    assert (await late).host == "y"
    assert adm.waiting == 0
