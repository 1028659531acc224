"""Markdown rendering of a :class:`~sysflow.verify.report.VerificationReport` (kept apart: presentation)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sysflow.verify.compare import Verdict
from sysflow.verify.drift import DriftReport

if TYPE_CHECKING:
    from sysflow.verify.report import VerificationReport

__all__ = ["render"]

_DIFF_LINES = 40  # diff lines shown per failure
_ICON = {"pass": "PASS", "fail": "**FAIL**", "inconclusive": "_INCONCLUSIVE_"}


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _summary(report: VerificationReport) -> list[str]:
    c = report.counts
    lines = [f"# {report.title}", ""]
    lines += [f"- {_cell(k)}: {_cell(v)}" for k, v in report.meta.items()]
    lines += [
        f"- outcome: {_ICON[report.outcome.value]}",
        f"- hosts: {len(report.hosts)} ({len(report.failed_hosts)} failed, "
        f"{len(report.inconclusive_hosts)} inconclusive, {len(report.passed_hosts)} passed)",
        f"- checks: {c.total} ({c.failed} failed, {c.inconclusive} inconclusive, {c.passed} passed)",
        "",
    ]
    return lines


def _host_table(report: VerificationReport) -> list[str]:
    lines = [
        "## Hosts",
        "",
        "| host | outcome | passed | failed | inconclusive |",
        "|---|---|---:|---:|---:|",
    ]
    for h in report.hosts:
        c = h.counts
        lines.append(
            f"| {_cell(h.host)} | {_ICON[h.outcome.value]} | {c.passed} | {c.failed} | {c.inconclusive} |"
        )
    return [*lines, ""]


def _failure(v: Verdict) -> list[str]:
    name = f"{v.verification}/{v.check}" if v.verification else v.check
    lines = [
        f"### {_cell(v.host)}: {_cell(name)} ({v.kind}) {_ICON[v.passed.value]}",
        "",
        _cell(v.reason),
        "",
    ]
    if v.diff:
        diff = v.diff.splitlines()
        shown = diff[:_DIFF_LINES] + (
            [f"... [{len(diff) - _DIFF_LINES} more lines]"] if len(diff) > _DIFF_LINES else []
        )
        lines += ["```diff", *shown, "```", ""]
    return lines


def _drift(d: DriftReport) -> list[str]:
    lines = [f"## Drift against {_cell(d.reference)}", ""]
    if not d.drifted:
        lines.append("No host differs.")
    else:
        lines += [
            f"Outliers: {', '.join(d.outliers)}",
            "",
            "| host | item | value | reference |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {_cell(x.host)} | {_cell(x.item)} | {_cell(x.value)} | {_cell(x.reference)} |"
            for x in d.differences
        ]
    if d.ambiguous:
        lines += ["", f"No majority for: {', '.join(d.ambiguous)}"]
    if d.unknown:
        lines += ["", "Not captured: " + "; ".join(f"{h} ({', '.join(p)})" for h, p in d.unknown.items())]
    return [*lines, ""]


def render(report: VerificationReport) -> str:
    """The report as Markdown: summary, host table, failures with diffs, drift."""
    lines = _summary(report) + _host_table(report)
    failures = report.failures
    if failures:
        lines += ["## Failures", ""]
        for v in failures:
            lines += _failure(v)
    for d in report.drift:
        lines += _drift(d)
    return "\n".join(lines).rstrip() + "\n"
