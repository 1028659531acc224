"""Durable and adaptive runs: run-store overhead, re-plan latency, failure-to-rollback latency.

    python benchmarks/durable.py [--hosts 10000] [--quick] [--sshd-hosts 50] [--no-sshd] [--json FILE]

* store overhead: the same simulated run (hosts × 5 tasks, virtual time) with the run store in a file
  and in memory (``:memory:``); the ratio of wall times (median of repeats, interleaved).
* re-plan latency: ``Replanner.replan`` of the run's plan with 30 % of the hosts done.
* failure-to-rollback latency: on the simulator, from the failing operation's result to the first
  rollback command sent, in wall seconds (and virtual seconds), while other hosts of the wave are busy.
* failure-to-rollback latency over sshd: the same measure on the test sshd (``benchmarks/_sshd.py``),
  ~50 loopback hosts in one wave, one host's upgrade failing while the others' upgrades are still
  running (``sleep``): from the client receiving the failing result to the first rollback command
  handed to the SSH transport (``rollback_latency_s``), and to that command starting on the remote
  shell (``rollback_remote_latency_s``: same machine, so the remote ``date +%s%N`` shares the clock).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
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
from sysflow.transport import CommandResult, Transport


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


SSHD_BUSY_S = 3.0  # how long the other hosts' upgrades run (they are in flight when the victim fails)
SSHD_RUN_TIMEOUT_S = 120.0


def sshd_workflow(root: Path) -> MaintenanceWorkflow:
    """backup -> upgrade (rollback) on every host; the victim's upgrade fails at once, the rest sleep."""
    rb = f"date +%s%N >> {root}/rollback_started"
    wf = MaintenanceWorkflow("durable-sshd-bench")
    wf.add_task("backup", "true")
    wf.add_task("upgrade", f"sleep {SSHD_BUSY_S}", depends_on=["backup"], targets=["rest"], rollback=rb)
    wf.add_task("upgrade_bad", "exit 1", depends_on=["backup"], targets=["victim"], rollback=rb)
    wf.set_progressive_execution({"strategy": "rolling", "serial": ["100%"], "auto_rollback": True})
    wf.set_parallelization({"max_parallel_servers": 1000})
    return wf


class LatencySpy:
    """A Transport in front of SSH: notes when the failing result arrives and when the first
    rollback command is handed over (``time.time_ns``, comparable with the remote ``date``)."""

    def __init__(self, inner: Transport, marks: dict[str, int]) -> None:
        self.inner = inner
        self.marks = marks
        self.in_flight = 0  # commands handed over and not yet answered

    async def run(
        self,
        host: str,
        command: str,
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        stdin: str | bytes | None = None,
        cwd: str | None = None,
    ) -> CommandResult:
        if "rollback_started" in command:
            self.marks.setdefault("rollback_sent", time.time_ns())
        self.in_flight += 1
        try:
            result = await self.inner.run(host, command, timeout=timeout, env=env, stdin=stdin, cwd=cwd)
        finally:
            self.in_flight -= 1
        if command == "exit 1" and not result.ok:
            self.marks.setdefault("failed", time.time_ns())
            self.marks.setdefault("busy_at_failure", self.in_flight)
        return result

    async def close(self) -> None:
        await self.inner.close()


def sshd_rollback_latency(n: int, repeats: int = 1) -> dict[str, Any]:
    """Failure-to-rollback latency over the test sshd, ``n`` loopback hosts in one busy wave;
    ``repeats`` runs on one sshd, medians (and the worst) reported."""
    from _sshd import sshd_for_benchmark  # beside this script (sys.path[0])

    samples: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, sshd_for_benchmark(Path(tmp) / "sshd") as sshd:
        for i in range(repeats):
            root = Path(tmp) / f"run-{i}"
            root.mkdir()
            samples.append(_sshd_rollback_once(sshd, n, root))
    sent = [x["rollback_latency_s"] for x in samples]
    remote = [x["rollback_remote_latency_s"] for x in samples]
    return {
        "hosts": n,
        "transport": "sshd",
        "repeats": repeats,
        "status": sorted({x["status"] for x in samples}),
        "busy_at_failure": min(x["busy_at_failure"] for x in samples),
        "rolled_back_hosts": min(x["rolled_back_hosts"] for x in samples),
        "rollback_latency_s": round(statistics.median(sent), 4),
        "rollback_latency_max_s": round(max(sent), 4),
        "rollback_remote_latency_s": round(statistics.median(remote), 4),
        "rollback_remote_latency_max_s": round(max(remote), 4),
        "busy_s": SSHD_BUSY_S,
    }


def _sshd_rollback_once(sshd: Any, n: int, root: Path) -> dict[str, Any]:
    """One run of :func:`sshd_workflow` on ``sshd``; latencies from the spy's and the remote marks."""
    from sysflow.actors.auth import SSHAuth
    from sysflow.actors.ssh import SSHTransport
    from sysflow.engine.result import RunResult
    from tests.fixtures.sshd import host_names

    names = host_names(n, prefix="rb")
    inv = Inventory()
    inv.add_group("victim", names[:1])
    inv.add_group("rest", names[1:])
    marks: dict[str, int] = {}

    async def main() -> RunResult:
        auth = SSHAuth.from_keyfile(sshd.client_key)
        async with SSHTransport(sshd.settings(names), auth, known_hosts=sshd.known_hosts) as ssh:
            engine = Engine(inv, transport=LatencySpy(ssh, marks), store=root / "state.db")
            async with asyncio.timeout(SSHD_RUN_TIMEOUT_S):
                return await engine.run(sshd_workflow(root))

    result = asyncio.run(main())
    started = [int(line) for line in (root / "rollback_started").read_text().split()]
    failed = marks["failed"]
    return {
        "status": result.status.value,
        "busy_at_failure": marks["busy_at_failure"],
        "rolled_back_hosts": len(started),
        "rollback_latency_s": (marks["rollback_sent"] - failed) / 1e9,
        "rollback_remote_latency_s": (min(started) - failed) / 1e9,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="1,000 hosts, one repeat")
    ap.add_argument("--sshd-hosts", type=int, default=50, help="hosts of the sshd rollback leg")
    ap.add_argument("--no-sshd", action="store_true", help="skip the sshd leg (no openssh-server)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    n, repeats = (1000, 1) if args.quick else (args.hosts, args.repeats)
    rows = [
        {"measure": "store_overhead", **store_overhead(n, repeats)},
        {"measure": "replan", **replan_latency(n)},
        {"measure": "rollback_latency", **rollback_latency(min(n, 1000))},
    ]
    if not args.no_sshd:
        rows.append({"measure": "rollback_latency_sshd", **sshd_rollback_latency(args.sshd_hosts, repeats)})
    for row in rows:
        print("  ".join(f"{k}={v}" for k, v in row.items()))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
