"""Durable and adaptive runs: run-store overhead, re-plan latency, failure-to-rollback latency.

    python benchmarks/durable.py [--hosts 10000] [--quick] [--json FILE]

* store overhead: the same simulated run (hosts × 5 tasks, virtual time) with the run store in a file
  and in memory (``:memory:``); the ratio of wall times (median of repeats, interleaved).
* re-plan latency: ``Replanner.replan`` of the run's plan with 30 % of the hosts done.
* failure-to-rollback latency: on the simulator, from the failing operation's result to the first
  rollback command sent, in wall seconds (and virtual seconds), while other hosts of the wave are busy.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sysflow.engine.adaptive import Replanner
from sysflow.engine.engine import Engine
from sysflow.engine.events import Event, EventKind
from sysflow.engine.result import OpRecord
from sysflow.engine.states import OpState
from sysflow.model.inventory import Inventory
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.sim.fleet import SimFleet
from sysflow.sim.loop import current_virtual_clock, run_virtual
from sysflow.sim.profile import HostFault, SimProfile
from sysflow.sim.transport import SimTransport


def inventory(n: int) -> Inventory:
    inv = Inventory()
    per = max(1, n // 10)
    for g in range(10):
        inv.add_group(f"g{g}", [f"h{g}-{i:05d}" for i in range(per)], vars={"datacenter": f"dc{g % 3}"})
    return inv


def workflow(*, rollback: bool = False) -> MaintenanceWorkflow:
    wf = MaintenanceWorkflow("durable-bench")
    rb = {"rollback": "restore /backup/packages"} if rollback else {}
    wf.add_task("backup", "tar -czf /backup/etc.tgz /etc", expected_duration=25)
    wf.add_task("update", "apt-get update", depends_on=["backup"], expected_duration=20)
    wf.add_task(
        "upgrade", "apt-get -y upgrade", depends_on=["update"], expected_duration=120, timeout=900, **rb
    )
    wf.add_task("restart", "systemctl restart nginx", depends_on=["upgrade"], expected_duration=3)
    wf.add_task("verify", "curl -s http://localhost/health", depends_on=["restart"], expected_duration=1)
    wf.set_progressive_execution(
        {"strategy": "rolling", "serial": [1, "10%", "100%"], "auto_rollback": rollback}
    )
    wf.set_parallelization({"max_parallel_servers": 200})
    return wf


def simulated_run(n: int, store: str) -> float:
    inv = inventory(n)
    wf = workflow()

    async def main() -> float:
        clock = current_virtual_clock()
        fleet = SimFleet(inv, seed=1, start=clock.start)
        engine = Engine(inv, transport=SimTransport(fleet, record=False), clock=clock, store=store)
        t0 = time.perf_counter()
        result = await engine.run(wf)
        elapsed = time.perf_counter() - t0
        assert len(result.successful_servers) == len(inv), result.summary()
        return elapsed

    return run_virtual(main())


def store_overhead(n: int, repeats: int) -> dict[str, Any]:
    file_s, memory_s = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):  # interleaved, so load changes hit both alike
            file_s.append(simulated_run(n, str(Path(tmp) / f"state-{i}.db")))
            memory_s.append(simulated_run(n, ":memory:"))
    f, m = statistics.median(file_s), statistics.median(memory_s)
    return {
        "hosts": n,
        "ops": 5 * n,
        "file_s": round(f, 3),
        "memory_s": round(m, 3),
        "store_overhead_ratio": round(f / m, 3),
    }


def replan_latency(n: int) -> dict[str, Any]:
    inv = inventory(n)
    wf = workflow()

    async def main() -> dict[str, Any]:
        clock = current_virtual_clock()
        engine = Engine(inv, transport=SimTransport(SimFleet(inv, start=clock.start)), clock=clock)
        run = engine.prepare(wf)
        plan = run.replanner.plan if run.replanner else None
        assert plan is not None
        starts = plan.assignment.starts
        chains = {c.host: c for c in plan.problem.chains}
        done_hosts = sorted(starts, key=lambda h: starts[h][0])[: int(0.3 * len(starts))]
        records: dict[str, OpRecord] = {}
        slow = 1.5  # they ran 1.5x slower than planned
        for h in done_hosts:
            c = chains[h]
            t = starts[h][0]
            for op, d in zip(c.ops, c.durations, strict=True):
                begin = plan.at(int(t))
                t += d * slow
                records[op] = OpRecord(
                    op, h, op.split("@")[0], c.wave, OpState.SUCCEEDED, start=begin, end=plan.at(int(t))
                )
        replanner = Replanner(plan)
        for rec in records.values():
            replanner.observe(rec)
        now = max(r.end for r in records.values() if r.end) + timedelta(seconds=1)
        t0 = time.perf_counter()
        swap = replanner.replan(records, run.durations, now)
        elapsed = time.perf_counter() - t0
        return {
            "hosts": n,
            "done_fraction": 0.3,
            "replan_s": round(elapsed, 3),
            "swapped": swap is not None,
            "drift": round(Replanner(plan).drift, 3),
        }

    return run_virtual(main())


def rollback_latency(n: int) -> dict[str, Any]:
    inv = inventory(n)
    wf = workflow(rollback=True)
    wf.set_progressive_execution({"strategy": "rolling", "serial": [n], "auto_rollback": True})
    victim = next(iter(inv.hosts))
    profile = SimProfile(hosts=[HostFault(hosts=victim, hang="apt-get -y upgrade")])
    marks: dict[str, tuple[float, float]] = {}

    class Watch:
        def on_event(self, event: Event) -> None:
            key = None
            if (
                event.kind is EventKind.OP_FINISHED
                and event.data.get("state") == "failed"
                and "fail" not in marks
            ):
                key = "fail"
            elif event.kind is EventKind.OP_STARTED and str(event.task or "").startswith("rollback:"):
                key = "rollback"
            elif event.kind is EventKind.ROLLBACK_STARTED:
                key = "announced"
            if key and key not in marks:
                marks[key] = (time.perf_counter(), event.at.timestamp())

    async def main() -> None:
        clock = current_virtual_clock()
        fleet = SimFleet(inv, profile, seed=2, start=clock.start)
        transport = RollbackSpy(fleet, marks)
        engine = Engine(inv, transport=transport, clock=clock, observers=[Watch()])
        await engine.run(wf)

    run_virtual(main())
    fail, first = marks["fail"], marks["rollback"]
    return {
        "hosts": n,
        "rollback_latency_s": round(first[0] - fail[0], 4),
        "rollback_latency_virtual_s": round(first[1] - fail[1], 3),
    }


class RollbackSpy(SimTransport):
    """Notes when the first rollback command is sent."""

    def __init__(self, fleet: SimFleet, marks: dict[str, tuple[float, float]]) -> None:
        super().__init__(fleet, record=False)
        self.marks = marks

    async def run(self, host: str, command: str, **kw: Any) -> Any:
        if command.startswith("restore") and "rollback" not in self.marks:
            self.marks["rollback"] = (time.perf_counter(), self.clock.now().timestamp())
        return await super().run(host, command, **kw)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="1,000 hosts, one repeat")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    n, repeats = (1000, 1) if args.quick else (args.hosts, args.repeats)
    rows = [
        {"measure": "store_overhead", **store_overhead(n, repeats)},
        {"measure": "replan", **replan_latency(n)},
        {"measure": "rollback_latency", **rollback_latency(min(n, 1000))},
    ]
    for row in rows:
        print("  ".join(f"{k}={v}" for k, v in row.items()))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
