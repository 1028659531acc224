"""Benchmark: compile and validate workflows of 1,000 / 10,000 / 50,000 operations.

A 5-task DAG (backup, update, upgrade -> restart, verify) over 200 / 2,000 / 10,000 hosts in 20
groups, two datacenters, rolling rollout in 10 % batches, windows per group and a bandwidth pool.
Each size is built once and compiled ``--repeats`` times; the median wall and CPU times are reported
(CPU time is the steadier figure on a shared machine). Targets: 10,000
operations well under 0.3 s, 50,000 under 1.5 s.

    python benchmarks/compile.py [--quick] [--repeats N] [--json FILE]
"""

from __future__ import annotations

import sys

# Run as a script, this directory is sys.path[0]: keep sibling scripts (calendar.py, ...) from
# shadowing standard-library modules of the same name.
sys.path[:] = [p for p in sys.path if p not in ("", __file__.rpartition("/")[0] or ".")]

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from sysflow.model.inventory import Inventory  # noqa: E402
from sysflow.model.workflow import MaintenanceWorkflow  # noqa: E402
from sysflow.planner.compile import compile_workflow  # noqa: E402

GROUPS = 20
TASKS = 5
SIZES = (200, 2_000, 10_000)


def make_inventory(hosts: int) -> Inventory:
    """``hosts`` hosts in 20 groups across two datacenters."""
    inventory = Inventory()
    per_group = hosts // GROUPS
    for g in range(GROUPS):
        names = [f"g{g:02d}-h{i:05d}.example.com" for i in range(per_group)]
        inventory.add_group(f"group{g:02d}", names, vars={"datacenter": "ams" if g % 2 else "fra"})
    return inventory


def make_workflow() -> MaintenanceWorkflow:
    """The 5-task patching DAG with a rolling rollout, windows and a bandwidth pool."""
    wf = MaintenanceWorkflow("bench")
    wf.set_parallelization(
        {"max_parallel_servers": 200, "pools": [{"name": "uplink", "capacity": 1000, "scope": "datacenter"}]}
    )
    wf.add_task("backup", "tar czf /backup/etc.tgz /etc", expected_duration="2m")
    wf.add_task("update", "apt-get update", resources={"uplink": 10})
    wf.add_task(
        "upgrade", "apt-get -y upgrade", depends_on=["update"], rollback="apt-get -y install --reinstall"
    )
    wf.add_task("restart", "systemctl restart app", depends_on=["upgrade", "backup"])
    wf.add_task("verify", "curl -fs http://localhost/health", depends_on=["restart"])
    wf.set_progressive_execution({"strategy": "rolling", "serial": [1, "10%"], "max_failures": "5%"})
    wf.set_maintenance_window({f"group{g:02d}": "Sunday 01:00-05:00" for g in range(GROUPS)})
    return wf


def measure(hosts: int, repeats: int) -> dict[str, float | int]:
    inventory, workflow = make_inventory(hosts), make_workflow()
    compile_workflow(workflow, inventory)  # warm-up: the first call also pays for importing networkx
    wall, cpu = [], []
    ops = 0
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        graph = compile_workflow(workflow, inventory)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        ops = len(graph)
    return {
        "ops": ops,
        "hosts": hosts,
        "seconds": round(statistics.median(wall), 4),
        "cpu_seconds": round(statistics.median(cpu), 4),
        "repeats": repeats,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="one repeat, skip the 50,000-op size")
    parser.add_argument("--json", type=Path, help="write rows {ops, seconds, ...} here")
    args = parser.parse_args()
    sizes = SIZES[:2] if args.quick else SIZES
    repeats = 1 if args.quick else args.repeats
    rows = [measure(h, repeats) for h in sizes]
    print(f"{'hosts':>8} {'ops':>8} {'median s':>10} {'cpu s':>8} {'ops/s':>10}")
    for r in rows:
        rate = r["ops"] / max(r["seconds"], 1e-9)
        print(f"{r['hosts']:>8} {r['ops']:>8} {r['seconds']:>10.4f} {r['cpu_seconds']:>8.4f} {rate:>10.0f}")
    if hasattr(os, "getloadavg"):
        print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
