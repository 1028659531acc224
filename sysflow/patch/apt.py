"""Parsers of apt's own output (Debian, Ubuntu): ``apt list --upgradable``, ``apt-get -s upgrade``,
``apt-cache policy``, ``apt-cache show`` fields and the ``Release`` files of the host's lists.

A version is a security update when one of the suites offering it is a security pocket
(``bookworm-security``, ``noble-security``) or its origin is labelled ``*-Security``
(``Debian-Security:12/stable-security`` in ``apt-get -s``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from email.utils import parsedate_to_datetime

__all__ = [
    "AptCandidate",
    "PolicyEntry",
    "PolicyVersion",
    "ReleaseInfo",
    "is_security_suite",
    "parse_apt_cache_policy",
    "parse_apt_cache_show",
    "parse_apt_get_simulate",
    "parse_apt_list_upgradable",
    "parse_release",
]


@dataclass(frozen=True, slots=True)
class AptCandidate:
    """One package apt would upgrade: from ``installed`` to ``version``, offered by ``suites``."""

    name: str
    version: str
    installed: str | None
    suites: tuple[str, ...]
    arch: str = ""

    @property
    def security(self) -> bool:
        return any(is_security_suite(s) for s in self.suites)


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    """A row of ``apt-cache policy``'s version table: the version, its pin and where it comes from
    (``bookworm-security/main`` or ``/var/lib/dpkg/status``)."""

    version: str
    pin: int
    sources: tuple[str, ...]

    @property
    def suites(self) -> tuple[str, ...]:
        """The suite of each source (``bookworm-security``; ``./`` for a flat repository)."""
        return tuple(_suite_of(s) for s in self.sources if not s.startswith("/"))


@dataclass(frozen=True, slots=True)
class PolicyEntry:
    """``apt-cache policy NAME``: installed and candidate versions, and every version known."""

    name: str
    installed: str | None
    candidate: str | None
    versions: tuple[PolicyVersion, ...]


@dataclass(frozen=True, slots=True)
class ReleaseInfo:
    """The fields of a repository's Release file a baseline reads."""

    suite: str
    codename: str
    origin: str
    label: str
    published: date | None


def is_security_suite(suite: str) -> bool:
    """True for a security pocket: ``bookworm-security``, ``stable-security``, ``noble-security``."""
    return suite.endswith(("-security", "/updates"))


_LIST = re.compile(
    r"^(?P<name>[^/\s]+)/(?P<suites>\S+) (?P<version>\S+) (?P<arch>\S+)(?: \[upgradable from: (?P<old>[^\]]+)\])?"
)


def parse_apt_list_upgradable(text: str) -> list[AptCandidate]:
    """``apt list --upgradable``: ``name/suite[,suite] VERSION ARCH [upgradable from: OLD]``."""
    found = []
    for line in text.splitlines():
        m = _LIST.match(line)
        if m is not None:
            suites = tuple(m["suites"].split(","))
            found.append(AptCandidate(m["name"], m["version"], m["old"], suites, m["arch"]))
    return found


_INST = re.compile(
    r"^Inst (?P<name>\S+)(?: \[(?P<old>[^\]]+)\])? \((?P<version>\S+) (?P<origins>.*) \[(?P<arch>[^\]]+)\]\)"
)


def parse_apt_get_simulate(text: str) -> list[AptCandidate]:
    """``apt-get -s upgrade``: ``Inst NAME [OLD] (NEW Origin:Release/suite[, ...] [ARCH])``; the
    suites keep the origin's label when it marks security (``Debian-Security:12/stable-security``
    → ``stable-security``)."""
    found = []
    for line in text.splitlines():
        m = _INST.match(line)
        if m is None:
            continue
        suites = []
        for origin in m["origins"].split(", "):
            label, _, rest = origin.partition(":")
            suite = rest.partition("/")[2] or rest
            if label.endswith("-Security") and not is_security_suite(suite):
                suite += "-security"
            suites.append(suite)
        found.append(AptCandidate(m["name"], m["version"], m["old"], tuple(suites), m["arch"]))
    return found


def _suite_of(source: str) -> str:
    """``http://deb.debian.org/debian bookworm-security/main amd64 Packages`` → ``bookworm-security``."""
    parts = source.split()
    return parts[1].split("/")[0] if len(parts) > 1 and parts[1] != "./" else "./"


def _none(value: str) -> str | None:
    return None if value == "(none)" else value


def _policy_blocks(text: str) -> Iterator[list[str]]:
    block: list[str] = []
    for line in text.splitlines():
        if line and not line[0].isspace() and line.endswith(":"):
            if block:
                yield block
            block = [line]
        elif block:
            block.append(line)
    if block:
        yield block


def _policy_entry(block: list[str]) -> PolicyEntry:
    name = block[0][:-1]
    installed = candidate = None
    versions: list[PolicyVersion] = []
    row: tuple[str, int] | None = None
    sources: list[str] = []
    for line in block[1:]:
        stripped = line.strip()
        if stripped.startswith("Installed:"):
            installed = _none(stripped.split(":", 1)[1].strip())
        elif stripped.startswith("Candidate:"):
            candidate = _none(stripped.split(":", 1)[1].strip())
        elif re.match(r"^ (\*\*\*| {3}) \S+ -?\d+$", line):
            if row is not None:
                versions.append(PolicyVersion(row[0], row[1], tuple(sources)))
            version, pin = line[5:].split()
            row, sources = (version, int(pin)), []
        elif row is not None and re.match(r"^ +-?\d+ \S", line):
            sources.append(stripped.split(None, 1)[1])
    if row is not None:
        versions.append(PolicyVersion(row[0], row[1], tuple(sources)))
    return PolicyEntry(name, installed, candidate, tuple(versions))


def parse_apt_cache_policy(text: str) -> dict[str, PolicyEntry]:
    """``apt-cache policy NAME...`` (run with ``LC_ALL=C``): one entry per package named."""
    return {entry.name: entry for entry in map(_policy_entry, _policy_blocks(text))}


def parse_apt_cache_show(text: str) -> dict[tuple[str, str], dict[str, str]]:
    """``apt-cache show`` stanzas → ``{(package, version): {field: value}}`` (single-line fields)."""
    found: dict[tuple[str, str], dict[str, str]] = {}
    for stanza in re.split(r"\n\s*\n", text):
        fields = {
            k.strip(): v.strip()
            for k, _, v in (ln.partition(":") for ln in stanza.splitlines() if ln[:1].isalpha())
        }
        if "Package" in fields and "Version" in fields:
            found[(fields["Package"], fields["Version"])] = fields
    return found


def parse_release(text: str) -> ReleaseInfo:
    """A ``Release`` / ``InRelease`` file (its signature lines are ignored)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key in ("Suite", "Codename", "Origin", "Label", "Date") and key not in fields:
            fields[key] = value.strip()
    published = None
    if "Date" in fields:
        try:
            published = parsedate_to_datetime(fields["Date"]).date()
        except (TypeError, ValueError):
            published = None
    return ReleaseInfo(
        fields.get("Suite", ""), fields.get("Codename", ""), fields.get("Origin", ""),
        fields.get("Label", ""), published,
    )  # fmt: skip
