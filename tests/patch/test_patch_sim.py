"""On the simulator: 1,000 hosts with mixed package states (random but seeded: security and plain
updates of different ages, a rejected package on some, pending reboots, some hosts whose scan
fails) scanned through the real engine on virtual time; the compliance report's counts equal the
ground truth computed here independently of the baseline's evaluation."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

from sysflow.engine.engine import Engine
from sysflow.model.inventory import Inventory
from sysflow.patch.baseline import Baseline, BaselineRule, PatchState
from sysflow.patch.records import Classification
from sysflow.patch.report import compliance_report
from sysflow.patch.scan import SCAN_MARKER, SCAN_TASK, read_scan, scan_workflow
from sysflow.sim import SimFleet, SimProfile, SimTransport, current_virtual_clock, run_virtual
from sysflow.sim.profile import Rule

HOSTS = 1000
TODAY = date(2026, 12, 10)
START = datetime(2026, 12, 10, 2, tzinfo=UTC)
PACKAGES = [f"pkg{i}" for i in range(8)]
BASELINE = Baseline(
    name="sec-7d",
    rules=[BaselineRule(classification=[Classification.SECURITY], approve_after_days=7)],
    rejected=["telnet"],
)
RELEASES = "\n".join(
    f"\nSuite: {suite}\nCodename: {suite}\nLabel: Debian\nDate: {(TODAY - timedelta(days=age)).strftime('%a, %d %b %Y 00:00:00 UTC')}"
    for suite, age in (("old-security", 30), ("new-security", 3), ("stable", 40))
)


def _host(rng: random.Random) -> tuple[str, dict[str, object]]:
    """One host's scan output and its truth (missing approved, pending reboot, rejected, failed)."""
    if rng.random() < 0.03:
        return "sh: 1: apt-get: not found\n", {"failed": True}
    lines, missing, severity_rows = [], 0, 0
    for name in PACKAGES:
        lines.append(f"P {name} 1.0-1")
        offers = rng.choice([[], ["old-security"], ["new-security"], ["stable"], ["old-security", "stable"]])
        for i, suite in enumerate(offers):
            lines.append(f"S {name} 1.{i + 1}-1 {suite}")
        missing += "old-security" in offers  # approved: security, published 30 days ago
        severity_rows += "old-security" in offers
    rejected = rng.random() < 0.1
    if rejected:
        lines.append("P telnet 0.17-44")
    reboot = rng.random() < 0.2
    text = "\n".join([SCAN_MARKER, "### family debian", "### compact", *lines, "### releases", RELEASES,
                      "### reboot", *(["required"] if reboot else []), "### end"])  # fmt: skip
    return text + "\n", {"failed": False, "missing": missing, "reboot": reboot, "rejected": rejected}


def test_thousand_hosts_report_matches_ground_truth() -> None:
    rng = random.Random(22)
    inventory = Inventory()
    truth = {}
    for i in range(HOSTS):
        name = f"h{i:04d}"
        text, truth[name] = _host(rng)
        inventory.add_host(name, ["fleet"], sim_scan=text)
    profile = SimProfile(
        rules=[Rule(name="patch_scan", match="sysflow-patch-scan", stdout="{vars[sim_scan]}")]
    )

    async def main() -> object:
        clock = current_virtual_clock()
        transport = SimTransport(SimFleet(inventory, profile, seed=1, start=clock.start), clock)
        engine = Engine(inventory, transport=transport, clock=clock)
        return await engine.run(scan_workflow(BASELINE.names))

    result = run_virtual(main(), start=START)
    scans = []
    for host in inventory.hosts:
        rec = next(r for r in result.ops_of(host) if r.task == SCAN_TASK)  # type: ignore[attr-defined]
        scans.append(read_scan(host, rec.stdout, START, BASELINE.names))
    report = compliance_report(BASELINE, scans, TODAY)
    s = report.summary()

    failed = [h for h, t in truth.items() if t["failed"]]
    ok = [h for h, t in truth.items() if not t["failed"]]
    non_compliant = [h for h in ok if truth[h]["missing"] or truth[h]["rejected"]]
    assert s["hosts"] == HOSTS
    assert s["unknown"] == len(failed) > 0
    assert s["non_compliant"] == len(non_compliant)
    assert s["compliant"] == len(ok) - len(non_compliant) > 0
    assert s["pending_reboot"] == sum(bool(truth[h]["reboot"]) for h in ok)
    assert s["missing_by_classification"] == {"security": sum(int(truth[h]["missing"]) for h in ok)}  # type: ignore[call-overload]
    assert s["missing_by_severity"] == {"none": s["missing_by_classification"]["security"]}
    assert s["oldest_missing"]["published"] == (TODAY - timedelta(days=30)).isoformat()
    assert report.hosts_in(PatchState.UNKNOWN) == sorted(failed)
