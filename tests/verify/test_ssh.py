"""Probes over the real test sshd: batched and one-by-one capture agree, the gate passes a no-op."""

from __future__ import annotations

import pytest

from sysflow.actors.auth import SSHAuth
from sysflow.actors.ssh import SSHTransport
from sysflow.model.verification import VerificationSpec
from sysflow.verify import probes as pr
from sysflow.verify.compare import Outcome
from sysflow.verify.gate import Verifier
from tests.fixtures.sshd import SSHD, host_names

pytestmark = pytest.mark.ssh

SPEC = VerificationSpec.model_validate(
    {
        "before_tasks": ["noop"],
        "after_tasks": ["noop"],
        "commands": {
            "package_versions": "dpkg -l | grep -E 'openssl|bash'",
            "kernel": {"command": "uname -r", "parser": "kernel"},
            "os_release": {"command": "cat /etc/os-release", "parser": "os_release"},
        },
        "comparisons": {
            "package_versions": {
                "type": "regex_match",
                "pattern": r"ii\s+openssl\s+(\S+)",
                "expected_change": "version_equal",
            },
            "kernel": {"type": "unchanged"},
            "os_release": {"type": "json_subset", "expected": {"ID": "debian"}},
        },
        "drift": {"probes": ["kernel"]},
    }
)


def _transport(sshd: SSHD, names: list[str]) -> SSHTransport:
    return SSHTransport(
        sshd.settings(names), SSHAuth.from_keyfile(sshd.client_key), known_hosts=sshd.known_hosts
    )


async def test_batched_and_single_capture_agree_over_ssh(sshd: SSHD) -> None:
    names = host_names(2, prefix="v")
    probes = [
        pr.kernel(),
        pr.os_release(),
        pr.dpkg_packages("openssl"),
        pr.Probe("err", "echo e >&2; exit 2"),
    ]
    async with _transport(sshd, names) as transport:
        batched = await pr.capture_many(transport, names, probes, batch=True)
        single = await pr.capture_many(transport, names, probes)
    for name in names:
        assert batched[name].values == single[name].values
        assert batched[name].errors == single[name].errors == {"err": "exit 2: e"}
        assert isinstance(batched[name].values["packages"], dict)


async def test_gate_over_ssh_passes_a_noop_change(sshd: SSHD) -> None:
    names = host_names(3, prefix="g")
    async with _transport(sshd, names) as transport:
        verifier = Verifier(transport, {"noop_check": SPEC}, batch=True)
        for name in names:
            await verifier.before(name, "noop")
            await verifier.after(name, "noop")
        verdict = await verifier.gate(names)
    assert verdict.outcome is Outcome.PASS, verdict.reasons
    assert verdict.report.counts.passed == 9
