"""Comparators: every kind, the brief's verify_package_versions, and declared desired state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from sysflow.model.verification import ComparisonSpec
from sysflow.verify.compare import (
    Desired,
    Outcome,
    Verdict,
    check_expect,
    compare_snapshots,
    compare_values,
    parse_desired,
    render_diff,
    worst,
)
from sysflow.verify.parsers import Value
from sysflow.verify.probes import Snapshot

from .fakes import spec_text

PASS, FAIL, INCONCLUSIVE = Outcome.PASS, Outcome.FAIL, Outcome.INCONCLUSIVE
WHEN = datetime(2026, 1, 4, tzinfo=UTC)

# The brief's verification, exactly as written there.
BRIEF = ComparisonSpec(
    type="regex_match", pattern=r"ii\s+openssl\s+(\S+)", expected_change="version_increase"
)


def _judge(spec: dict[str, Any], before: Value, after: Value, **kw: Any) -> Verdict:
    return compare_values(ComparisonSpec(**spec), before, after, **kw)


def test_brief_detects_an_increase() -> None:
    before = spec_text("dpkg_l_debian12.txt").replace("3.0.19-1~deb12u2", "3.0.11-1~deb12u2")
    after = spec_text("dpkg_l_debian12.txt")
    verdict = compare_values(BRIEF, before, after, check="package_versions", host="web1")
    assert verdict.passed is PASS
    assert verdict.passed
    assert (verdict.before, verdict.after, verdict.expected) == (
        "3.0.11-1~deb12u2",
        "3.0.19-1~deb12u2",
        "version_increase",
    )
    assert "-3.0.11-1~deb12u2" in verdict.diff
    assert "+3.0.19-1~deb12u2" in verdict.diff


def test_brief_detects_a_missing_increase() -> None:
    text = spec_text("dpkg_l_debian12.txt")
    verdict = compare_values(BRIEF, text, text)
    assert verdict.passed is FAIL
    assert not verdict.passed
    assert "stayed, expected increase" in verdict.reason


def test_brief_detects_a_downgrade_and_a_missing_package() -> None:
    before = spec_text("dpkg_l_debian12.txt")
    downgraded = before.replace("3.0.19-1~deb12u2", "3.0.9-1")
    assert compare_values(BRIEF, before, downgraded).passed is FAIL
    removed = "\n".join(line for line in before.splitlines() if " openssl " not in line)
    verdict = compare_values(BRIEF, before, removed)
    assert verdict.passed is FAIL
    assert "did not match" in verdict.reason


@pytest.mark.parametrize(
    ("spec", "before", "after", "outcome"),
    [
        ({"type": "equals", "expected": "active"}, None, "active\n", PASS),
        ({"type": "equals", "expected": 3}, None, "3", PASS),
        ({"type": "equals", "expected": "active"}, None, "failed", FAIL),
        ({"type": "equals"}, "a", "a", PASS),
        ({"type": "not_equals", "expected": "failed"}, None, "active", PASS),
        ({"type": "not_equals", "expected": "failed"}, None, "failed", FAIL),
        ({"type": "regex_match", "expected": r"^6\.1\."}, None, "6.1.0-18-amd64", PASS),
        ({"type": "regex_match", "expected": r"^6\.1\."}, None, "5.10.0", FAIL),
        ({"type": "regex_match"}, None, "x", INCONCLUSIVE),
        ({"type": "regex_match", "pattern": r"v(\d+)", "expected": "2"}, None, "v3", FAIL),
        ({"type": "regex_match", "pattern": r"v(\d+)", "expected": "3"}, None, "v3", PASS),
        ({"type": "contains", "expected": "nginx"}, None, "nginx is up", PASS),
        ({"type": "contains", "expected": "0.0.0.0:22"}, None, ["0.0.0.0:22"], PASS),
        ({"type": "contains", "expected": "openssl"}, None, {"bash": "5"}, FAIL),
        ({"type": "contains", "expected": {"a": 1}}, None, {"a": 1, "b": 2}, PASS),
        ({"type": "contains", "expected": "x"}, None, 5, INCONCLUSIVE),
        ({"type": "changed"}, "a", "b", PASS),
        ({"type": "changed"}, "a", "a", FAIL),
        ({"type": "unchanged"}, {"a": 1}, {"a": 1}, PASS),
        ({"type": "unchanged"}, {"a": 1}, {"a": 2}, FAIL),
        ({"type": "version_increase"}, "1:1.0-1", "1:1.0-2", PASS),
        ({"type": "version_increase", "version_scheme": "rpm"}, "3.0.7-27.el9", "3.0.7-27.el9", FAIL),
        ({"type": "version_decrease"}, "2.0", "1.0", PASS),
        ({"type": "version_decrease"}, "1.0", "2.0", FAIL),
        ({"type": "version_equal"}, "1.0", "1.0-0", PASS),
        ({"type": "version_equal"}, "1.0", "1.0~rc1", FAIL),
        ({"type": "version_increase"}, None, "1.0", PASS),  # newly installed
        ({"type": "version_increase"}, "1.0", None, FAIL),  # removed
        ({"type": "version_decrease"}, "1.0", None, PASS),
        ({"type": "version_increase"}, None, None, INCONCLUSIVE),
        (
            {"type": "version_increase", "expected": "openssl"},
            {"openssl": "3.0.9"},
            {"openssl": "3.0.11"},
            PASS,
        ),
        (
            {"type": "version_increase", "expected": ["a", "b"]},
            {"a": "1", "b": "1"},
            {"a": "2", "b": "1"},
            FAIL,
        ),
        ({"type": "version_increase"}, {"a": "1"}, {"a": "2"}, INCONCLUSIVE),
        ({"type": "less_than", "expected": 80}, None, "79.5", PASS),
        ({"type": "less_than", "expected": 80}, None, 80, FAIL),
        ({"type": "at_most", "expected": 80}, None, 80, PASS),
        ({"type": "greater_than", "expected": "10"}, None, 11, PASS),
        ({"type": "at_least", "expected": 10}, None, 9, FAIL),
        ({"type": "at_least", "expected": 10}, None, "many", INCONCLUSIVE),
        ({"type": "at_least", "expected": 10}, None, True, INCONCLUSIVE),
        ({"type": "<", "expected": 80}, None, "79", PASS),
        ({"type": "<=", "expected": 80}, None, "81", FAIL),
        ({"type": ">", "expected": 1}, None, 2, PASS),
        ({"type": ">=", "expected": 2}, None, 2, PASS),
        ({"type": "==", "expected": "a"}, None, "a", PASS),
        ({"type": "!=", "expected": "a"}, None, "a", FAIL),
        ({"type": "between", "low": 1, "high": 5}, None, 3, PASS),
        ({"type": "between", "expected": [1, 5]}, None, 6, FAIL),
        ({"type": "between"}, None, 6, INCONCLUSIVE),
        ({"type": "json_subset", "expected": {"a": {"b": [1]}}}, None, '{"a": {"b": [1, 2], "c": 0}}', PASS),
        ({"type": "json_subset", "expected": {"a": {"b": [3]}}}, None, {"a": {"b": [1, 2]}}, FAIL),
        ({"type": "json_subset", "expected": {"a": 1}}, None, {"a": [1]}, FAIL),
        ({"type": "json_subset", "expected": [{"a": 1}]}, None, "not json", INCONCLUSIVE),
        ({"type": "equals", "expected": "x", "expected_change": "changed"}, "y", "x", PASS),
        ({"type": "equals", "expected": "x", "expected_change": "unchanged"}, "y", "x", FAIL),
        ({"type": "less_than", "expected": 100, "expected_change": "increase"}, "5", "7", PASS),
        ({"type": "less_than", "expected": 100, "expected_change": "decrease"}, "5", "7", FAIL),
        ({"type": "contains", "expected": "3", "expected_change": "increase"}, "1.2.3", "1.3", PASS),
        ({"type": "contains", "expected": "3", "expected_change": "decrease"}, "1.3", "1.2.3", PASS),
    ],
)
def test_comparison_kinds(spec: dict[str, Any], before: Value, after: Value, outcome: Outcome) -> None:
    verdict = _judge(spec, before, after)
    assert verdict.passed is outcome, verdict.reason
    assert verdict.reason


@pytest.mark.parametrize("kind", ["changed", "unchanged", "version_increase", "equals", "not_equals"])
def test_no_before_snapshot_is_inconclusive(kind: str) -> None:
    verdict = _judge({"type": kind}, None, "1.0", has_before=False)
    assert verdict.passed is INCONCLUSIVE
    assert verdict.before is None


def test_expected_diff_when_failing_without_before() -> None:
    verdict = _judge({"type": "equals", "expected": "active"}, None, "failed", has_before=False)
    assert verdict.diff.splitlines()[-2:] == ["-active", "+failed"]


def test_diffs_are_readable_and_capped() -> None:
    before = {f"pkg{i}": "1.0" for i in range(500)}
    after = {f"pkg{i}": "2.0" for i in range(500)}
    diff = render_diff(before, after)
    assert diff.startswith("--- before\n+++ after")
    assert diff.splitlines()[-1].startswith("... [")
    assert render_diff("a", "a") == ""


def test_scheme_hint_from_probe_kind() -> None:
    # "1.0a" → "1.0+" is an increase under Debian ordering and a decrease under RPM's.
    spec = ComparisonSpec(type="version_increase")
    assert compare_values(spec, "1.0a", "1.0+", kind_hint="dpkg").passed is PASS
    assert compare_values(spec, "1.0a", "1.0+", kind_hint="rpm").passed is FAIL


def test_compare_snapshots_handles_failed_and_missing_probes() -> None:
    spec = ComparisonSpec(type="version_increase")
    before = Snapshot("h", WHEN, {"v": "1.0"}, kinds={"v": "rpm"})
    after = Snapshot("h", WHEN, {"v": "1.1"}, kinds={"v": "rpm"})
    assert compare_snapshots("v", spec, before, after, verification="pkg").verification == "pkg"
    assert compare_snapshots("v", spec, before, after).passed is PASS
    assert compare_snapshots("v", spec, None, after).passed is INCONCLUSIVE
    failed = Snapshot("h", WHEN, errors={"v": "exit 1"})
    assert "probe failed after: exit 1" in compare_snapshots("v", spec, before, failed).reason
    assert "no before value" in compare_snapshots("v", spec, Snapshot("h", WHEN), after).reason


def test_desired_state() -> None:
    snap = Snapshot(
        "web1",
        WHEN,
        {
            "packages": {"openssl": "3.0.11-1~deb12u2", "curl": None, "libssl3": "3.0.11-1~deb12u2"},
            "nginx": {"ActiveState": "active", "SubState": "running"},
            "expect:sshd": "failed",
            "expect:bash": "5.2.15-2+b8",
            "ports": ["0.0.0.0:22"],
        },
        errors={"expect:cron": "exit 1"},
        kinds={"packages": "dpkg"},
    )
    expect = {
        "nginx": "active",
        "openssl": ">= 3.0.11",
        "libssl3": "= 9",
        "sshd": "active",
        "bash": "< 5.2.15-2+b10",
        "curl": ">= 7",
        "cron": "active",
        "redis": "active",
        "ports": "== 1",
    }
    verdicts = {v.check: v for v in check_expect(expect, snap, verification="desired")}
    assert verdicts["nginx"].passed is PASS
    assert verdicts["openssl"].passed is PASS  # dpkg: 3.0.11-1~deb12u2 >= 3.0.11 (revision 1~ > none)
    assert verdicts["libssl3"].passed is FAIL
    assert verdicts["libssl3"].reason == "3.0.11-1~deb12u2 == 9 is false"
    assert verdicts["sshd"].passed is FAIL
    assert "-active" in verdicts["sshd"].diff
    assert verdicts["bash"].passed is PASS
    assert verdicts["curl"].passed is FAIL
    assert "not installed" in verdicts["curl"].reason
    assert verdicts["cron"].passed is INCONCLUSIVE
    assert verdicts["redis"].passed is INCONCLUSIVE
    assert verdicts["ports"].passed is INCONCLUSIVE
    assert {v.verification for v in verdicts.values()} == {"desired"}
    assert check_expect({"openssl": ">= 3.0.13"}, snap)[0].passed is FAIL


def test_parse_desired() -> None:
    assert parse_desired(">= 3.0.11") == Desired(">=", "3.0.11")
    assert parse_desired("=1.0") == Desired("==", "1.0")
    assert parse_desired(" running ") == Desired(None, "running")


def test_outcome_order_and_round_trip() -> None:
    assert worst([PASS, INCONCLUSIVE, PASS]) is INCONCLUSIVE
    assert worst([PASS, FAIL, INCONCLUSIVE]) is FAIL
    assert worst([]) is PASS
    verdict = _judge({"type": "changed"}, "a", "b", host="h", check="c", verification="v")
    assert Verdict.from_dict(verdict.to_dict()) == verdict
