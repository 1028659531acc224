"""Compliance reports: per baseline, compliant / non-compliant / unknown hosts, missing approved
patches by severity and classification, hosts pending reboot, the oldest missing patch, and the
CVEs still open; rendered as JSON, Markdown or one self-contained HTML page."""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sysflow.patch.baseline import Baseline, HostCompliance, PatchState, evaluate
from sysflow.patch.records import HostScan, Update

__all__ = ["ComplianceReport", "compliance_report"]


@dataclass(frozen=True, slots=True)
class ComplianceReport:
    """A baseline's standing over a set of hosts on ``as_of``."""

    baseline: str
    as_of: date
    hosts: tuple[HostCompliance, ...]

    def hosts_in(self, state: PatchState) -> list[str]:
        return [h.host for h in self.hosts if h.state is state]

    @property
    def all_compliant(self) -> bool:
        return all(h.state is PatchState.COMPLIANT for h in self.hosts)

    @property
    def pending_reboot(self) -> list[str]:
        return [h.host for h in self.hosts if h.reboot_required]

    def missing_by_severity(self) -> dict[str, int]:
        """Missing approved patches (host × package) per severity."""
        return dict(Counter(u.severity.value for h in self.hosts for u in h.missing_approved))

    def missing_by_classification(self) -> dict[str, int]:
        return dict(Counter(u.classification.value for h in self.hosts for u in h.missing_approved))

    def oldest_missing(self) -> Update | None:
        dated = [u for h in self.hosts for u in h.missing_approved if u.published is not None]
        return min(dated, key=lambda u: u.published or date.max) if dated else None

    def lacking(self, cve: str) -> list[str]:
        """Hosts that lacked a fix for ``cve`` (offered, approved or not, but not installed)."""
        return [
            h.host
            for h in self.hosts
            if any(cve in u.cves for u in (*h.missing_approved, *h.missing_not_approved))
        ]

    def summary(self) -> dict[str, Any]:
        oldest = self.oldest_missing()
        return {
            "baseline": self.baseline,
            "as_of": self.as_of.isoformat(),
            "hosts": len(self.hosts),
            "compliant": len(self.hosts_in(PatchState.COMPLIANT)),
            "non_compliant": len(self.hosts_in(PatchState.NON_COMPLIANT)),
            "unknown": len(self.hosts_in(PatchState.UNKNOWN)),
            "pending_reboot": len(self.pending_reboot),
            "missing_by_severity": self.missing_by_severity(),
            "missing_by_classification": self.missing_by_classification(),
            "oldest_missing": None if oldest is None else oldest.to_dict(),
        }

    def to_json(self) -> str:
        return json.dumps({"summary": self.summary(), "hosts": [h.to_dict() for h in self.hosts]}, indent=2)

    def _rows(self) -> list[tuple[str, str, str, str]]:
        return [
            (
                h.host,
                h.state.value + (" (reboot pending)" if h.reboot_required else ""),
                ", ".join(h.pins) or "-",
                ", ".join(f"{n}={v}" for n, v in h.rejected_installed) or "-",
            )
            for h in self.hosts
        ]

    def to_markdown(self) -> str:
        s = self.summary()
        lines = [
            f"# Patch compliance: {self.baseline} (as of {s['as_of']})",
            "",
            f"- hosts: {s['hosts']}; compliant: {s['compliant']}; non-compliant: {s['non_compliant']}; "
            f"unknown: {s['unknown']}; pending reboot: {s['pending_reboot']}",
            f"- missing approved patches by severity: {_counts(s['missing_by_severity'])}",
        ]
        if (oldest := self.oldest_missing()) is not None:
            lines.append(
                f"- oldest missing patch: {oldest.name} {oldest.version} (published {oldest.published})"
            )
        lines += ["", "| host | state | missing approved | rejected installed |", "|---|---|---|---|"]
        lines += [f"| {' | '.join(row)} |" for row in self._rows()]
        return "\n".join(lines) + "\n"

    def to_html(self) -> str:
        e = html.escape
        s = self.summary()
        rows = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in self._rows())
        return (
            f"<!doctype html><html><head><meta charset='utf-8'><title>Patch compliance: {e(self.baseline)}</title>"
            "<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:2px 6px}</style></head><body>"
            f"<h1>Patch compliance: {e(self.baseline)}</h1><p>as of {e(s['as_of'])}: {s['hosts']} hosts, "
            f"{s['compliant']} compliant, {s['non_compliant']} non-compliant, {s['unknown']} unknown, "
            f"{s['pending_reboot']} pending reboot; missing by severity: {e(_counts(s['missing_by_severity']))}</p>"
            "<table><tr><th>host</th><th>state</th><th>missing approved</th><th>rejected installed</th></tr>"
            f"{rows}</table></body></html>\n"
        )


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"


def compliance_report(baseline: Baseline, scans: Iterable[HostScan], as_of: date) -> ComplianceReport:
    """Evaluate every scan against ``baseline`` on ``as_of``."""
    judged = tuple(sorted((evaluate(baseline, s, as_of) for s in scans), key=lambda h: h.host))
    return ComplianceReport(baseline.name, as_of, judged)
