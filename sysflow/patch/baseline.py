"""Patch baselines (what users write, YAML or Python) and their evaluation against a host's scan.

A baseline, as AWS Patch Manager's: per OS family, *rules* approve updates by classification
(Debian: the security pocket; dnf: the advisory type), severity (dnf), Debian ``Priority`` and
``Section``, once ``approve_after_days`` have passed since the update's publication (Debian: the
``Date`` of the Release file that offers it; dnf: the advisory's issue date) or up to
``approve_until_date``; an explicit ``approved`` list (``name`` or ``name=version``, approved
whatever the rules say) and a ``rejected`` list (never installed by sysflow). A rejected package a
host already has makes it non-compliant when ``rejected_action`` is ``block``; with
``allow_as_dependency`` it is reported but tolerated (another package needs it).

:func:`evaluate` is pure: a :class:`HostCompliance` from a scan and the day it is judged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationError

from sysflow.errors import WorkflowError
from sysflow.model.base import FrozenModel, problems_from_validation
from sysflow.model.versions import compare_debian, compare_rpm
from sysflow.patch.records import Classification, Family, HostScan, Severity, Update

__all__ = ["Baseline", "BaselineRule", "HostCompliance", "PatchState", "RebootPolicy", "evaluate"]

RebootPolicy = Literal["if-needed", "never", "always"]


def _spec(value: str) -> str:
    name, _, version = value.partition("=")
    if not name or " " in value or (value.count("=") and not version):
        raise ValueError(f"not NAME or NAME=VERSION: {value!r}")
    return value


PackageSpec = Annotated[str, AfterValidator(_spec)]


class BaselineRule(FrozenModel):
    """Updates this rule approves: every listed criterion must hold (an empty list: any)."""

    classification: list[Classification] = Field(
        default_factory=list, description="security, bugfix, enhancement, other (empty: any)."
    )
    severity: list[Severity] = Field(
        default_factory=list, description="critical, important, moderate, low, none (empty: any)."
    )
    priority: list[str] = Field(default_factory=list, description="Debian Priority values (empty: any).")
    section: list[str] = Field(default_factory=list, description="Debian Section values (empty: any).")
    approve_after_days: int | None = Field(
        None, ge=0, description="Approved this many days after publication (unknown date: not yet)."
    )
    approve_until_date: date | None = Field(
        None, description="Approve only updates published on or before this date."
    )

    def approves(self, update: Update, today: date) -> bool:
        """True when ``update`` meets every criterion on ``today``."""
        return self._matches(update) and self._due(update, today)

    def _matches(self, u: Update) -> bool:
        checks = (
            (self.classification, u.classification),
            (self.severity, u.severity),
            (self.priority, u.priority),
            (self.section, u.section.rpartition("/")[2]),
        )
        return all(not wanted or value in wanted for wanted, value in checks)

    def _due(self, u: Update, today: date) -> bool:
        if self.approve_after_days is None and self.approve_until_date is None:
            return True
        if u.published is None:
            return False
        if self.approve_until_date is not None and u.published > self.approve_until_date:
            return False
        return (
            self.approve_after_days is None or u.published + timedelta(days=self.approve_after_days) <= today
        )


class Baseline(FrozenModel):
    """A patch baseline for one OS family."""

    name: str = Field(description="Name shown in reports.")
    family: Family = Field(Family.DEBIAN, description="debian (apt) or redhat (dnf).")
    description: str = ""
    rules: list[BaselineRule] = Field(default_factory=list, description="Approval rules (any may approve).")
    approved: list[PackageSpec] = Field(
        default_factory=list, description="NAME or NAME=VERSION, always approved."
    )
    rejected: list[PackageSpec] = Field(
        default_factory=list, description="NAME or NAME=VERSION, never installed."
    )
    rejected_action: Literal["block", "allow_as_dependency"] = Field(
        "block", description="A rejected package pulled in or present: refuse/non-compliant, or tolerate."
    )
    reboot: RebootPolicy = Field("if-needed", description="After install: if-needed, never or always.")

    @classmethod
    def from_file(cls, path: str | Path) -> Baseline:
        """Load a baseline from YAML (or JSON); every problem is reported with the file's name."""
        import yaml

        data = yaml.safe_load(Path(path).read_text())
        return cls.from_data(data, source=str(path))

    @classmethod
    def from_data(cls, data: Any, *, source: str = "baseline") -> Baseline:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise WorkflowError(problems_from_validation(exc), source=source) from None

    @property
    def names(self) -> set[str]:
        """Package names the lists mention (the scan reports them whether or not updates exist)."""
        return {s.partition("=")[0] for s in (*self.approved, *self.rejected)}

    @property
    def needs_fields(self) -> bool:
        """Whether a rule reads Debian's Priority or Section (the scan then asks for them)."""
        return any(r.priority or r.section for r in self.rules)

    def is_rejected(self, name: str, version: str | None) -> bool:
        return any(_listed(s, name, version) for s in self.rejected)

    def is_approved(self, update: Update, today: date) -> bool:
        """Whether this version may be installed on ``today``."""
        if self.is_rejected(update.name, update.version):
            return False
        if any(_listed(s, update.name, update.version) for s in self.approved):
            return True
        return any(r.approves(update, today) for r in self.rules)

    def compare(self, a: str, b: str) -> int:
        return compare_debian(a, b) if self.family is Family.DEBIAN else compare_rpm(a, b)


def _listed(spec: str, name: str, version: str | None) -> bool:
    n, _, v = spec.partition("=")
    return n == name and (not v or v == version)


class PatchState(StrEnum):
    """A host's standing against a baseline."""

    COMPLIANT = "compliant"
    NON_COMPLIANT = "non_compliant"
    UNKNOWN = "unknown"  # the scan failed


@dataclass(frozen=True, slots=True)
class HostCompliance:
    """A host judged against a baseline: ``missing_approved`` are the pins an install puts on."""

    host: str
    baseline: str
    state: PatchState
    installed: Mapping[str, str]
    missing_approved: tuple[Update, ...]
    missing_not_approved: tuple[Update, ...]
    rejected_installed: tuple[tuple[str, str], ...]
    reboot_required: bool
    error: str = ""

    @property
    def pins(self) -> list[str]:
        """``name=version`` of every approved version the host lacks."""
        return [f"{u.name}={u.version}" for u in self.missing_approved]

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "baseline": self.baseline,
            "state": self.state.value,
            "installed": dict(sorted(self.installed.items())),
            "missing_approved": [u.to_dict() for u in self.missing_approved],
            "missing_not_approved": [u.to_dict() for u in self.missing_not_approved],
            "rejected_installed": [{"name": n, "version": v} for n, v in self.rejected_installed],
            "reboot_required": self.reboot_required,
            "error": self.error,
        }


def _by_name(updates: Iterable[Update]) -> dict[str, list[Update]]:
    found: dict[str, list[Update]] = {}
    for u in updates:
        found.setdefault(u.name, []).append(u)
    return found


def _highest(baseline: Baseline, updates: list[Update]) -> Update:
    best = updates[0]
    for u in updates[1:]:
        if baseline.compare(u.version, best.version) > 0:
            best = u
    return best


def evaluate(baseline: Baseline, scan: HostScan, today: date) -> HostCompliance:
    """Judge ``scan`` against ``baseline`` on ``today``: per package, the highest approved version
    newer than the installed one is missing-approved; a package offered only unapproved versions is
    missing-not-approved (its highest); a rejected package present is rejected-installed."""
    if scan.error:
        return HostCompliance(scan.host, baseline.name, PatchState.UNKNOWN, {}, (), (), (), False, scan.error)
    approved: list[Update] = []
    not_approved: list[Update] = []
    for updates in _by_name(scan.updates).values():
        ok = [u for u in updates if baseline.is_approved(u, today)]
        if ok:
            approved.append(_highest(baseline, ok))
        else:
            not_approved.append(_highest(baseline, updates))
    rejected = tuple(sorted((n, v) for n, v in scan.installed.items() if baseline.is_rejected(n, v)))
    blocking = bool(rejected) and baseline.rejected_action == "block"
    state = PatchState.NON_COMPLIANT if approved or blocking else PatchState.COMPLIANT
    return HostCompliance(
        scan.host, baseline.name, state, dict(scan.installed),
        tuple(sorted(approved, key=lambda u: u.name)), tuple(sorted(not_approved, key=lambda u: u.name)),
        rejected, scan.reboot_required,
    )  # fmt: skip
