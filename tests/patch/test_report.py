"""The compliance report's renderings, the CVE question and the store's as-of answer."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

from sysflow.patch.baseline import Baseline, BaselineRule
from sysflow.patch.records import Classification, Family, HostScan, Severity, Update
from sysflow.patch.report import compliance_report
from sysflow.patch.store import ScanStore

BASELINE = Baseline(name="crit", family=Family.REDHAT, rules=[BaselineRule(severity=[Severity.CRITICAL])])
KERNEL = Update(
    "kernel", "2-1", "1-1", Classification.SECURITY, Severity.CRITICAL, date(2026, 12, 1), ("CVE-2026-1",)
)
CURL = Update("curl", "2-1", "1-1", Classification.SECURITY, Severity.LOW, date(2026, 12, 2), ("CVE-2026-2",))


def _scan(host: str, day: int, *updates: Update, reboot: bool = False) -> HostScan:
    at = datetime(2026, 12, day, 12, tzinfo=UTC)
    return HostScan(host, Family.REDHAT, at, {u.name: "1-1" for u in updates}, updates, reboot)


def test_renderings_and_cve() -> None:
    report = compliance_report(
        BASELINE, [_scan("a", 14, KERNEL, CURL, reboot=True), _scan("b", 14, CURL)], date(2026, 12, 14)
    )
    s = report.summary()
    assert (s["compliant"], s["non_compliant"], s["pending_reboot"]) == (1, 1, 1)
    assert s["missing_by_severity"] == {"critical": 1} and s["oldest_missing"]["name"] == "kernel"
    assert report.lacking("CVE-2026-1") == ["a"] and report.lacking("CVE-2026-2") == ["a", "b"]
    assert json.loads(report.to_json())["hosts"][0]["missing_approved"][0]["cves"] == ["CVE-2026-1"]
    md = report.to_markdown()
    assert (
        "| a | non_compliant (reboot pending) | kernel=2-1 | - |" in md
        and "oldest missing patch: kernel 2-1" in md
    )
    page = report.to_html()
    assert page.startswith("<!doctype html>") and "<td>kernel=2-1</td>" in page
    assert not report.all_compliant
    empty = compliance_report(BASELINE, [], date(2026, 12, 14))
    assert empty.oldest_missing() is None and "by severity: none" in empty.to_markdown()


def test_store_answers_as_of(tmp_path: Path) -> None:
    store = ScanStore(tmp_path / "p.db")
    assert store.add([_scan("a", 13, KERNEL), _scan("b", 13)], "run1") == 2
    store.add([_scan("a", 15)], "run2")  # patched on the 15th
    on_14 = store.latest(datetime(2026, 12, 14, 23, 59, tzinfo=UTC))
    assert [(s.host, s.scanned_at.day) for s in on_14] == [("a", 13), ("b", 13)]
    assert compliance_report(BASELINE, on_14, date(2026, 12, 14)).lacking("CVE-2026-1") == ["a"]
    assert [(s.host, s.scanned_at.day) for s in store.latest()] == [("a", 15), ("b", 13)]
