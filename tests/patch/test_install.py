"""The install workflow: guard only when rejected packages block, reboot per policy, the pins per
host as a variable, hosts with nothing to install left out; the guard and probe scripts under sh."""

from __future__ import annotations

import subprocess
from datetime import UTC, date, datetime

from sysflow.model.inventory import Inventory
from sysflow.patch.baseline import Baseline, BaselineRule, evaluate
from sysflow.patch.install import VERIFIED, install_inventory, install_workflow
from sysflow.patch.records import Family, HostScan, Update


def test_tasks_per_policy() -> None:
    ids = lambda b: [t.id for t in install_workflow(b).tasks]  # noqa: E731
    assert ids(Baseline(name="x", rejected=["telnet"])) == [
        "patch_guard", "patch_install", "patch_reboot_needed", "patch_reboot",
    ]  # fmt: skip
    assert ids(Baseline(name="x", reboot="never", rejected=["t"], rejected_action="allow_as_dependency")) == [
        "patch_install"
    ]
    wf = install_workflow(Baseline(name="x y", reboot="always"), rollout={"strategy": "rolling", "serial": [1, "50%"]},
                          windows={"groups": {"all": "Sun 01:00-03:00"}})  # fmt: skip
    assert [t.id for t in wf.tasks] == ["patch_install", "patch_reboot"] and wf.name == "patch_x_y"
    assert wf.become and "approved_versions" in wf.verifications


def test_inventory_carries_pins() -> None:
    inv = Inventory()
    inv.add_host("a", ["web"])
    inv.add_host("b", ["web"])
    at = datetime(2026, 12, 10, tzinfo=UTC)
    base = Baseline(name="all", rules=[BaselineRule()])
    judged = [
        evaluate(
            base, HostScan("a", Family.DEBIAN, at, {"x": "1"}, (Update("x", "2", "1"),)), date(2026, 12, 10)
        ),
        evaluate(base, HostScan("b", Family.DEBIAN, at, {"x": "2"}), date(2026, 12, 10)),
    ]
    narrowed = install_inventory(inv, judged)
    assert list(narrowed.hosts) == ["a"] and narrowed.host_vars("a")["patch_pins"] == "x=2"


def test_probe_reports_missing_pins() -> None:
    wf = install_workflow(Baseline(name="x"))
    probe = wf.verifications["approved_versions"].commands["approved"].command
    present = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "dpkg"], capture_output=True, text=True
    ).stdout
    ok = probe.replace("{{ vars.patch_pins }}", f"'dpkg={present}'")
    assert subprocess.run(["sh", "-c", ok], capture_output=True, text=True).stdout.strip() == VERIFIED
    bad = probe.replace("{{ vars.patch_pins }}", "'dpkg=0.0-0'")
    assert subprocess.run(["sh", "-c", bad], capture_output=True, text=True).stdout.startswith(
        "missing: dpkg="
    )
