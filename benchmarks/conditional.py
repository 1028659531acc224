"""Benchmark: the cost of conditional workflows (templates, `when`, facts) over plain ones.

Three figures:

* ``render``: renders per second of a command template with three quoted values and one raw;
* ``condition``: evaluations per second of a `when` expression (comparison, `in`, `version()`);
* ``engine``: the real engine on a simulated fleet (virtual time, no planning), a 3-task chain run
  plain, then templated with a `when` on facts (facts gathered once per host: 6 probe commands).
  Wall and CPU seconds, operations per wall second, and the conditional/plain CPU ratio.

    python benchmarks/conditional.py [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

# Run as a script, this directory is sys.path[0]; its other scripts (calendar.py) would shadow stdlib.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

from sysflow.engine.engine import Engine
from sysflow.model.conditions import parse_condition
from sysflow.model.inventory import Inventory
from sysflow.model.templates import render
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.sim.fleet import SimFleet
from sysflow.sim.loop import current_virtual_clock, run_virtual
from sysflow.sim.transport import SimTransport

TEMPLATE = (
    "tar -czf {{ vars.backup_dir }}/{{ host.name }}.tgz {{ vars.paths }} && echo {{ facts.os_family | raw }}"
)
CONTEXT = {
    "host": {"name": "web01"},
    "vars": {"backup_dir": "/var/backups/etc dir", "paths": "/etc; rm -rf /"},
    "facts": {"os_family": "Debian", "distribution_version": "12"},
}
CONDITION = "facts.os_family in ['Debian', 'Ubuntu'] and version(facts.distribution_version) >= '11'"


def bench_render(n: int) -> dict[str, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        render(TEMPLATE, CONTEXT)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"renders": n, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "per_cpu_s": round(n / cpu)}


def bench_condition(n: int) -> dict[str, float]:
    cond = parse_condition(CONDITION)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        cond.evaluate(CONTEXT)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"evaluations": n, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "per_cpu_s": round(n / cpu)}


def _inventory(hosts: int) -> Inventory:
    inv = Inventory()
    names = [f"h{i:05d}" for i in range(hosts)]
    inv.add_group("fleet", names)
    inv.groups["fleet"].vars["backup_dir"] = "/var/backups"
    return inv


def _workflow(conditional: bool) -> MaintenanceWorkflow:
    wf = MaintenanceWorkflow("bench")
    if conditional:
        wf.add_task("backup", "tar -czf {{ vars.backup_dir }}/{{ host.name }}.tgz /etc")
        wf.add_task(
            "upgrade",
            "{% if facts.os_family == 'Debian' %}apt-get -y upgrade{% else %}dnf -y upgrade{% endif %}",
            depends_on="backup",
        )
        wf.add_task(
            "restart", "systemctl restart nginx", depends_on="upgrade", when="facts.service_mgr == 'systemd'"
        )
    else:
        wf.add_task("backup", "tar -czf /var/backups/h.tgz /etc")
        wf.add_task("upgrade", "apt-get -y upgrade", depends_on="backup")
        wf.add_task("restart", "systemctl restart nginx", depends_on="upgrade")
    wf.set_parallelization({"max_parallel_servers": 200})
    return wf


async def _run(hosts: int, conditional: bool) -> dict[str, Any]:
    clock = current_virtual_clock()
    inv = _inventory(hosts)
    transport = SimTransport(SimFleet(inv, None, seed=1, start=clock.start), clock)
    engine = Engine(inv, transport=transport, clock=clock, plan=False)
    t0, c0 = time.perf_counter(), time.process_time()
    result = await engine.run(_workflow(conditional))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert not result.failed_servers or len(result.failed_servers) < hosts
    ops = len(result.ops)
    return {
        "hosts": hosts,
        "conditional": conditional,
        "status": result.status.value,
        "ops": ops,
        "commands": len(transport.trace),
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "ops_per_s": round(ops / wall),
    }


def bench_engine(hosts: int) -> dict[str, Any]:
    plain = run_virtual(_run(hosts, False))
    cond = run_virtual(_run(hosts, True))
    return {"plain": plain, "conditional": cond, "cpu_ratio": round(cond["cpu_s"] / plain["cpu_s"], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a few seconds)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    n, hosts = (5_000, 200) if args.quick else (50_000, 2_000)
    figures = {"render": bench_render(n), "condition": bench_condition(n), "engine": bench_engine(hosts)}
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
