"""The brief's Sunday: windows per group, ``set_parallelization`` limits, admission on virtual time.

Each host runs two operations of 5 minutes; a host starts only inside its group's window and
before the cutoff with its whole chain fitting. Concurrent hosts need a clock on which each task
sleeps its own time, so this runs on the simulator's virtual-time loop (no real waiting). The test
keeps its own books of what ran when.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

from sysflow.clock import Clock
from sysflow.constraints import Admission, Calendar, Limits
from sysflow.sim.loop import VirtualTimeLoop
from tests.constraints.ops import make_op

GROUPS = {"web_servers": 12, "db_servers": 4, "cache_servers": 6}
WINDOWS = {
    "groups": {
        "web_servers": "Sunday 01:00-03:00",
        "db_servers": "Sunday 03:00-05:00",
        "cache_servers": "Sunday 01:00-05:00",
    },
    "cutoff": "10m",
}
PARALLELISM = {"max_parallel_servers": 10, "max_parallel_per_group": 5, "delay_between_servers": "2s"}
STEP = 300.0  # seconds per operation


def test_brief_sunday_on_virtual_time() -> None:
    loop = VirtualTimeLoop(datetime(2026, 11, 21, 23, 0, tzinfo=UTC))
    try:
        log = loop.run_until_complete(sunday(loop.clock))
    finally:
        loop.close()
    assert len(log) == 2 * sum(GROUPS.values())
    starts = sorted(t for t, _, task in log if task == "patch")
    assert all((b - a).total_seconds() >= 2 - 1e-6 for a, b in itertools.pairwise(starts))
    assert log[-1][0] < datetime(2026, 11, 22, 5, tzinfo=UTC)


async def sunday(clock: Clock) -> list[tuple[datetime, str, str]]:
    calendar = Calendar.build(WINDOWS, start=clock.now(), horizon=timedelta(days=2), known_groups=set(GROUPS))
    chains = {
        f"{g}-{i}": [make_op(f"{g}-{i}", t, groups=(g,)) for t in ("patch", "reboot")]
        for g, n in GROUPS.items()
        for i in range(n)
    }
    limits = Limits.from_ops(PARALLELISM, [op for chain in chains.values() for op in chain])
    admission = Admission(limits, clock)
    running: list[str] = []
    log: list[tuple[datetime, str, str]] = []

    async def host(name: str) -> None:
        group = chains[name][0].group
        for _ in range(100):  # bounded: find a start instant inside the window
            now = clock.now()
            window = calendar.current(group, now)
            if (
                window is not None
                and now + timedelta(seconds=2 * STEP) <= window.end
                and window.can_start(now)
            ):
                break
            nxt = calendar.next_open(group, now + timedelta(seconds=1))
            assert nxt is not None
            await clock.sleep(max(1.0, (nxt - now).total_seconds()))
        for op in chains[name]:
            grant = await admission.acquire(op)
            log.append((clock.now(), name, op.task))
            running.append(group)
            assert len(running) <= 10
            assert running.count(group) <= 5
            assert calendar.is_open(group, clock.now())
            await clock.sleep(STEP)
            running.remove(group)
            admission.release(grant)
        admission.host_done(name)

    await asyncio.wait_for(asyncio.gather(*(host(h) for h in chains)), timeout=86400)  # virtual
    for t, name, _ in log:
        group = name.rsplit("-", 1)[0]
        assert calendar.is_open(group, t), (t, name)
    log.sort()
    return log
