"""Host facts, gathered on demand through the verification layer's probes and cached for the run.

A task whose template or condition reads ``facts`` makes the run gather its host's facts once
(:class:`FactCache`): ``/etc/os-release`` (OS family, distribution, version), ``uname -r``, PID 1's name
(the service manager), ``nproc``, ``/proc/meminfo`` and ``df -Pk /``. The probes run concurrently
through :func:`sysflow.verify.probes.capture`, over whatever transport the run uses (SSH, local, the
simulator); a probe that fails leaves its facts out rather than failing the run — a condition that
reads a missing fact fails that operation with the reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from sysflow.clock import Clock
from sysflow.errors import VerificationError
from sysflow.transport import Transport
from sysflow.verify.parsers import Value
from sysflow.verify.probes import Probe, capture, kernel, os_release

__all__ = ["FACT_PROBES", "FactCache", "facts_from_values", "gather_facts", "os_family"]

_FAMILIES: Mapping[str, str] = {
    "debian": "Debian",
    "ubuntu": "Debian",
    "rhel": "RedHat",
    "centos": "RedHat",
    "fedora": "RedHat",
    "rocky": "RedHat",
    "almalinux": "RedHat",
    "ol": "RedHat",
    "amzn": "RedHat",
    "suse": "Suse",
    "opensuse": "Suse",
    "sles": "Suse",
    "alpine": "Alpine",
    "arch": "Archlinux",
}
_PKG_MGR: Mapping[str, str] = {
    "Debian": "apt",
    "RedHat": "dnf",
    "Suse": "zypper",
    "Alpine": "apk",
    "Archlinux": "pacman",
}
_KIB_PER_MIB = 1024


def _parse_int(text: str) -> Value:
    words = text.split()
    if not words or not words[0].isdigit():
        raise VerificationError(f"expected a number, got {text[:40]!r}")
    return int(words[0])


def _parse_meminfo(text: str) -> Value:
    out: dict[str, Value] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        words = rest.split()
        if words and words[0].isdigit():
            out[key.strip()] = int(words[0])
    if "MemTotal" not in out:
        raise VerificationError("no MemTotal in /proc/meminfo")
    return out


def _parse_df(text: str) -> Value:
    lines = [ln.split() for ln in text.splitlines() if ln.strip()]
    if len(lines) < 2 or len(lines[1]) < 4 or not lines[1][1].isdigit():
        raise VerificationError("unexpected df -Pk output")
    return {"total_kb": int(lines[1][1]), "free_kb": int(lines[1][3])}


def _parse_word(text: str) -> Value:
    word = text.strip()
    if not word:
        raise VerificationError("empty output")
    return word


FACT_PROBES: tuple[Probe, ...] = (
    os_release(),
    kernel(),
    Probe("pid1", "cat /proc/1/comm", _parse_word),
    Probe("nproc", "nproc", _parse_int),
    Probe("meminfo", "cat /proc/meminfo", _parse_meminfo),
    Probe("df", "df -Pk /", _parse_df),
)


def os_family(release: Mapping[str, Any]) -> str | None:
    """The OS family (``Debian``, ``RedHat``, ...) of an ``/etc/os-release`` mapping."""
    ids = [str(release.get("ID", "")).lower(), *str(release.get("ID_LIKE", "")).lower().split()]
    for ident in ids:
        if ident in _FAMILIES:
            return _FAMILIES[ident]
    return ids[0].capitalize() or None


def facts_from_values(values: Mapping[str, Value]) -> dict[str, Any]:
    """Facts from the probes' parsed values (missing probes leave their facts out)."""
    facts: dict[str, Any] = {}
    release = values.get("os_release")
    if isinstance(release, dict):
        facts.update(_release_facts(release))
    if isinstance(values.get("kernel"), str):
        facts["kernel"] = values["kernel"]
    if isinstance(values.get("pid1"), str):
        facts["service_mgr"] = values["pid1"]
    if isinstance(values.get("nproc"), int):
        facts["processor_count"] = values["nproc"]
    mem = values.get("meminfo")
    if isinstance(mem, dict):
        facts["memtotal_mb"] = _mib(mem.get("MemTotal"))
        facts["memfree_mb"] = _mib(mem.get("MemAvailable", mem.get("MemFree")))
    disk = values.get("df")
    if isinstance(disk, dict):
        facts["disk_total_mb"] = _mib(disk.get("total_kb"))
        facts["disk_free_mb"] = _mib(disk.get("free_kb"))
    return facts


def _release_facts(release: dict[str, Any]) -> dict[str, Any]:
    family = os_family(release)
    version = str(release.get("VERSION_ID", ""))
    out: dict[str, Any] = {
        "os_release": dict(release),
        "os_family": family,
        "distribution": str(release.get("ID", "")),
        "distribution_version": version,
        "distribution_major_version": version.split(".")[0],
    }
    if family is not None and family in _PKG_MGR:
        legacy = family == "RedHat" and version.split(".")[0].isdigit() and int(version.split(".")[0]) < 8
        out["pkg_mgr"] = "yum" if legacy else _PKG_MGR[family]
    return out


def _mib(kib: Any) -> int | None:
    return int(kib) // _KIB_PER_MIB if isinstance(kib, int) else None


async def gather_facts(transport: Transport, host: str, clock: Clock | None = None) -> dict[str, Any]:
    """The facts of ``host``, gathered now (one concurrent round of probes)."""
    snapshot = await capture(transport, host, FACT_PROBES, clock=clock)
    facts = facts_from_values(snapshot.values)
    facts["gather_errors"] = dict(snapshot.errors)
    return facts


class FactCache:
    """Facts per host for one run: gathered on first use, then kept (concurrent askers share one gather)."""

    def __init__(self, transport: Transport, clock: Clock | None = None) -> None:
        self.transport = transport
        self.clock = clock
        self._tasks: dict[str, asyncio.Task[dict[str, Any]]] = {}

    async def get(self, host: str) -> dict[str, Any]:
        """The facts of ``host`` (gathered once per run)."""
        task = self._tasks.get(host)
        if task is None:
            task = self._tasks[host] = asyncio.ensure_future(gather_facts(self.transport, host, self.clock))
        return await asyncio.shield(task)

    def known(self, host: str) -> dict[str, Any] | None:
        """The facts of ``host`` if gathered already, else None."""
        task = self._tasks.get(host)
        return task.result() if task is not None and task.done() and not task.exception() else None
