"""Audit overhead: the same simulated run with and without the audit log, side by side.

    python benchmarks/audit_overhead.py [--hosts 2000] [--repeats 3] [--quick] [--json FILE]

Each repeat runs the engine on the simulator (hosts × 5 tasks, virtual time) twice, once with an
``AuditObserver`` writing to a SQLite file (keyed HMAC-SHA256 chain, signed head rewritten at each
commit) and once without, interleaved so machine load hits both
alike (median CPU seconds: the worst case, since a simulated operation costs almost nothing). Then the
same comparison on a real rolling run over the loopback test sshd (median wall seconds), which is
what an administrator's run looks like. ``verify_cpu_s`` is the CPU time of one full
``AuditLog.verify()`` (chain and head) of the simulator leg's log. The benchmark uses a random
in-memory audit key: it writes no key file.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sysflow.audit.log import AuditLog
from sysflow.audit.observer import AuditObserver
from sysflow.engine.engine import Engine
from sysflow.model.inventory import Inventory
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.sim.fleet import SimFleet
from sysflow.sim.loop import current_virtual_clock, run_virtual
from sysflow.sim.transport import SimTransport

KEY = secrets.token_bytes(32)  # the audit key of every log written here (never stored)


def inventory(n: int) -> Inventory:
    inv = Inventory()
    per = max(1, n // 10)
    for g in range(10):
        inv.add_group(f"g{g}", [f"h{g}-{i:05d}" for i in range(per)], vars={"datacenter": f"dc{g % 3}"})
    return inv


def workflow() -> MaintenanceWorkflow:
    wf = MaintenanceWorkflow("audit-bench")
    wf.add_task("backup", "tar -czf /backup/etc.tgz /etc", expected_duration=25)
    wf.add_task("update", "apt-get update", depends_on=["backup"], expected_duration=20)
    wf.add_task("upgrade", "apt-get -y upgrade", depends_on=["update"], expected_duration=120)
    wf.add_task("restart", "systemctl restart nginx", depends_on=["upgrade"], expected_duration=3)
    wf.add_task("verify", "curl -s http://localhost/health", depends_on=["restart"], expected_duration=1)
    wf.set_progressive_execution({"strategy": "rolling", "serial": [1, "10%", "100%"]})
    wf.set_parallelization({"max_parallel_servers": 200})
    return wf


def one_run(inv: Inventory, audit_path: Path | None) -> tuple[float, int, float]:
    async def main() -> tuple[float, int, float]:
        clock = current_virtual_clock()
        log = AuditLog(audit_path, who="bench", key=KEY) if audit_path else None
        observers = [AuditObserver(log)] if log else []
        engine = Engine(
            inv,
            transport=SimTransport(SimFleet(inv, seed=1, start=clock.start), record=False),
            clock=clock,
            observers=observers,
            plan=False,
        )
        t0 = time.process_time()
        result = await engine.run(workflow())
        if log is not None:
            log.flush()
        elapsed = time.process_time() - t0
        assert len(result.successful_servers) == len(inv)
        records = log.count() if log else 0
        verify_s = 0.0
        if log is not None:
            log.close()
            with AuditLog(log.path, key=KEY, read_only=True) as reader:
                t0 = time.process_time()
                assert reader.verify() is None
                verify_s = time.process_time() - t0
        return elapsed, records, verify_s

    return run_virtual(main())


def measure(n: int, repeats: int) -> dict[str, Any]:
    inv = inventory(n)
    with_audit, without, verify, records = [], [], [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            without.append(one_run(inv, None)[0])
            seconds, records, verify_s = one_run(inv, Path(tmp) / f"audit-{i}.db")
            with_audit.append(seconds)
            verify.append(verify_s)
    a, b = statistics.median(with_audit), statistics.median(without)
    return {
        "hosts": n,
        "ops": 5 * n,
        "audit_records": records,
        "with_audit_cpu_s": round(a, 3),
        "without_cpu_s": round(b, 3),
        "audit_overhead": round(a / b - 1, 4),
        "verify_cpu_s": round(statistics.median(verify), 3),
    }


def measure_ssh(hosts: int, repeats: int) -> dict[str, Any]:
    """The same comparison on a real run over the loopback test sshd (wall seconds)."""
    import asyncio
    import shutil

    from benchmarks._sshd import sshd_for_benchmark
    from benchmarks.engine_scale import SSH_CHAIN, SSH_CONCURRENCY, ssh_inventory
    from benchmarks.engine_scale import workflow as ssh_workflow
    from sysflow.actors.auth import SSHAuth
    from tests.fixtures.sshd import host_names

    names = host_names(hosts)
    work = Path(tempfile.mkdtemp(prefix="sysflow-audit-bench-"))
    with_audit: list[float] = []
    without: list[float] = []
    records = 0
    try:
        with sshd_for_benchmark(work / "sshd") as server:
            (server.workdir / "empty_ssh_config").write_text("")

            async def once(audit: Path | None) -> int:
                log = AuditLog(audit, who="bench", key=KEY) if audit else None
                engine = Engine(
                    ssh_inventory(server, names),
                    SSHAuth.from_keyfile(server.client_key),
                    ssh_config=server.workdir / "empty_ssh_config",
                    known_hosts=server.known_hosts,
                    observers=[AuditObserver(log)] if log else [],
                )
                result = await engine.run(ssh_workflow(SSH_CHAIN, SSH_CONCURRENCY))
                assert len(result.successful_servers) == hosts, result.summary()
                n = log.count() if log else 0
                if log is not None:
                    assert log.verify() is None
                    log.close()
                return n

            for i in range(repeats):
                t0 = time.perf_counter()
                asyncio.run(once(None))
                without.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                records = asyncio.run(once(work / f"audit-{i}.db"))
                with_audit.append(time.perf_counter() - t0)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    a, b = statistics.median(with_audit), statistics.median(without)
    return {
        "leg": "sshd",
        "hosts": hosts,
        "audit_records": records,
        "with_audit_wall_s": round(a, 3),
        "without_wall_s": round(b, 3),
        "audit_overhead": round(a / b - 1, 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ssh-hosts", type=int, default=100, help="hosts of the sshd leg (0: skip it)")
    ap.add_argument("--hosts", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="500 hosts, one repeat")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    n, repeats = (500, 1) if args.quick else (args.hosts, args.repeats)
    rows = [{"leg": "simulator", **measure(n, repeats)}]
    print("  ".join(f"{k}={v}" for k, v in rows[-1].items()))
    if args.ssh_hosts:
        rows.append(measure_ssh(args.ssh_hosts, repeats))
        print("  ".join(f"{k}={v}" for k, v in rows[-1].items()))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
