"""SimTransport on virtual time: results, timeouts and connection faults at the right instants."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import timedelta

import pytest

from sysflow.clock import ManualClock
from sysflow.errors import (
    CommandTimeout,
    ConnectionFailed,
    ConnectTimeout,
    HostKeyMismatch,
    HostUnreachable,
    TransportError,
)
from sysflow.model.inventory import Inventory
from sysflow.sim.fleet import Recorded, SimFleet
from sysflow.sim.loop import DEFAULT_START, VirtualClock, run_virtual
from sysflow.sim.profile import Fixed, Flap, HostFault, Partition, Rule, SimProfile
from sysflow.sim.transport import SimTransport, TransportState
from sysflow.transport import Transport

CHAIN = (
    "tar czf /var/backups/etc.tgz /etc",
    "apt-get update",
    "apt-get -y upgrade",
    "systemctl restart nginx",
    "curl -fsS http://localhost/health",
)


def fixed(name: str, match: str, seconds: float) -> Rule:
    return Rule(name=name, match=match, duration=Fixed(seconds=seconds))


async def test_a_command_takes_its_duration(inventory: Inventory, virtual_clock: VirtualClock) -> None:
    profile = SimProfile(rules=[fixed("work", "^work", 600)])
    async with SimTransport(SimFleet(inventory, profile)) as tr:
        assert isinstance(tr, Transport)
        result = await tr.run("web1", "work hard", timeout=601)
    assert tr.state is TransportState.CLOSED
    assert result.ok
    assert (result.start, result.end) == (DEFAULT_START, DEFAULT_START + timedelta(seconds=600))
    assert virtual_clock.monotonic() == 600
    assert result.stdout_sha256
    with pytest.raises(TransportError, match="closed"):
        await tr.run("web1", "work")


async def test_timeout_fires_at_the_right_instant(inventory: Inventory, virtual_clock: VirtualClock) -> None:
    tr = SimTransport(SimFleet(inventory, SimProfile(rules=[fixed("work", "^work", 600)])))
    await asyncio.sleep(5)
    with pytest.raises(CommandTimeout) as info:
        await tr.run("web1", "work", timeout=120)
    assert info.value.timeout == 120
    assert info.value.host == "web1"
    assert virtual_clock.monotonic() == 125
    assert (tr.trace[-1].start, tr.trace[-1].end, tr.trace[-1].error) == (5, 125, "CommandTimeout")


async def test_hang_until_the_timeout(inventory: Inventory, virtual_clock: VirtualClock) -> None:
    profile = SimProfile(hosts=[HostFault(hosts="db1", hang="apt-get")], hang_limit=7200)
    tr = SimTransport(SimFleet(inventory, profile))
    with pytest.raises(CommandTimeout):
        await tr.run("db1", "apt-get -y upgrade", timeout=900)
    assert virtual_clock.monotonic() == 900
    with pytest.raises(ConnectionFailed, match="simulated hang"):
        await tr.run("db1", "apt-get update")
    assert virtual_clock.monotonic() == 900 + 7200
    assert (await tr.run("db1", "uname -r")).ok


async def test_unreachable_hosts(inventory: Inventory, virtual_clock: VirtualClock) -> None:
    profile = SimProfile(
        hosts=[
            HostFault(hosts="web1", unreachable="refused"),
            HostFault(hosts="web2", unreachable="timeout"),
        ],
        connect_timeout=15,
    )
    tr = SimTransport(SimFleet(inventory, profile))
    with pytest.raises(HostUnreachable, match="refused"):
        await tr.run("web1", "true")
    assert virtual_clock.monotonic() == 0
    with pytest.raises(ConnectTimeout, match="after 15s"):
        await tr.run("web2", "true")
    assert virtual_clock.monotonic() == 15
    with pytest.raises(HostUnreachable, match="not in the inventory"):
        await tr.run("nosuch", "true")
    assert [r.error for r in tr.trace] == ["HostUnreachable", "ConnectTimeout", "HostUnreachable"]


async def test_partition_surfaces_at_the_right_times(
    inventory: Inventory, virtual_clock: VirtualClock
) -> None:
    profile = SimProfile(
        rules=[fixed("work", "^work", 600)],
        partitions=[Partition(datacenter="fra", start=1800, end=3600)],
        connect_timeout=10,
    )
    tr = SimTransport(SimFleet(inventory, profile))

    async def at(t: float, host: str) -> tuple[str, float]:
        await asyncio.sleep(t)
        try:
            await tr.run(host, "work")
        except ConnectionFailed as exc:
            return type(exc).__name__, virtual_clock.monotonic()
        return "ok", virtual_clock.monotonic()

    async with asyncio.TaskGroup() as tg:
        runs = [
            tg.create_task(at(1500, "db1")),  # partition starts mid-command: lost at 1800
            tg.create_task(at(2000, "db2")),  # connect during the partition: timeout after 10 s
            tg.create_task(at(2000, "web1")),  # other datacenter: unaffected
            tg.create_task(at(3600, "lb1")),  # partition over
            tg.create_task(at(500, "lb1")),  # ends before the partition
        ]
    assert [r.result() for r in runs] == [
        ("ConnectionFailed", 1800),
        ("ConnectTimeout", 2010),
        ("ok", 2600),
        ("ok", 4200),
        ("ok", 1100),
    ]


async def test_partition_by_segment_hosts_and_absolute_times(inventory: Inventory) -> None:
    profile = SimProfile(
        partitions=[
            Partition(segment="dmz", start=0, end=100),
            Partition(hosts="web*:!web3", start=DEFAULT_START, end=DEFAULT_START + timedelta(seconds=100)),
        ]
    )
    fleet = SimFleet(inventory, profile)
    down = [h for h in inventory.hosts if fleet.connect_fault(h, 50) is not None]
    assert down == ["web1", "web2", "lb1"]
    assert all(fleet.connect_fault(h, 100) is None for h in inventory.hosts)


async def test_flapping_host(inventory: Inventory, virtual_clock: VirtualClock) -> None:
    flap = Flap(up=600, down=120, offset=60)  # up 60-660, down 660-780, up 780-1380, down 1380-1500
    profile = SimProfile(rules=[fixed("work", "^work", 300)], hosts=[HostFault(hosts="web3", flap=flap)])
    tr = SimTransport(SimFleet(inventory, profile))
    outcomes: list[tuple[str, float]] = []
    for start in (0, 500, 700, 800, 1390):
        await asyncio.sleep(start - virtual_clock.monotonic())
        try:
            await tr.run("web3", "work")
            outcomes.append(("ok", virtual_clock.monotonic()))
        except ConnectionFailed as exc:
            outcomes.append((type(exc).__name__, virtual_clock.monotonic()))
    assert outcomes == [
        ("ok", 300),
        ("ConnectionFailed", 660),  # lost when the host went down
        ("HostUnreachable", 700),  # down at connect
        ("ok", 1100),
        ("HostUnreachable", 1390),
    ]


async def test_reboot_takes_the_host_down(inventory: Inventory, virtual_clock: VirtualClock) -> None:
    tr = SimTransport(SimFleet(inventory, SimProfile(rules=[fixed("reboot", "reboot", 2)])))
    # the profile's rule shadows the default one: a reboot without downtime
    assert (await tr.run("web1", "reboot")).ok
    assert (await tr.run("web1", "true")).ok
    tr = SimTransport(SimFleet(inventory))
    await tr.run("web1", "sudo reboot")
    t = virtual_clock.monotonic()
    with pytest.raises(HostUnreachable, match="rebooting"):
        await tr.run("web1", "true")
    await asyncio.sleep(90)
    assert (await tr.run("web1", "uname -r")).ok
    assert virtual_clock.monotonic() > t + 90


async def _run_chains(seed: int, order: list[str], inventory: Inventory) -> str:
    profile = SimProfile(failure_probability={"upgrade_packages": 0.3})
    tr = SimTransport(SimFleet(inventory, profile, seed))
    sem = asyncio.Semaphore(2)

    async def chain(host: str) -> None:
        async with sem:
            for command in CHAIN:
                result = await tr.run(host, command, timeout=300)
                if not result.ok:
                    return

    async with asyncio.TaskGroup() as tg:
        for host in order:
            tg.create_task(chain(host))
    per_host = sorted(tr.trace, key=lambda r: (r.host, r.start))
    # durations rounded: end - start of the same sample differs in the last bits at other instants
    return json.dumps(
        [(r.host, r.command, round(r.end - r.start, 6), r.exit_status, r.stdout, r.stderr) for r in per_host]
    )


def test_same_seed_same_results_byte_for_byte(inventory: Inventory) -> None:
    hosts = list(inventory.hosts)
    a = run_virtual(_run_chains(7, hosts, inventory))
    b = run_virtual(_run_chains(7, hosts, inventory))
    assert a == b
    assert run_virtual(_run_chains(8, hosts, inventory)) != a


def test_concurrency_order_does_not_change_what_a_host_samples(inventory: Inventory) -> None:
    hosts = list(inventory.hosts)
    shuffled = hosts[:]
    random.Random(3).shuffle(shuffled)
    assert shuffled != hosts
    assert run_virtual(_run_chains(7, hosts, inventory)) == run_virtual(_run_chains(7, shuffled, inventory))


def test_trace_json_is_deterministic(inventory: Inventory) -> None:
    async def main() -> str:
        tr = SimTransport(SimFleet(inventory, seed=11))
        async with asyncio.TaskGroup() as tg:
            for host in inventory.hosts:
                for command in CHAIN[:2]:
                    tg.create_task(tr.run(host, command))
        return tr.recorded_trace().to_json()

    assert run_virtual(main()) == run_virtual(main())


async def test_works_on_a_manual_clock(inventory: Inventory) -> None:
    clock = ManualClock()
    tr = SimTransport(
        SimFleet(inventory, SimProfile(rules=[fixed("work", "^work", 42)])), clock, record=False
    )
    result = await tr.run("web1", "work")
    assert result.duration == 42
    assert clock.monotonic() == 42
    assert tr.trace == []


async def test_replayed_connection_errors(inventory: Inventory, virtual_clock: VirtualClock) -> None:
    replay = [
        ("web1", "true", Recorded(3.0, None, error="HostKeyMismatch")),
        ("web1", "true", Recorded(4.0, None, error="CommandTimeout")),
        ("web1", "true", Recorded(2.0, 0, "yes\n")),
    ]
    tr = SimTransport(SimFleet(inventory, replay=replay))
    with pytest.raises(HostKeyMismatch):
        await tr.run("web1", "true")
    assert virtual_clock.monotonic() == 3
    with pytest.raises(CommandTimeout):
        await tr.run("web1", "true", timeout=60)
    assert virtual_clock.monotonic() == 63
    result = await tr.run("web1", "true")
    assert (result.stdout, result.duration) == ("yes\n", 2)
    assert (await tr.run("web1", "true")).duration == 1.0  # past the recording: the rules again


async def test_open_connections_and_cancellation(inventory: Inventory, virtual_clock: VirtualClock) -> None:
    tr = SimTransport(SimFleet(inventory, SimProfile(rules=[fixed("work", "^work", 600)])))
    task = asyncio.create_task(tr.run("web1", "work"))
    await asyncio.sleep(10)
    assert tr.open_connections == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert tr.open_connections == 0
    assert virtual_clock.monotonic() == 10
    assert tr.trace == []  # a cancelled command leaves no record
