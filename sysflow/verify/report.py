"""Verification reports per host and per run: counts, failures first, diffs; JSON and Markdown.

:class:`VerificationReport` is what the engine's ``result.verification_results`` returns. It is a
frozen value built from verdicts (and drift reports) with :meth:`VerificationReport.build`; it
renders as JSON (``to_json`` / ``from_dict`` round-trip, for the run store) and as Markdown for a
change ticket or a notification.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sysflow.verify.compare import Outcome, Verdict, worst
from sysflow.verify.drift import Difference, DriftReport

__all__ = ["Counts", "HostReport", "VerificationReport"]


@dataclass(frozen=True, slots=True)
class Counts:
    """How many checks passed, failed, or could not be decided."""

    passed: int = 0
    failed: int = 0
    inconclusive: int = 0

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.inconclusive

    @classmethod
    def of(cls, outcomes: Iterable[Outcome]) -> Counts:
        seen = list(outcomes)
        return cls(seen.count(Outcome.PASS), seen.count(Outcome.FAIL), seen.count(Outcome.INCONCLUSIVE))

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.passed + other.passed, self.failed + other.failed, self.inconclusive + other.inconclusive
        )

    def to_dict(self) -> dict[str, int]:
        return {
            "passed": self.passed,
            "failed": self.failed,
            "inconclusive": self.inconclusive,
            "total": self.total,
        }


def _failures_first(verdicts: Iterable[Verdict]) -> tuple[Verdict, ...]:
    return tuple(sorted(verdicts, key=lambda v: -v.passed.severity))


@dataclass(frozen=True, slots=True)
class HostReport:
    """One host's verdicts, failures first."""

    host: str
    verdicts: tuple[Verdict, ...] = ()

    @property
    def outcome(self) -> Outcome:
        return worst(v.passed for v in self.verdicts)

    @property
    def counts(self) -> Counts:
        return Counts.of(v.passed for v in self.verdicts)

    @property
    def failures(self) -> tuple[Verdict, ...]:
        return tuple(v for v in self.verdicts if v.passed is not Outcome.PASS)

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "outcome": self.outcome.value,
            "counts": self.counts.to_dict(),
            "verdicts": [v.to_dict() for v in self.verdicts],
        }


@dataclass(frozen=True, slots=True)
class VerificationReport:
    """A run's (or a wave's) verification: hosts with failures first, then drift."""

    hosts: tuple[HostReport, ...] = ()
    drift: tuple[DriftReport, ...] = ()
    title: str = "Verification report"
    meta: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        verdicts: Iterable[Verdict],
        *,
        drift: Sequence[DriftReport] = (),
        title: str = "Verification report",
        meta: Mapping[str, str] | None = None,
    ) -> VerificationReport:
        """Group verdicts by host (first-seen order), failing hosts first."""
        by_host: dict[str, list[Verdict]] = {}
        for v in verdicts:
            by_host.setdefault(v.host, []).append(v)
        reports = [HostReport(h, _failures_first(vs)) for h, vs in by_host.items()]
        reports.sort(key=lambda r: -r.outcome.severity)
        return cls(tuple(reports), tuple(drift), title, dict(meta or {}))

    @property
    def outcome(self) -> Outcome:
        """The worst host outcome; drift with outliers is a failure."""
        drifted = [Outcome.FAIL for d in self.drift if d.drifted]
        return worst([*(h.outcome for h in self.hosts), *drifted])

    @property
    def passed(self) -> bool:
        return self.outcome is Outcome.PASS

    @property
    def counts(self) -> Counts:
        total = Counts()
        for h in self.hosts:
            total += h.counts
        return total

    def _hosts_with(self, outcome: Outcome) -> tuple[str, ...]:
        return tuple(h.host for h in self.hosts if h.outcome is outcome)

    @property
    def failed_hosts(self) -> tuple[str, ...]:
        return self._hosts_with(Outcome.FAIL)

    @property
    def inconclusive_hosts(self) -> tuple[str, ...]:
        return self._hosts_with(Outcome.INCONCLUSIVE)

    @property
    def passed_hosts(self) -> tuple[str, ...]:
        return self._hosts_with(Outcome.PASS)

    @property
    def failures(self) -> tuple[Verdict, ...]:
        """Every non-passing verdict, failures before inconclusive ones."""
        return _failures_first(v for h in self.hosts for v in h.failures)

    def host(self, name: str) -> HostReport:
        """The report of one host (an empty one if it has no verdicts)."""
        return next((h for h in self.hosts if h.host == name), HostReport(name))

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "meta": dict(self.meta),
            "outcome": self.outcome.value,
            "counts": self.counts.to_dict(),
            "hosts": [h.to_dict() for h in self.hosts],
            "drift": [d.to_dict() for d in self.drift],
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, default=str)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VerificationReport:
        """Rebuild a report from :meth:`to_dict` output."""
        hosts = tuple(
            HostReport(str(h["host"]), tuple(Verdict.from_dict(v) for v in h["verdicts"]))
            for h in data.get("hosts", [])
        )
        drift = tuple(_drift_from_dict(d) for d in data.get("drift", []))
        meta = {str(k): str(v) for k, v in data.get("meta", {}).items()}
        return cls(hosts, drift, str(data.get("title", "Verification report")), meta)

    def to_markdown(self) -> str:
        from sysflow.verify._markdown import render

        return render(self)


def _drift_from_dict(data: Mapping[str, Any]) -> DriftReport:
    differences = tuple(
        Difference(str(d["host"]), str(d["probe"]), str(d["key"]), d.get("value"), d.get("reference"))
        for d in data.get("differences", [])
    )
    unknown = {str(h): tuple(str(p) for p in ps) for h, ps in data.get("unknown", {}).items()}
    return DriftReport(
        str(data["reference"]),
        tuple(str(h) for h in data.get("hosts", [])),
        differences,
        tuple(str(a) for a in data.get("ambiguous", [])),
        unknown,
    )
