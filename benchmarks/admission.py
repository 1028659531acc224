"""Admission benchmark: acquire/release cycles against 50 pools, 10 rate limits and a disruption budget.

The constraint set: ``max_parallel_servers`` (1 pool instance), ``max_parallel_per_group`` over 20
groups (20), ``max_parallel_per_datacenter`` over 5 datacenters (5), a global bandwidth pool (1), a
per-segment link pool over 10 segments (10) and a per-task slot pool over 13 tasks (13): 50 pool
instances. Rate limits: a package mirror per datacenter (5) and five global limits on single tasks
(5): 10 instances. A disruption budget of 20 % per group (20 instances, 2,000 hosts).

Each cycle grants one operation (``try_acquire``), releases it, and ends the host's maintenance
after its last operation (``host_done``); the manual clock moves 0.1 ms per cycle. Three runs:

* ``sync``: uncontended ``try_acquire``/``release`` (every request granted): the raw cost;
* ``async``: the same through ``await acquire()``;
* ``contended``: 64 asyncio workers over 2,000 host chains with tight capacities, so requests
  queue, wait for releases and for rate windows (FIFO), grants/s counted over the whole run.

Target (issue 3): over 100,000 grants per second. Wall and CPU time are both reported.

    python benchmarks/admission.py [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sysflow.clock import ManualClock
from sysflow.constraints import Admission, Grant, Limits
from sysflow.planner.graph import Operation

GROUPS = [f"grp{i}" for i in range(20)]
DCS = [f"dc{i}" for i in range(5)]
SEGMENTS = [f"seg{i}" for i in range(10)]
TASKS = [f"task{i}" for i in range(13)]
HOSTS = 2_000
TASKS_PER_HOST = 4


def config(tight: bool) -> dict[str, Any]:
    big = 10**6
    return {
        "max_parallel_servers": 40 if tight else big,
        "max_parallel_per_group": 4 if tight else big,
        "max_parallel_per_datacenter": 12 if tight else big,
        "pools": [
            {"name": "bandwidth", "capacity": 400 if tight else big, "unit": "MB/s", "default_demand": 10},
            {"name": "link", "capacity": 8 if tight else big, "scope": "segment", "default_demand": 1},
            {"name": "slots", "capacity": 10 if tight else big, "scope": "task", "default_demand": 1},
        ],
        "rate_limits": [
            {"name": "mirror", "max_starts": 200 if tight else big, "per": "1s", "scope": "datacenter"},
            *(
                {"name": f"api{i}", "max_starts": 100 if tight else big, "per": "1s", "tasks": [TASKS[i]]}
                for i in range(5)
            ),
        ],
        "disruption_budget": {"max_unavailable": "20%"},
    }


def operations() -> list[list[Operation]]:
    chains = []
    for h in range(HOSTS):
        host = f"h{h:05d}"
        group = GROUPS[h % len(GROUPS)]
        chain = [
            Operation(
                id=f"{task}@{host}",
                host=host,
                task=task,
                wave=0,
                index=k,
                group=group,
                groups=(group,),
                datacenter=DCS[h % len(DCS)],
                segment=SEGMENTS[h % len(SEGMENTS)],
                command="true",
                expected_duration=1.0,
                demands=(("bandwidth", 25.0),) if k == 0 else (),
            )
            for k, task in enumerate(TASKS[(h + j) % len(TASKS)] for j in range(TASKS_PER_HOST))
        ]
        chains.append(chain)
    return chains


@dataclass
class Result:
    run: str
    cycles: int
    grants: int
    denials: int
    wall_s: float
    cpu_s: float

    def row(self) -> dict[str, Any]:
        return self.__dict__ | {
            "grants_per_s_wall": self.grants / self.wall_s,
            "grants_per_s_cpu": self.grants / self.cpu_s,
        }


def build(tight: bool, chains: list[list[Operation]]) -> tuple[Admission, ManualClock, int]:
    limits = Limits.from_ops(config(tight), [op for chain in chains for op in chain])
    pools = len(limits.pools())
    rates = len(limits.rates())
    assert (pools, rates) == (50, 10), (pools, rates)
    clock = ManualClock()
    return Admission(limits, clock), clock, len(limits.budgets())


def run_sync(cycles: int, chains: list[list[Operation]]) -> Result:
    adm, clock, _ = build(False, chains)
    flat = [(op, k == len(chain) - 1) for chain in chains for k, op in enumerate(chain)]
    n = len(flat)
    denials = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(cycles):
        op, last = flat[i % n]
        clock.advance(0.0001)
        grant = adm.try_acquire(op)
        if isinstance(grant, Grant):
            adm.release(grant)
        else:
            denials += 1
        if last:
            adm.host_done(op.host)
    return Result(
        "sync", cycles, cycles - denials, denials, time.perf_counter() - t0, time.process_time() - c0
    )


def run_async(cycles: int, chains: list[list[Operation]]) -> Result:
    adm, clock, _ = build(False, chains)
    flat = [(op, k == len(chain) - 1) for chain in chains for k, op in enumerate(chain)]
    n = len(flat)

    async def main() -> None:
        for i in range(cycles):
            op, last = flat[i % n]
            clock.advance(0.0001)
            adm.release(await adm.acquire(op))
            if last:
                adm.host_done(op.host)

    t0, c0 = time.perf_counter(), time.process_time()
    asyncio.run(main())
    return Result("async", cycles, cycles, 0, time.perf_counter() - t0, time.process_time() - c0)


def run_contended(cycles: int, chains: list[list[Operation]]) -> Result:
    adm, clock, _ = build(True, chains)
    queue = [chain for _ in range(cycles // (HOSTS * TASKS_PER_HOST) + 1) for chain in chains]
    grants = 0
    denials_seen = 0

    async def worker(todo: list[list[Operation]]) -> None:
        nonlocal grants, denials_seen
        while todo and grants < cycles:
            chain = todo.pop()
            for op in chain:
                result = adm.try_acquire(op)
                if not isinstance(result, Grant):
                    denials_seen += 1  # counted, then wait in line for a grant
                    result = await adm.acquire(op)
                grants += 1
                await clock.sleep(0.001)
                adm.release(result)
            adm.host_done(chain[0].host)

    async def main() -> None:
        await asyncio.gather(*(worker(queue) for _ in range(64)))

    t0, c0 = time.perf_counter(), time.process_time()
    asyncio.run(main())
    return Result(
        "contended", cycles, grants, denials_seen, time.perf_counter() - t0, time.process_time() - c0
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 cycles per run instead of 200,000")
    parser.add_argument("--json", type=Path, help="write results here")
    args = parser.parse_args()
    cycles = 20_000 if args.quick else 200_000
    chains = operations()
    results = [run_sync(cycles, chains), run_async(cycles, chains), run_contended(cycles // 4, chains)]
    head = ("run", "cycles", "grants", "denials", "wall s", "cpu s", "grants/s wall", "grants/s cpu")
    print(" ".join(f"{h:>13}" for h in head))
    rows = [r.row() for r in results]
    for r in rows:
        print(
            f"{r['run']:>13} {r['cycles']:>13} {r['grants']:>13} {r['denials']:>13} {r['wall_s']:>13.3f} "
            f"{r['cpu_s']:>13.3f} {r['grants_per_s_wall']:>13,.0f} {r['grants_per_s_cpu']:>13,.0f}"
        )
    target = {"sync_over_100k_grants_per_s (wall)": rows[0]["grants_per_s_wall"] > 100_000,
              "sync_over_100k_grants_per_s (cpu)": rows[0]["grants_per_s_cpu"] > 100_000}  # fmt: skip
    print(f"targets: {target}")
    if args.json:
        meta = {"python": platform.python_version(), "machine": platform.machine(), "quick": args.quick}
        args.json.write_text(
            json.dumps({"benchmark": "admission", "meta": meta, "rows": rows, "targets": target}, indent=2)
        )


if __name__ == "__main__":
    main()
