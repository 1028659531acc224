"""The Verifier and the gate hook, driven as the engine drives them."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from sysflow.actors.local import LocalTransport
from sysflow.model.verification import VerificationSpec
from sysflow.testing import ReplayTransport
from sysflow.verify.compare import Outcome
from sysflow.verify.gate import Phase, SnapshotStore, Verifier, evaluate_gate, spec_probes, targets_match

from .fakes import spec_text

# The brief's verification, in the brief's form.
BRIEF = VerificationSpec.model_validate(
    {
        "before_tasks": ["backup"],
        "after_tasks": ["upgrade_packages"],
        "commands": {"package_versions": "dpkg -l | grep -E 'openssl|bash|kernel'"},
        "comparisons": {
            "package_versions": {
                "type": "regex_match",
                "pattern": r"ii\s+openssl\s+(\S+)",
                "expected_change": "version_increase",
            }
        },
    }
)
OLD = spec_text("dpkg_l_debian12.txt").replace("3.0.19-1~deb12u2", "3.0.11-1~deb12u2")
NEW = spec_text("dpkg_l_debian12.txt")


async def test_brief_flow_pass_and_fail_per_host() -> None:
    transport = ReplayTransport({"dpkg -l": OLD})
    verifier = Verifier(transport, {"verify_package_versions": BRIEF})
    for host in ("web1", "web2"):
        assert len(await verifier.before(host, "backup")) == 1
        assert await verifier.before(host, "upgrade_packages") == []
    transport.host_replies["web1"] = {"dpkg -l": NEW}  # only web1 really upgraded
    for host in ("web1", "web2"):
        assert await verifier.after(host, "backup") == []
        assert len(await verifier.after(host, "upgrade_packages")) == 1
    calls = len(transport.calls)
    (ok,) = await verifier.verify("web1")
    (bad,) = await verifier.verify("web2")
    assert len(transport.calls) == calls  # verify used the stored snapshots
    assert ok.passed is Outcome.PASS
    assert (ok.before, ok.after) == ("3.0.11-1~deb12u2", "3.0.19-1~deb12u2")
    assert bad.passed is Outcome.FAIL
    assert bad.verification == "verify_package_versions"
    report = verifier.report()
    assert report.failed_hosts == ("web2",)
    gate = await verifier.gate(["web1", "web2"])
    assert gate.outcome is Outcome.FAIL
    assert not gate.passed
    assert gate.reasons[0].startswith("web2: verify_package_versions/package_versions fail: ")
    passing = await verifier.gate(["web1"])
    assert passing.passed
    assert passing.reasons == ("1 hosts, 1 checks passed",)


async def test_evaluate_gate_from_before_snapshots() -> None:
    transport = ReplayTransport({"dpkg -l": OLD})
    first = Verifier(transport, {"v": BRIEF})
    await first.before("a", "backup")
    await first.before("b", "backup")
    transport.replies["dpkg -l"] = NEW
    persisted = SnapshotStore.from_dict(first.store.to_dict())  # as the run store would
    assert len(persisted) == 2
    verdict = await evaluate_gate(transport, ["a", "b"], {"v": BRIEF}, persisted, batch=True)
    assert verdict.outcome is Outcome.PASS
    assert verdict.report.counts.passed == 2
    assert len(persisted) == 2  # the caller's store is not changed
    assert persisted.get("v", "a", Phase.AFTER) is None


async def test_unreachable_or_unsnapshotted_hosts_are_inconclusive() -> None:
    transport = ReplayTransport({"dpkg -l": OLD}, unreachable=frozenset({"down"}))
    verdict = await evaluate_gate(transport, ["fresh", "down"], {"v": BRIEF})
    assert verdict.outcome is Outcome.INCONCLUSIVE
    reasons = "\n".join(verdict.reasons)
    assert "fresh: v/package_versions inconclusive: no before-snapshot" in reasons
    assert "down: v/package_versions inconclusive: probe failed after: HostUnreachable" in reasons


async def test_expect_drift_golden_and_targets() -> None:
    spec = VerificationSpec.model_validate(
        {
            "commands": {
                "packages": {"command": "dpkg-query -W -f='${Package} ${Version}\\n'", "parser": "dpkg"}
            },
            "expect": {"nginx": "active", "openssl": ">= 3.0.19"},
            "drift": {"golden_host": "gold", "probes": ["packages"]},
            "targets": ["web*", "gold"],
        }
    )
    recorded = spec_text("dpkg_query_debian12.txt")
    transport = ReplayTransport(
        {
            "${Package}": recorded,
            "systemctl is-active nginx": "active\n",
            "dpkg-query -W -f='${Version}' openssl": "3.0.19-1~deb12u2",
        },
        host_replies={"web3": {"${Package}": recorded.replace("bash 5.2.15-2+b8", "bash 5.2.15-2+b7")}},
    )
    verifier = Verifier(transport, {"state": spec})
    assert [p.name for p in spec_probes(spec)] == ["packages", "expect:nginx", "expect:openssl"]
    assert await verifier.before("db1", "anything") == []  # not targeted
    assert len(await verifier.before("web1", "t1")) == 1  # no before_tasks: captured once, first time
    assert await verifier.before("web1", "t2") == []
    gate = await verifier.gate(["web1", "web2", "web3"])
    assert gate.outcome is Outcome.FAIL
    assert gate.reasons == ("web3: drift against gold: packages[bash]",)
    assert gate.report.counts.passed == 6
    assert [h.host for h in gate.report.hosts] == ["web1", "web2", "web3"]
    assert await verifier.verify("db1") == []


def test_targets_match() -> None:
    spec = VerificationSpec(targets=["web*", "db1"])
    assert targets_match("web7", spec)
    assert targets_match("db1", spec)
    assert not targets_match("db2", spec)
    assert targets_match("anything", VerificationSpec())


@pytest.mark.parametrize("batch", [False, True])
async def test_local_transport_end_to_end(tmp_path: Path, batch: bool) -> None:
    """A real command, a real file changed by a 'task' between the snapshots."""
    conf = tmp_path / "app.conf"
    conf.write_text("version=1.4.2\nmode=blue\n")
    spec = VerificationSpec.model_validate(
        {
            "before_tasks": ["deploy"],
            "after_tasks": ["deploy"],
            "commands": {
                "conf": {"command": f"cat {shlex.quote(str(conf))}", "parser": "keyvalue"},
                "version": {
                    "command": f"cat {shlex.quote(str(conf))}",
                    "parser": "regex",
                    "pattern": r"version=(\S+)",
                },
            },
            "comparisons": {
                "version": {"type": "version_increase"},
                "conf": {"type": "json_subset", "expected": {"mode": "green"}, "expected_change": "changed"},
            },
        }
    )
    verifier = Verifier(LocalTransport(), {"deploy_check": spec}, batch=batch)
    await verifier.before("localhost", "deploy")
    conf.write_text("version=1.10.0\nmode=green\n")  # the task
    await verifier.after("localhost", "deploy")
    verdicts = {v.check: v for v in await verifier.verify("localhost")}
    assert verdicts["version"].passed is Outcome.PASS
    assert (verdicts["version"].before, verdicts["version"].after) == ("1.4.2", "1.10.0")
    assert verdicts["conf"].passed is Outcome.PASS
    assert '+ "mode": "green",' in verdicts["conf"].diff.splitlines()
    md = verifier.report().to_markdown()
    assert "| localhost | PASS | 2 | 0 | 0 |" in md
