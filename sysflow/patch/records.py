"""What a scan finds on one host: installed versions, the updates offered, a pending reboot."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

__all__ = ["Classification", "Family", "HostScan", "Severity", "Update"]


class Family(StrEnum):
    """Package family of a host: which manager and which version order."""

    DEBIAN = "debian"
    REDHAT = "redhat"


class Classification(StrEnum):
    """What kind of update (Debian: the security pocket or not; dnf: the advisory type)."""

    SECURITY = "security"
    BUGFIX = "bugfix"
    ENHANCEMENT = "enhancement"
    OTHER = "other"


class Severity(StrEnum):
    """Advisory severity, most severe first (``rank`` orders them)."""

    CRITICAL = "critical"
    IMPORTANT = "important"
    MODERATE = "moderate"
    LOW = "low"
    NONE = "none"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)

    @classmethod
    def parse(cls, text: str | None) -> Severity:
        """``Important``, ``Important/Sec.``, ``None``, ``unspecified``... → a member."""
        word = (text or "").split("/")[0].strip().lower()
        return cls(word) if word in cls._value2member_map_ else cls.NONE


@dataclass(frozen=True, slots=True)
class Update:
    """One version of a package a host could move to (newer than what it has)."""

    name: str
    version: str
    installed: str | None
    classification: Classification = Classification.OTHER
    severity: Severity = Severity.NONE
    published: date | None = None
    cves: tuple[str, ...] = ()
    origin: str = ""  # Debian: the suite (bookworm-security); dnf: the repository or advisory
    priority: str = ""  # Debian's Priority field (required, important, standard, optional, extra)
    section: str = ""
    advisory: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "installed": self.installed,
            "classification": self.classification.value,
            "severity": self.severity.value,
            "published": self.published.isoformat() if self.published else None,
            "cves": list(self.cves),
            "origin": self.origin,
            "priority": self.priority,
            "section": self.section,
            "advisory": self.advisory,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Update:
        published = data.get("published")
        return cls(
            data["name"],
            data["version"],
            data.get("installed"),
            Classification(data.get("classification", "other")),
            Severity(data.get("severity", "none")),
            date.fromisoformat(published) if published else None,
            tuple(data.get("cves", ())),
            data.get("origin", ""),
            data.get("priority", ""),
            data.get("section", ""),
            data.get("advisory", ""),
        )


@dataclass(frozen=True, slots=True)
class HostScan:
    """A host's package state at ``scanned_at``: what it has (``installed``: name → version, for
    the packages the scan asked about), every newer version it is offered, and a pending reboot."""

    host: str
    family: Family
    scanned_at: datetime
    installed: Mapping[str, str] = field(default_factory=dict)
    updates: tuple[Update, ...] = ()
    reboot_required: bool = False
    error: str = ""  # the scan could not run or be read: the host is unknown, not compliant

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "family": self.family.value,
            "scanned_at": self.scanned_at.isoformat(),
            "installed": dict(sorted(self.installed.items())),
            "updates": [u.to_dict() for u in self.updates],
            "reboot_required": self.reboot_required,
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HostScan:
        return cls(
            data["host"],
            Family(data["family"]),
            datetime.fromisoformat(data["scanned_at"]),
            dict(data.get("installed", {})),
            tuple(Update.from_dict(u) for u in data.get("updates", ())),
            bool(data.get("reboot_required", False)),
            data.get("error", ""),
        )
