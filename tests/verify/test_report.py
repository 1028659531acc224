"""Reports: counts, failures first, JSON round trip, Markdown."""

from __future__ import annotations

import json

from sysflow.verify.compare import Outcome, Verdict
from sysflow.verify.drift import Difference, DriftReport
from sysflow.verify.report import Counts, HostReport, VerificationReport


def _v(host: str, check: str, outcome: Outcome, diff: str = "") -> Verdict:
    return Verdict(
        host, check, "equals", outcome, "a", "b", "a", f"{check} says {outcome.value}", diff, "spec"
    )


def _report() -> VerificationReport:
    long_diff = "\n".join(["--- before", "+++ after", *[f"+line {i}" for i in range(60)]])
    verdicts = [
        _v("ok1", "x", Outcome.PASS),
        _v("bad", "x", Outcome.PASS),
        _v("bad", "y", Outcome.FAIL, long_diff),
        _v("bad", "z", Outcome.INCONCLUSIVE),
        _v("maybe", "x", Outcome.INCONCLUSIVE),
    ]
    drift = DriftReport(
        "majority",
        ("ok1", "bad", "maybe"),
        (Difference("bad", "packages", "openssl", "3.0.9", "3.0.11"),),
        ("kernel",),
        {"maybe": ("packages",)},
    )
    return VerificationReport.build(verdicts, drift=[drift], meta={"run": "r1"})


def test_counts_and_failures_first() -> None:
    report = _report()
    assert [h.host for h in report.hosts] == ["bad", "maybe", "ok1"]
    assert [v.check for v in report.host("bad").verdicts] == ["y", "z", "x"]
    assert report.counts == Counts(passed=2, failed=1, inconclusive=2)
    assert report.counts.total == 5
    assert report.outcome is Outcome.FAIL
    assert not report.passed
    assert report.failed_hosts == ("bad",)
    assert report.inconclusive_hosts == ("maybe",)
    assert report.passed_hosts == ("ok1",)
    assert [(v.host, v.check) for v in report.failures] == [("bad", "y"), ("bad", "z"), ("maybe", "x")]
    assert report.host("nobody") == HostReport("nobody")
    assert HostReport("nobody").outcome is Outcome.PASS


def test_drift_alone_fails_the_report() -> None:
    drift = DriftReport("majority", ("a", "b", "c"), (Difference("c", "kernel", "", "6.5", "6.1"),))
    report = VerificationReport.build([_v("a", "x", Outcome.PASS)], drift=[drift])
    assert report.outcome is Outcome.FAIL
    assert VerificationReport().passed


def test_json_round_trip() -> None:
    report = _report()
    data = json.loads(report.to_json())
    assert data["outcome"] == "fail"
    assert data["counts"] == {"passed": 2, "failed": 1, "inconclusive": 2, "total": 5}
    assert data["hosts"][0]["host"] == "bad"
    assert data["drift"][0]["outliers"] == ["bad"]
    assert VerificationReport.from_dict(data) == report
    assert VerificationReport.from_dict({}) == VerificationReport()


def test_markdown() -> None:
    md = _report().to_markdown()
    assert md.startswith("# Verification report\n")
    assert "- run: r1" in md
    assert "- hosts: 3 (1 failed, 1 inconclusive, 1 passed)" in md
    assert "| bad | **FAIL** | 1 | 1 | 1 |" in md
    assert md.index("### bad: spec/y") < md.index("### bad: spec/z") < md.index("### maybe: spec/x")
    assert "```diff" in md
    assert "... [22 more lines]" in md
    assert "Outliers: bad" in md
    assert "| bad | packages[openssl] | 3.0.9 | 3.0.11 |" in md
    assert "No majority for: kernel" in md
    assert "Not captured: maybe (packages)" in md
    clean = VerificationReport.build(
        [_v("a", "x", Outcome.PASS)], drift=[DriftReport("web1", ("a",))]
    ).to_markdown()
    assert "## Failures" not in clean
    assert "No host differs." in clean
