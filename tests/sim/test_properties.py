"""Properties: a command ends at the earliest of its end, its timeout and its host going down."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sysflow.errors import CommandTimeout, ConnectionFailed
from sysflow.model.inventory import Inventory
from sysflow.sim.fleet import SimFleet
from sysflow.sim.loop import current_virtual_clock, run_virtual
from sysflow.sim.profile import Fixed, Partition, Rule, SimProfile
from sysflow.sim.transport import SimTransport

seconds = st.floats(min_value=0.001, max_value=10_000, allow_nan=False, allow_infinity=False)


async def _end_of(duration: float, timeout: float | None, cut: float, start: float) -> tuple[str, float]:
    inventory = Inventory()
    inventory.add_host("h1", datacenter="dc")
    profile = SimProfile(
        rules=[Rule(name="work", match="^work", duration=Fixed(seconds=duration))],
        partitions=[Partition(datacenter="dc", start=cut, end=cut + 60)],
    )
    transport = SimTransport(SimFleet(inventory, profile))
    clock = current_virtual_clock()
    await clock.sleep(start)
    try:
        await transport.run("h1", "work", timeout=timeout)
    except CommandTimeout:
        return "timeout", clock.monotonic()
    except ConnectionFailed:
        return "lost", clock.monotonic()
    return "done", clock.monotonic()


@settings(max_examples=100, deadline=None)
@given(duration=seconds, timeout=st.none() | seconds, cut=seconds, start=seconds)
def test_a_command_ends_at_the_earliest_instant(
    duration: float, timeout: float | None, cut: float, start: float
) -> None:
    if start >= cut:  # connecting inside or after the partition is another property
        start = cut / 2
    kind, end = run_virtual(_end_of(duration, timeout, cut, start))
    candidates = {"done": start + duration, "lost": cut if cut < start + duration else float("inf")}
    if timeout is not None:
        candidates["timeout"] = start + timeout
    earliest = min(candidates.values())
    assert end == earliest
    assert candidates[kind] == earliest
