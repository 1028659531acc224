"""The HostPool actor over SimTransport on virtual time: what the engine will run on."""

from __future__ import annotations

import itertools
from datetime import timedelta

from sysflow.actors.hostpool import HostPool
from sysflow.actors.ops import ErrorKind, OpRequest
from sysflow.model.inventory import Inventory
from sysflow.sim.fleet import SimFleet
from sysflow.sim.loop import VirtualClock
from sysflow.sim.profile import Fixed, Partition, Rule, SimProfile
from sysflow.sim.transport import SimTransport

CHAIN = ("backup", "apt-get update", "apt-get -y upgrade", "systemctl restart nginx", "curl -fsS localhost")


def profile() -> SimProfile:
    fixed = {"backup": 30, "apt_update": 20, "upgrade_packages": 120, "restart_service": 5, "health_check": 1}
    return SimProfile(
        durations={name: {"*": Fixed(seconds=s)} for name, s in fixed.items()},
        rules=[Rule(name="slow", match="^slow", duration=Fixed(seconds=3600))],
        partitions=[Partition(datacenter="fra", start=0, end=3600)],
        connect_timeout=10,
    )


def requests(host: str) -> list[OpRequest]:
    return [OpRequest(op_id=f"{i}@{host}", host=host, task=str(i), command=c) for i, c in enumerate(CHAIN)]


async def test_chains_in_order_with_an_in_flight_cap(
    inventory: Inventory, virtual_clock: VirtualClock
) -> None:
    transport = SimTransport(SimFleet(inventory, profile()))
    async with HostPool("sim", transport, clock=virtual_clock, max_in_flight=2) as pool:
        results = await pool.run_batch([r for h in ("web1", "web2", "web3") for r in requests(h)])
    assert all(r.ok for r in results)
    # 3 chains of 176 s, at most 2 operations at once: between the bound and two rounds
    assert 3 * 176 / 2 <= virtual_clock.monotonic() <= 2 * 176
    instants = sorted({r.start for r in results})
    assert max(sum(r.start <= t < r.end for r in results) for t in instants) == 2
    web1 = [r for r in results if r.host == "web1"]
    assert all(a.end <= b.start for a, b in itertools.pairwise(web1))  # in order, never overlapping
    assert web1[0].start == virtual_clock.start
    assert sum(r.duration for r in web1) == 176
    after = await transport.run("web1", "dpkg-query -W -f='${Version}' openssl")
    assert after.stdout == "3.0.15-1~deb12u1"


async def test_failures_are_values_at_virtual_instants(
    inventory: Inventory, virtual_clock: VirtualClock
) -> None:
    transport = SimTransport(SimFleet(inventory, profile()))
    async with HostPool("sim", transport, clock=virtual_clock) as pool:
        partitioned = await pool.run_op(OpRequest(op_id="a", host="db1", task="t", command="backup"))
        timed_out = await pool.run_op(OpRequest(op_id="b", host="web1", task="t", command="slow", timeout=60))
    assert partitioned.error_kind is ErrorKind.CONNECT_TIMEOUT
    assert partitioned.duration == 10
    assert timed_out.error_kind is ErrorKind.COMMAND_TIMEOUT
    assert timed_out.end == virtual_clock.start + timedelta(seconds=70)
