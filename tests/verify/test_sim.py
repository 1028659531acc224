"""The Verifier on the simulator (virtual time): the brief's check after a simulated upgrade."""

from __future__ import annotations

import asyncio

from sysflow.model.inventory import Inventory
from sysflow.model.verification import VerificationSpec
from sysflow.sim import SimFleet, SimTransport, current_virtual_clock, run_virtual
from sysflow.verify.compare import Outcome
from sysflow.verify.gate import GateVerdict, Verifier

SPEC = VerificationSpec.model_validate(
    {
        "before_tasks": ["backup"],
        "after_tasks": ["upgrade_packages"],
        "commands": {
            "package_versions": "dpkg -l | grep -E 'openssl|bash|kernel'",
            "packages": {"command": "dpkg-query -W -f='${Package} ${Version}\\n'", "parser": "dpkg"},
        },
        "comparisons": {
            "package_versions": {
                "type": "regex_match",
                "pattern": r"ii\s+openssl\s+(\S+)",
                "expected_change": "version_increase",
            }
        },
        "expect": {"nginx": "active"},
        "drift": {"probes": ["packages"]},
    }
)
HOSTS = [f"web{i:02d}" for i in range(10)]


async def _wave(skip: str) -> GateVerdict:
    inventory = Inventory()
    inventory.add_group("web", HOSTS)
    transport = SimTransport(SimFleet(inventory, seed=3))
    verifier = Verifier(transport, {"verify_package_versions": SPEC}, clock=current_virtual_clock())

    async def host_chain(host: str) -> None:
        await verifier.before(host, "backup")
        if host != skip:
            await transport.run(host, "apt-get update", timeout=600)
            await transport.run(host, "apt-get -y upgrade", timeout=600)
        await verifier.after(host, "upgrade_packages")

    await asyncio.gather(*(host_chain(h) for h in HOSTS))
    return await verifier.gate(HOSTS)


def test_simulated_upgrade_missing_on_one_host_fails_the_gate_and_names_it() -> None:
    verdict = run_virtual(_wave(skip="web04"))
    assert verdict.outcome is Outcome.FAIL
    assert verdict.report.failed_hosts == ("web04",)
    assert verdict.report.counts.passed == 19  # 9 upgrades + 10 nginx active
    reasons = "\n".join(verdict.reasons)
    assert "web04: verify_package_versions/package_versions fail: " in reasons
    assert "stayed, expected increase" in reasons
    (drift,) = verdict.report.drift
    assert drift.outliers == ("web04",)
    assert {d.key for d in drift.differences} >= {"openssl", "nginx"}  # every package the upgrade moved
    assert "web04: drift against majority: packages[libc6], " in reasons
