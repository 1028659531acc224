"""Baselines: rules by classification, severity, Debian priority and section; approve-after-days
and approve-until-date from publication; approved and rejected lists; the rejected-package choice;
YAML with errors that name the file and field."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from sysflow.errors import WorkflowError
from sysflow.patch.baseline import Baseline, BaselineRule, PatchState, evaluate
from sysflow.patch.records import Classification, Family, HostScan, Severity, Update

TODAY = date(2026, 12, 10)
SEC, OTHER = Classification.SECURITY, Classification.OTHER


def upd(name: str, version: str, installed: str = "1.0-1", **kw: object) -> Update:
    return Update(name, version, installed, **kw)  # type: ignore[arg-type]


def scan(*updates: Update, installed: dict[str, str] | None = None, reboot: bool = False) -> HostScan:
    have = {u.name: u.installed or "" for u in updates} | (installed or {})
    return HostScan("h1", Family.DEBIAN, datetime(2026, 12, 10, tzinfo=UTC), have, updates, reboot)


SECURITY_7D = BaselineRule(classification=[SEC], approve_after_days=7)


def test_security_after_seven_days() -> None:
    b = Baseline(name="sec", rules=[SECURITY_7D])
    old = upd("openssl", "1.1-1", classification=SEC, published=date(2026, 12, 3))
    fresh = upd("curl", "2.0-1", classification=SEC, published=date(2026, 12, 4))
    plain = upd("bash", "5.0-1", classification=OTHER, published=date(2026, 1, 1))
    undated = upd("zlib", "1.3-1", classification=SEC)
    c = evaluate(b, scan(old, fresh, plain, undated), TODAY)
    assert c.state is PatchState.NON_COMPLIANT
    assert [u.name for u in c.missing_approved] == ["openssl"]
    assert [u.name for u in c.missing_not_approved] == ["bash", "curl", "zlib"]
    assert c.pins == ["openssl=1.1-1"]
    assert evaluate(b, scan(old), date(2026, 12, 9)).state is PatchState.COMPLIANT  # six days: not yet


def test_highest_approved_version_and_debian_order() -> None:
    b = Baseline(name="all", rules=[BaselineRule()])
    c = evaluate(
        b, scan(upd("a", "1.0-1+deb12u1"), upd("a", "1.0-1+deb12u10"), upd("a", "1.0-1+deb12u9")), TODAY
    )
    assert c.pins == ["a=1.0-1+deb12u10"]  # u10 > u9 in Debian order, not in string order
    rpm = Baseline(name="rpm", family=Family.REDHAT, rules=[BaselineRule()])
    c = evaluate(rpm, scan(upd("k", "5.14.0-427.el9"), upd("k", "1:4.0-1.el9")), TODAY)
    assert c.pins == ["k=1:4.0-1.el9"]  # the epoch wins


def test_severity_priority_section_and_until_date() -> None:
    rule = BaselineRule(
        severity=[Severity.CRITICAL, Severity.IMPORTANT], approve_until_date=date(2026, 12, 1)
    )
    b = Baseline(name="crit", family=Family.REDHAT, rules=[rule])
    crit = upd("kernel", "2-1", severity=Severity.CRITICAL, published=date(2026, 11, 20))
    late = upd("glibc", "2-1", severity=Severity.IMPORTANT, published=date(2026, 12, 2))
    low = upd("tzdata", "2-1", severity=Severity.LOW, published=date(2026, 11, 1))
    assert evaluate(b, scan(crit, late, low), TODAY).pins == ["kernel=2-1"]
    deb = Baseline(name="req", rules=[BaselineRule(priority=["required", "important"], section=["net"])])
    c = evaluate(
        deb,
        scan(
            upd("a", "2", priority="required", section="main/net"),
            upd("b", "2", priority="required", section="admin"),
        ),
        TODAY,
    )
    assert c.pins == ["a=2"]


def test_approved_and_rejected_lists() -> None:
    b = Baseline(
        name="lists", rules=[BaselineRule(classification=[SEC])],
        approved=["nginx=1.22.1-9+deb12u1"], rejected=["openssl", "curl=2.0-1"],
    )  # fmt: skip
    c = evaluate(
        b,
        scan(
            upd("nginx", "1.22.1-9+deb12u1", "1.22.1-9"), upd("nginx", "1.22.1-9+deb12u2", "1.22.1-9"),
            upd("openssl", "3.1", "3.0", classification=SEC), upd("curl", "2.0-1", classification=SEC),
            upd("curl", "1.9-1", classification=SEC),
        ),
        TODAY,
    )  # fmt: skip
    assert c.pins == ["curl=1.9-1", "nginx=1.22.1-9+deb12u1"]  # curl 2.0-1 rejected, nginx as listed
    assert [u.name for u in c.missing_not_approved] == ["openssl"]
    assert c.rejected_installed == (("openssl", "3.0"),)
    assert b.names == {"nginx", "openssl", "curl"}


def test_rejected_installed_blocks_or_is_tolerated() -> None:
    present = scan(installed={"telnet": "0.17-44"})
    block = Baseline(name="b", rejected=["telnet"])
    assert evaluate(block, present, TODAY).state is PatchState.NON_COMPLIANT
    allow = Baseline(name="a", rejected=["telnet"], rejected_action="allow_as_dependency")
    c = evaluate(allow, present, TODAY)
    assert c.state is PatchState.COMPLIANT and c.rejected_installed == (("telnet", "0.17-44"),)


def test_failed_scan_is_unknown() -> None:
    failed = HostScan("h9", Family.DEBIAN, datetime(2026, 12, 10, tzinfo=UTC), error="unreachable")
    c = evaluate(Baseline(name="x"), failed, TODAY)
    assert c.state is PatchState.UNKNOWN and c.error == "unreachable"
    assert c.to_dict()["state"] == "unknown"


def test_yaml_baseline_and_its_errors(tmp_path: Path) -> None:
    path = tmp_path / "baseline.yaml"
    path.write_text(
        "name: debian-security\nfamily: debian\nrules:\n  - classification: [security]\n"
        "    approve_after_days: 7\napproved: [nginx=1.22.1-9]\nrejected: [telnet]\nreboot: never\n"
    )
    b = Baseline.from_file(path)
    assert b.rules[0].approve_after_days == 7 and b.reboot == "never" and b.rejected == ["telnet"]
    path.write_text("name: x\nrules:\n  - classification: [securty]\napproved: ['nginx=']\n")
    with pytest.raises(WorkflowError) as err:
        Baseline.from_file(path)
    text = str(err.value)
    assert str(path) in text and "rules[0].classification[0]" in text and "approved[0]" in text
