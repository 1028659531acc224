"""Parsers of dnf's own output (RHEL, Rocky, Alma, Fedora): ``dnf check-update``,
``dnf updateinfo list`` (dnf 4's text, with or without ``--with-cve``; dnf 5's table and
``--json``), ``dnf updateinfo info`` (dnf 4's text: the advisory's date, type, severity and CVEs,
which dnf 4's list lacks), ``rpm -qa`` in the scan's query format, and ``needs-restarting -r``."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sysflow.model.versions import compare_rpm
from sysflow.patch.records import Classification, Severity

__all__ = [
    "Advisory",
    "AdvisoryInfo",
    "Offered",
    "parse_check_update",
    "parse_needs_restarting",
    "parse_rpm_installed",
    "parse_updateinfo_info",
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


@dataclass(frozen=True, slots=True)
class AdvisoryInfo:
    """One advisory of ``dnf updateinfo info``: its id, title, type, severity, publication date
    (``Issued``, else ``Updated``) and CVE ids."""

    advisory: str
    title: str
    classification: Classification
    severity: Severity
    issued: date | None
    cves: tuple[str, ...]


_LABELS = "Update ID|Release|Type|Status|Issued|Updated|Bugs|CVEs|Description|Severity|Rights|Files|Installed"
_INFO_LINE = re.compile(rf"^\s*(?P<label>{_LABELS})?\s*:(?:\s(?P<value>.*))?$")
_CVE = re.compile(r"CVE-\d{4}-\d{4,}")


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError:
        return None


def _fields(lines: list[str]) -> dict[str, list[str]]:
    """``Label: value`` lines (a blank label continues the one before) → label → values."""
    fields: dict[str, list[str]] = {}
    label = ""
    for line in lines:
        m = _INFO_LINE.match(line)
        if m is not None and (m["label"] or label):
            label = m["label"] or label
            fields.setdefault(label, []).append((m["value"] or "").strip())
    return fields


def _blocks(text: str) -> list[tuple[str, list[str]]]:
    """(title, lines) per advisory: a title sits between two ``=`` rules; without rules (the
    scan's compact form) an ``Update ID`` line starts the next block."""
    blocks: list[tuple[str, list[str]]] = []
    title, lines, in_title = "", list[str](), False
    for line in text.splitlines():
        if line.startswith("====="):
            if not in_title:
                blocks.append((title, lines))
                title, lines = "", []
            in_title = not in_title
        elif in_title:
            title = line.strip()
        else:
            m = _INFO_LINE.match(line)
            if (
                m is not None
                and m["label"] == "Update ID"
                and any(x.strip().startswith("Update ID") for x in lines)
            ):
                blocks.append((title, lines))
                title, lines = "", []
            lines.append(line)
    blocks.append((title, lines))
    return blocks


def parse_updateinfo_info(text: str) -> dict[str, AdvisoryInfo]:
    """``dnf updateinfo info`` (dnf 4: ``  Update ID: RHSA-2024:2394``, ``    Updated: 2024-04-30
    10:37:54``, ``       CVEs: CVE-...`` with ``           : CVE-...`` continuations; yum's and older
    dnf's ``Label : value`` and ``Issued :`` too) → advisory id → :class:`AdvisoryInfo` (the
    publication date is ``Issued`` when given, else ``Updated``)."""
    found: dict[str, AdvisoryInfo] = {}
    for title, lines in _blocks(text):
        fields = _fields(lines)
        ident = fields.get("Update ID", [""])[0]
        if not ident:
            continue
        first = {k: v[0] for k, v in fields.items()}
        found[ident] = AdvisoryInfo(
            ident,
            title,
            _TYPES.get(first.get("Type", "").lower(), Classification.OTHER),
            Severity.parse(first.get("Severity")),
            _day(first.get("Issued", "")) or _day(first.get("Updated", "")),
            tuple(sorted({c for line in fields.get("CVEs", ()) for c in _CVE.findall(line)})),
        )
    return found


def parse_rpm_installed(text: str) -> dict[str, str]:
    """``rpm -q[a] --qf '%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE}\\n'`` → name → version (epoch 0
    dropped, as dnf prints it; of several installed versions, as kernels are, the highest)."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        name, _, version = line.strip().partition(" ")
        version = version.removeprefix("0:")
        if version and (name not in found or compare_rpm(version, found[name]) > 0):
            found[name] = version
    return found


def parse_needs_restarting(text: str, status: int | None = None) -> bool:
    """``needs-restarting -r``: exit 1 (or its sentence) means a reboot is required."""
    if status is not None:
        return status == 1
    return "Reboot is required" in text
