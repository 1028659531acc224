"""Benchmark: 1,000 and 10,000 simulated hosts × a 5-task chain in a 4-hour window, concurrency 200.

Each host runs the patching chain (backup, apt-get update, apt-get -y upgrade, systemctl restart
nginx, curl health check) with the default rule set's lognormal durations (mean 173.5 s per host)
and a 2 % upgrade failure rate (a failed host stops its chain). 200 hosts are worked on at once, on a
virtual-time loop, two ways:

* ``transport``: 200 worker tasks drive ``SimTransport`` directly;
* ``hostpool``: the same workers hand each host's chain to a ``HostPool`` actor (max_in_flight 200)
  over the same ``SimTransport``.

Printed and written per run: simulated makespan (and whether it fits the 4-hour window), the lower
bound (total work / 200), wall and CPU seconds, operations per wall second. Target: 10,000 hosts
in under 10 s wall. On a shared, loaded machine, CPU seconds are the steadier figure.

    python benchmarks/sim_scale.py [--quick] [--json FILE] [--seed N] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

# Run as a script, this directory is sys.path[0]; its other scripts (calendar.py) would shadow stdlib.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

from sysflow.model.inventory import Inventory
from sysflow.sim.fleet import SimFleet
from sysflow.sim.loop import current_virtual_clock, run_virtual
from sysflow.sim.profile import SimProfile
from sysflow.sim.transport import SimTransport

CHAIN = (
    ("backup", "tar czf /var/backups/etc.tgz /etc"),
    ("update", "apt-get update"),
    ("upgrade", "apt-get -y upgrade"),
    ("restart", "systemctl restart nginx"),
    ("health", "curl -fsS http://localhost/health"),
)
CONCURRENCY = 200
WINDOW = 4 * 3600.0  # seconds
TIMEOUT = 1800.0  # per command
SIZES = (1_000, 10_000)


def make_inventory(hosts: int) -> Inventory:
    """``hosts`` hosts in 20 groups across two datacenters."""
    inventory = Inventory()
    groups = 20
    for g in range(groups):
        names = [f"g{g:02d}-h{i:05d}" for i in range(g, hosts, groups)]
        inventory.add_group(f"group{g:02d}", names, vars={"datacenter": "ams" if g % 2 else "fra"})
    return inventory


Chain = Callable[[str], Awaitable[bool]]


def transport_chain(transport: SimTransport) -> Chain:
    async def chain(host: str) -> bool:
        for _task, command in CHAIN:
            result = await transport.run(host, command, timeout=TIMEOUT)
            if not result.ok:
                return False
        return True

    return chain


def hostpool_chain(transport: SimTransport) -> tuple[Chain, Any]:
    from sysflow.actors.hostpool import HostPool
    from sysflow.actors.ops import OpRequest

    pool = HostPool("sim", transport, clock=current_virtual_clock(), max_in_flight=CONCURRENCY)

    async def chain(host: str) -> bool:
        for task, command in CHAIN:
            req = OpRequest(op_id=f"{task}@{host}", host=host, task=task, command=command, timeout=TIMEOUT)
            if not (await pool.run_op(req)).ok:
                return False
        return True

    return chain, pool


async def simulate(hosts: int, mode: str, seed: int) -> dict[str, Any]:
    inventory = make_inventory(hosts)
    fleet = SimFleet(inventory, SimProfile(failure_probability={"upgrade_packages": 0.02}), seed)
    transport = SimTransport(fleet)
    pool = None
    if mode == "hostpool":
        chain, pool = hostpool_chain(transport)
    else:
        chain = transport_chain(transport)
    queue = list(reversed(inventory.hosts))
    failed: list[str] = []

    async def worker() -> None:
        while queue:
            host = queue.pop()
            if not await chain(host):
                failed.append(host)

    loop = asyncio.get_running_loop()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    async with asyncio.TaskGroup() as tg:
        for _ in range(CONCURRENCY):
            tg.create_task(worker())
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    if pool is not None:
        await pool.close()
    makespan = loop.time()
    work = sum(r.duration for r in transport.trace)
    ops = len(transport.trace)
    return {
        "hosts": hosts,
        "mode": mode,
        "operations": ops,
        "failed_hosts": len(failed),
        "makespan_s": round(makespan, 1),
        "makespan_h": round(makespan / 3600, 3),
        "fits_window": makespan <= WINDOW,
        "lower_bound_s": round(work / CONCURRENCY, 1),
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "ops_per_wall_s": round(ops / wall),
        "ops_per_cpu_s": round(ops / cpu),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 hosts only")
    parser.add_argument("--json", type=Path, help="write results here")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--modes", default="transport,hostpool")
    parser.add_argument("--profile", action="store_true", help="cProfile the largest run, print the top 25")
    args = parser.parse_args()
    sizes = SIZES[:1] if args.quick else SIZES
    rows = []
    for hosts in sizes:
        for mode in args.modes.split(","):
            if args.profile and hosts == sizes[-1]:
                prof = cProfile.Profile()
                row = prof.runcall(run_virtual, simulate(hosts, mode, args.seed))
                pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
            else:
                row = run_virtual(simulate(hosts, mode, args.seed))
            rows.append(row)
            print_row(row)
    if args.json:
        args.json.write_text(json.dumps({"benchmark": "sim_scale", "runs": rows}, indent=1) + "\n")


def print_row(row: dict[str, Any]) -> None:
    if not getattr(print_row, "header", False):
        print(
            f"{'hosts':>7} {'mode':>10} {'ops':>7} {'failed':>6} {'makespan':>10} {'in 4h':>6} "
            f"{'bound':>9} {'wall s':>8} {'cpu s':>8} {'ops/s':>8}"
        )
        print_row.header = True  # type: ignore[attr-defined]
    print(
        f"{row['hosts']:>7} {row['mode']:>10} {row['operations']:>7} {row['failed_hosts']:>6} "
        f"{row['makespan_h']:>9.2f}h {'yes' if row['fits_window'] else 'NO':>6} "
        f"{row['lower_bound_s'] / 3600:>8.2f}h {row['wall_s']:>8.2f} {row['cpu_s']:>8.2f} {row['ops_per_wall_s']:>8}"
    )


if __name__ == "__main__":
    main()
