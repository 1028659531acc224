"""Benchmark: capture-compare-report rate of ``sysflow.verify`` (host verifications per minute).

Two legs, each with a 5-probe set per host (the brief's ``dpkg -l | grep`` regex probe, the full
``dpkg-query`` package map, ``systemctl is-active nginx``, ``uname -r``, ``/etc/os-release``):

* **sim**: 1,000 hosts on the simulator (``sysflow.sim.SimTransport`` on a virtual clock): capture
  before, ``apt-get update && apt-get -y upgrade`` on every host (simulated, not timed), capture
  after, compare (version_increase, equals, unchanged, json_subset), drift by majority, report.
  Simulated command durations are virtual; the figures are wall-clock CPU cost of sysflow itself.
* **ssh**: 200 hosts over the real test sshd on loopback aliases (``tests/fixtures/sshd.py``),
  through ``sysflow.actors.ssh.SSHTransport``; the probes run for real on this machine. A host's
  probes go as one batched shell command (``ssh``) or one command each (``ssh-1by1``); the
  ``*light*`` legs use five cheap probes (``uname -r``, ``cat`` of small files, ``id -u``) to show
  the cost of sysflow + SSH apart from what ``dpkg`` costs on this machine.

Each leg reports the before-capture phase (includes SSH connects), the verify phase (capture after
+ compare + report) and both together, as host verifications per minute. Target (issue 7): at
least 10,000 host verifications per minute over SSH on loopback.

    python benchmarks/verify_rate.py [--quick] [--sim-hosts N] [--ssh-hosts N] [--no-ssh] [--json FILE]
"""

from __future__ import annotations

import os
import sys

# Scripts in benchmarks/ get benchmarks/ as sys.path[0], where calendar.py would shadow the stdlib.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]


import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Awaitable, Callable, Iterator  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from sysflow.clock import Clock  # noqa: E402
from sysflow.model.verification import VerificationSpec  # noqa: E402
from sysflow.transport import Transport  # noqa: E402
from sysflow.verify.gate import Verifier  # noqa: E402
from sysflow.verify.report import VerificationReport  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PROBES: dict[str, Any] = {
    "package_versions": "dpkg -l | grep -E 'openssl|bash|kernel'",
    "packages": {"command": "dpkg-query -W -f='${Package} ${Version}\\n'", "parser": "dpkg"},
    "nginx": {"command": "systemctl is-active nginx", "parser": "systemctl", "check_exit": False},
    "kernel": {"command": "uname -r", "parser": "kernel"},
    "os_release": {"command": "cat /etc/os-release", "parser": "os_release"},
}

# Cheap probes: the same framework and SSH work, without dpkg's cost on this machine's CPU.
LIGHT_PROBES: dict[str, Any] = {
    "kernel": {"command": "uname -r", "parser": "kernel"},
    "os_release": {"command": "cat /etc/os-release", "parser": "os_release"},
    "hostname": "cat /etc/hostname",
    "uid": {"command": "id -u", "parser": "raw"},
    "osrelease": {"command": "cat /proc/sys/kernel/osrelease", "parser": "kernel"},
}


def make_light_spec() -> VerificationSpec:
    """Five cheap probes, all expected unchanged; drift on the kernel."""
    return VerificationSpec.model_validate(
        {
            "before_tasks": ["backup"],
            "after_tasks": ["upgrade_packages"],
            "commands": LIGHT_PROBES,
            "comparisons": {name: {"type": "unchanged"} for name in LIGHT_PROBES},
            "drift": {"probes": ["kernel"]},
        }
    )


def make_spec(*, upgraded: bool) -> VerificationSpec:
    """The 5-probe verification: after an upgrade (sim) or across a no-op (ssh)."""
    change = "version_increase" if upgraded else "version_equal"
    return VerificationSpec.model_validate(
        {
            "before_tasks": ["backup"],
            "after_tasks": ["upgrade_packages"],
            "commands": PROBES,
            "comparisons": {
                "package_versions": {
                    "type": "regex_match",
                    "pattern": r"ii\s+openssl\s+(\S+)",
                    "expected_change": change,
                },
                "packages": {"type": change, "expected": "openssl"},
                "nginx": {"type": "unchanged"},
                "kernel": {"type": "unchanged"},
                "os_release": {"type": "json_subset", "expected": {"ID": "debian"}},
            },
            "drift": {"probes": ["packages", "kernel"]},
        }
    )


@dataclass(frozen=True)
class LegResult:
    leg: str
    hosts: int
    probes_per_host: int
    before_s: float
    verify_s: float
    verifications_per_min: float
    full_cycle_per_min: float
    passed_hosts: int
    failed_hosts: int
    inconclusive_hosts: int
    drift_outliers: int
    client_cpu_ms_per_host: float = 0.0  # this process's CPU in the verify phase, per host
    note: str = ""


async def run_leg(
    leg: str,
    transport: Transport,
    hosts: list[str],
    spec: VerificationSpec,
    *,
    clock: Clock | None,
    change: Callable[[list[str]], Awaitable[None]] | None,
    concurrency: int,
    batch: bool = False,
) -> tuple[LegResult, VerificationReport]:
    """Before-capture, (untimed) change, then capture-after + compare + report, timed by phase."""
    verifier = Verifier(
        transport, {"verify_package_versions": spec}, clock=clock, concurrency=concurrency, batch=batch
    )
    t0 = time.perf_counter()
    await asyncio.gather(*(verifier.before(h, "backup") for h in hosts))
    before_s = time.perf_counter() - t0
    if change is not None:
        await change(hosts)
    t1, c1 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(verifier.after(h, "upgrade_packages") for h in hosts))
    await verifier.verify_many(hosts)
    report = verifier.report(hosts)
    report.to_json()
    verify_s = time.perf_counter() - t1
    client_cpu_ms = (time.process_time() - c1) * 1000 / len(hosts)
    outliers = sum(len(d.outliers) for d in report.drift)
    result = LegResult(
        leg=leg,
        hosts=len(hosts),
        probes_per_host=len(PROBES),
        before_s=round(before_s, 3),
        verify_s=round(verify_s, 3),
        verifications_per_min=round(len(hosts) / verify_s * 60),
        full_cycle_per_min=round(len(hosts) / (before_s + verify_s) * 60),
        passed_hosts=len(report.passed_hosts),
        failed_hosts=len(report.failed_hosts),
        inconclusive_hosts=len(report.inconclusive_hosts),
        drift_outliers=outliers,
        client_cpu_ms_per_host=round(client_cpu_ms, 2),
    )
    return result, report


# -- sim leg ------------------------------------------------------------------------------------


def sim_leg(count: int) -> LegResult:
    from sysflow.model.inventory import Inventory
    from sysflow.sim import SimFleet, SimTransport, current_virtual_clock, run_virtual

    hosts = [f"web{i:05d}" for i in range(count)]
    inventory = Inventory()
    inventory.add_group("web", hosts)

    async def main() -> LegResult:
        transport = SimTransport(SimFleet(inventory, seed=7), record=False)

        async def upgrade(names: list[str]) -> None:
            async def one(host: str) -> None:
                await transport.run(host, "apt-get update", timeout=3600)
                await transport.run(host, "apt-get -y upgrade", timeout=3600)

            await asyncio.gather(*(one(h) for h in names))

        result, _ = await run_leg(
            "sim",
            transport,
            hosts,
            make_spec(upgraded=True),
            clock=current_virtual_clock(),
            change=upgrade,
            concurrency=count,
        )
        return result

    return run_virtual(main())


# -- ssh leg ------------------------------------------------------------------------------------


@contextlib.contextmanager
def test_sshd() -> Iterator[Any]:
    """The test sshd outside pytest: the fixture module's own ``running_sshd`` in a temporary folder."""
    sys.path.insert(0, str(ROOT))
    from tests.fixtures.sshd import running_sshd

    workdir = Path(tempfile.mkdtemp(prefix="sysflow-bench-sshd-"))
    try:
        with running_sshd(workdir) as server:
            yield server
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def ssh_leg(count: int) -> list[LegResult]:
    from sysflow.actors.auth import SSHAuth
    from sysflow.actors.ssh import SSHLimits, SSHTransport

    with test_sshd() as server:
        hosts = [f"h{i:04d}" for i in range(1, count + 1)]

        async def main(leg: str, spec: VerificationSpec, batch: bool) -> LegResult:
            auth = SSHAuth.from_keyfile(server.client_key)
            limits = SSHLimits(max_sessions=8, max_startups_per_target=64)
            async with SSHTransport(
                server.settings(hosts), auth, known_hosts=server.known_hosts, limits=limits
            ) as transport:
                result, _ = await run_leg(
                    leg, transport, hosts, spec, clock=None, change=None, concurrency=count
                )
            return result

        return [
            asyncio.run(main("ssh", make_spec(upgraded=False), True)),
            asyncio.run(main("ssh-1by1", make_spec(upgraded=False), False)),
            asyncio.run(main("ssh-light", make_light_spec(), True)),
            asyncio.run(main("light-1by1", make_light_spec(), False)),
        ]


def _ssh_unavailable(reason: str, count: int) -> list[LegResult]:
    return [LegResult("ssh", count, len(PROBES), 0, 0, 0, 0, 0, 0, 0, 0, note=f"not measured: {reason}")]


def print_table(results: list[LegResult]) -> None:
    head = f"{'leg':<9} {'hosts':>6} {'probes':>6} {'before s':>9} {'verify s':>9} {'verif/min':>10} {'cycle/min':>10} {'pass':>5} {'fail':>5} {'inc':>4} {'drift':>5} {'cpu ms/host':>11}"
    print(head)
    print("-" * len(head))
    for r in results:
        if r.note:
            print(f"{r.leg:<9} {r.hosts:>6} {r.probes_per_host:>6}  {r.note}")
            continue
        print(
            f"{r.leg:<9} {r.hosts:>6} {r.probes_per_host:>6} {r.before_s:>9.2f} {r.verify_s:>9.2f} "
            f"{r.verifications_per_min:>10,} {r.full_cycle_per_min:>10,} {r.passed_hosts:>5} {r.failed_hosts:>5} "
            f"{r.inconclusive_hosts:>4} {r.drift_outliers:>5} {r.client_cpu_ms_per_host:>11.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 simulated and 50 SSH hosts")
    parser.add_argument("--sim-hosts", type=int, default=None)
    parser.add_argument("--ssh-hosts", type=int, default=None)
    parser.add_argument("--no-ssh", action="store_true", help="skip the SSH leg")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()
    sim_n = args.sim_hosts or (200 if args.quick else 1_000)
    ssh_n = args.ssh_hosts or (50 if args.quick else 200)
    results = [sim_leg(sim_n)]
    if args.no_ssh:
        results += _ssh_unavailable("--no-ssh given", ssh_n)
    elif not Path("/usr/sbin/sshd").exists():
        results += _ssh_unavailable("/usr/sbin/sshd is missing (apt-get install openssh-server)", ssh_n)
    else:
        try:
            results += ssh_leg(ssh_n)
        except (ImportError, AttributeError, TypeError) as exc:
            results += _ssh_unavailable(f"the test sshd could not be started here ({exc!r})", ssh_n)
    print_table(results)
    if args.json:
        args.json.write_text(
            json.dumps({"benchmark": "verify_rate", "results": [asdict(r) for r in results]}, indent=2)
        )


if __name__ == "__main__":
    main()
