"""Parsers of dnf's own output (RHEL, Rocky, Alma, Fedora): ``dnf check-update``,
``dnf updateinfo list`` (dnf 4's text, with or without ``--with-cve``; dnf 5's table and
``--json``), ``rpm -qa`` in the scan's query format, and ``needs-restarting -r``."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sysflow.patch.records import Classification, Severity

__all__ = [
    "Advisory",
    "Offered",
    "parse_check_update",
    "parse_needs_restarting",
    "parse_rpm_installed",
    "parse_updateinfo_json",
    "parse_updateinfo_list",
    "split_nevra",
]


@dataclass(frozen=True, slots=True)
class Offered:
    """A row of ``dnf check-update``: a newer ``version`` of ``name`` from ``repo``."""

    name: str
    arch: str
    version: str
    repo: str


@dataclass(frozen=True, slots=True)
class Advisory:
    """One package version named by an advisory (``RHSA-2024:2394``), or by a CVE row of
    ``--with-cve`` (then ``cves`` holds it and ``advisory`` is empty)."""

    advisory: str
    classification: Classification
    severity: Severity
    name: str
    version: str
    arch: str
    issued: date | None = None
    cves: tuple[str, ...] = ()


def split_nevra(nevra: str) -> tuple[str, str, str]:
    """``kernel-5.14.0-427.16.1.el9_4.x86_64`` → (``kernel``, ``5.14.0-427.16.1.el9_4``,
    ``x86_64``); an epoch stays on the version (``vim-data-2:9.1-1.fc41.noarch`` → ``2:9.1-1.fc41``)."""
    rest, _, arch = nevra.rpartition(".")
    rest, _, release = rest.rpartition("-")
    name, _, version = rest.rpartition("-")
    return name, f"{version}-{release}", arch


_OFFERED = re.compile(r"^(?P<name>\S+)\.(?P<arch>[A-Za-z0-9_]+)\s+(?P<version>\S+)\s+(?P<repo>\S+)\s*$")


def parse_check_update(text: str) -> list[Offered]:
    """``dnf check-update`` (exit status 100 when updates exist): ``name.arch  [E:]V-R  repo`` rows;
    the header, the metadata line and the ``Obsoleting Packages`` section are skipped."""
    found = []
    for line in text.splitlines():
        if line.startswith("Obsoleting"):
            break
        m = _OFFERED.match(line)
        if m is not None and "-" in m["version"]:
            found.append(Offered(m["name"], m["arch"], m["version"], m["repo"]))
    return found


_TYPES = {
    "security": Classification.SECURITY,
    "bugfix": Classification.BUGFIX,
    "enhancement": Classification.ENHANCEMENT,
    "newpackage": Classification.ENHANCEMENT,
}


def _classify(kind: str) -> Classification:
    if kind.endswith("/Sec."):
        return Classification.SECURITY
    return _TYPES.get(kind.lower(), Classification.OTHER)


_DNF4 = re.compile(
    r"^(?P<id>\S+)\s+(?P<kind>(?:\S+/Sec\.)|bugfix|enhancement|security|newpackage|unspecified)\s+(?P<nevra>\S+)\s*$"
)
_DNF5 = re.compile(
    r"^(?P<id>\S+)\s+(?P<type>\S+)\s+(?P<severity>\S+)\s+(?P<nevra>\S+)\s+(?P<issued>\d{4}-\d{2}-\d{2})"
)


def parse_updateinfo_list(text: str) -> list[Advisory]:
    """``dnf updateinfo list [--with-cve]`` in dnf 4's form (``RLSA-2024:2394 Important/Sec.
    NEVRA``; a ``CVE-...`` first column with ``--with-cve``) or dnf 5's table (Name, Type,
    Severity, Package, Issued)."""
    found = []
    for line in text.splitlines():
        if m := _DNF5.match(line):
            name, version, arch = split_nevra(m["nevra"])
            found.append(
                Advisory(
                    m["id"],
                    _TYPES.get(m["type"], Classification.OTHER),
                    Severity.parse(m["severity"]),
                    name,
                    version,
                    arch,
                    date.fromisoformat(m["issued"]),
                )
            )
        elif m := _DNF4.match(line):
            name, version, arch = split_nevra(m["nevra"])
            cve = m["id"].startswith("CVE-")
            found.append(
                Advisory(
                    "" if cve else m["id"],
                    _classify(m["kind"]),
                    Severity.parse(m["kind"]),
                    name,
                    version,
                    arch,
                    None,
                    (m["id"],) if cve else (),
                )
            )
    return found


def _issued(value: Any) -> date | None:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).date()
    if isinstance(value, str) and value[:10].count("-") == 2:
        return date.fromisoformat(value[:10])
    return None


def parse_updateinfo_json(text: str) -> list[Advisory]:
    """dnf 5's ``dnf updateinfo list --json`` (``advisory list --json``): objects with ``name``,
    ``type``, ``severity``, ``nevra`` and ``buildtime`` (an ISO string before dnf 5.3, epoch seconds
    since)."""
    found = []
    for item in json.loads(text or "[]"):
        name, version, arch = split_nevra(item["nevra"])
        found.append(
            Advisory(
                item.get("name", ""),
                _TYPES.get(str(item.get("type", "")), Classification.OTHER),
                Severity.parse(item.get("severity")),
                name,
                version,
                arch,
                _issued(item.get("buildtime")),
            )
        )
    return found


def parse_rpm_installed(text: str) -> dict[str, str]:
    """``rpm -qa --qf '%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE}\\n'`` → name → version (epoch 0
    dropped, as dnf prints it)."""
    found = {}
    for line in text.splitlines():
        name, _, version = line.strip().partition(" ")
        if version:
            found[name] = version.removeprefix("0:")
    return found


def parse_needs_restarting(text: str, status: int | None = None) -> bool:
    """``needs-restarting -r``: exit 1 (or its sentence) means a reboot is required."""
    if status is not None:
        return status == 1
    return "Reboot is required" in text
