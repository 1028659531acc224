"""What users write about verification: probes, comparisons, desired state, drift.

``sysflow.verify`` gives these meaning (parsers, comparators, reports). The brief's form::

    workflow.add_verification("verify_package_versions", {
        "before_tasks": ["backup"], "after_tasks": ["upgrade_packages"],
        "commands": {"package_versions": "dpkg -l | grep -E 'openssl|bash|kernel'"},
        "comparisons": {"package_versions": {"type": "regex_match", "pattern": r"ii\\s+openssl\\s+(\\S+)",
                                             "expected_change": "version_increase"}},
    })
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from sysflow.model.base import FrozenModel

__all__ = ["ComparisonSpec", "DriftSpec", "ProbeSpec", "VerificationSpec"]

ParserKind = Literal[
    "raw",
    "lines",
    "regex",
    "json",
    "keyvalue",
    "table",
    "dpkg",
    "rpm",
    "systemctl",
    "ports",
    "os_release",
    "checksum",
    "file_mode",
    "kernel",
]
ComparisonKind = Literal[
    "equals",
    "not_equals",
    "regex_match",
    "contains",
    "changed",
    "unchanged",
    "version_increase",
    "version_decrease",
    "version_equal",
    "less_than",
    "at_most",
    "greater_than",
    "at_least",
    "between",
    "json_subset",
    "<",
    "<=",
    ">",
    ">=",
    "==",
    "!=",
]
ExpectedChange = Literal[
    "changed", "unchanged", "version_increase", "version_decrease", "version_equal", "increase", "decrease"
]


class ProbeSpec(FrozenModel):
    """A command plus how to parse its output into state."""

    command: str = Field(description="Shell command run on the host (through the transport).")
    parser: ParserKind = Field(
        "raw", description="How the output becomes state (see sysflow.verify.parsers)."
    )
    pattern: str | None = Field(None, description="Regex for the regex parser (named or numbered groups).")
    path: str | None = Field(None, description="Dotted path into JSON output, e.g. status.version.")
    timeout: float | None = Field(None, gt=0, description="Seconds the probe may take (default 30).")
    check_exit: bool = Field(
        True, description="A non-zero exit is an error; off for commands like `systemctl is-active`."
    )

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        return {"command": data} if isinstance(data, str) else data


class ComparisonSpec(FrozenModel):
    """How a probe's before/after values are judged."""

    type: ComparisonKind = "equals"
    pattern: str | None = Field(None, description="Regex applied to the output before comparing (group 1).")
    expected: Any = Field(
        None,
        description="Expected value (equals, contains, thresholds, json_subset); for version kinds on a "
        "package map, the package name(s) to compare; for regex_match without pattern, the regex.",
    )
    expected_change: ExpectedChange | None = Field(None, description="How before → after must change.")
    version_scheme: Literal["debian", "rpm", "auto"] = Field(
        "auto",
        description="Version ordering; auto follows the probe's parser (dpkg/rpm) or the version's shape.",
    )
    low: float | None = Field(None, description="Lower bound for between (inclusive).")
    high: float | None = Field(None, description="Upper bound for between (inclusive).")


class DriftSpec(FrozenModel):
    """Compare hosts of a group with each other (majority) or with a golden host."""

    group: str | None = Field(None, description="Label of the group compared (the hosts are the wave's).")
    golden_host: str | None = Field(None, description="Compare with this host instead of the majority.")
    probes: list[str] = Field(default_factory=list, description="Probes compared (default: all).")


class VerificationSpec(FrozenModel):
    """Probes captured before some tasks and after others, compared per host."""

    before_tasks: list[str] = Field(
        default_factory=list, description="Capture before these tasks (empty: before the host's first task)."
    )
    after_tasks: list[str] = Field(
        default_factory=list, description="Capture after these tasks (empty: when the host is verified)."
    )
    commands: dict[str, ProbeSpec] = Field(default_factory=dict, description="Probe name -> probe.")
    comparisons: dict[str, ComparisonSpec] = Field(default_factory=dict, description="Probe name -> check.")
    expect: dict[str, str] = Field(
        default_factory=dict, description='Desired state, e.g. {nginx: active, openssl: ">= 3.0.11"}.'
    )
    targets: list[str] = Field(default_factory=lambda: ["all"], description="Host patterns verified.")
    drift: DriftSpec | None = Field(None, description="Also compare the hosts with each other.")
