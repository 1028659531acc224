"""Pre-flight: before a run's first wave (or alone, ``sysflow ping``), check every target host.

Per host, through the same transport the run uses: connect and authenticate (the host key is
judged by the transport's store), run ``echo ok`` (plus ``df -Pk PATH`` when a minimum of free
disk is asked for), then ``true`` through sudo when the workflow uses become. Failures are values
(one :class:`HostCheck` per host), never raised, so the caller can print one table of them all.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sysflow.errors import (
    AuthenticationFailed,
    CommandTimeout,
    ConnectionFailed,
    HostKeyMismatch,
    HostKeyUnknown,
    TransportError,
)
from sysflow.transport import CommandResult, Transport

__all__ = ["DEFAULT_PREFLIGHT_CONCURRENCY", "DiskNeed", "HostCheck", "PreflightSpec", "preflight"]

DEFAULT_PREFLIGHT_CONCURRENCY = 64  # hosts checked at once
DEFAULT_PREFLIGHT_TIMEOUT = 20.0  # seconds per command, after the connection is open
_OK = "ok"


@dataclass(frozen=True, slots=True)
class DiskNeed:
    """At least ``min_free`` bytes free on the file system holding ``path``."""

    path: str
    min_free: int


@dataclass(frozen=True, slots=True)
class PreflightSpec:
    """What to check beyond connect + login: sudo (the workflow uses become) and free disk."""

    become: bool = False
    disk: DiskNeed | None = None
    timeout: float = DEFAULT_PREFLIGHT_TIMEOUT


@dataclass(frozen=True, slots=True)
class HostCheck:
    """One host's verdict: ``check`` names the step that failed (``ok`` when none did)."""

    host: str
    check: str
    problem: str = ""
    error: TransportError | None = None
    exit_status: int | None = None
    stderr: str = ""
    millis: float = 0.0

    @property
    def ok(self) -> bool:
        return self.check == _OK


def _check_name(exc: TransportError) -> str:
    if isinstance(exc, HostKeyUnknown | HostKeyMismatch):
        return "host key"
    if isinstance(exc, AuthenticationFailed):
        return "auth"
    if isinstance(exc, ConnectionFailed):
        return "connect"
    return "command"


def _message(exc: TransportError, host: str) -> str:
    text = str(exc)
    return text[len(host) + 2 :] if text.startswith(f"{host}: ") else text


def _free_bytes(stdout: str) -> int | None:
    """Available bytes from ``df -Pk`` output (last line, 4th column in KiB)."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    fields = lines[-1].split() if len(lines) >= 2 else []
    if len(fields) < 4 or not fields[3].isdigit():
        return None
    return int(fields[3]) * 1024


def _disk_command(disk: DiskNeed | None) -> str:
    import shlex

    return "echo ok" if disk is None else f"echo ok; df -Pk {shlex.quote(disk.path)}"


async def _check_host(transport: Transport, host: str, spec: PreflightSpec) -> HostCheck:
    start = time.monotonic()
    try:
        result = await transport.run(host, _disk_command(spec.disk), timeout=spec.timeout)
    except (TransportError, CommandTimeout) as exc:
        return HostCheck(host, _check_name(exc), _message(exc, host), exc)
    millis = (time.monotonic() - start) * 1000
    if result.exit_status != 0 or not result.stdout.startswith(_OK):
        problem = f"'echo ok' exited {result.exit_status}"
        return HostCheck(host, "shell", problem, None, result.exit_status, result.stderr, millis)
    if spec.disk is not None:
        free = _free_bytes(result.stdout)
        if free is None or free < spec.disk.min_free:
            have = "unknown" if free is None else _size(free)
            problem = f"{have} free on {spec.disk.path}, needs {_size(spec.disk.min_free)}"
            return HostCheck(host, "disk", problem, millis=millis)
    if spec.become:
        return await _check_sudo(transport, host, spec, millis)
    return HostCheck(host, _OK, millis=millis)


async def _check_sudo(transport: Transport, host: str, spec: PreflightSpec, millis: float) -> HostCheck:
    from sysflow.actors.requests import takes_become

    try:
        if takes_become(transport):
            run: Any = transport.run  # the SSH transport's run, beyond the Transport protocol
            result: CommandResult = await run(host, "true", timeout=spec.timeout, become=True)
        else:
            result = await transport.run(host, "sudo -n true", timeout=spec.timeout)
    except TransportError as exc:
        return HostCheck(host, "sudo", _message(exc, host), exc, millis=millis)
    if result.exit_status != 0:
        first = (result.stderr.strip().splitlines() or [f"exit {result.exit_status}"])[0]
        return HostCheck(
            host, "sudo", f"sudo refused: {first}", None, result.exit_status, result.stderr, millis
        )
    return HostCheck(host, _OK, millis=millis)


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


async def preflight(
    transport: Transport,
    hosts: Sequence[str],
    spec: PreflightSpec | None = None,
    *,
    concurrency: int = DEFAULT_PREFLIGHT_CONCURRENCY,
) -> list[HostCheck]:
    """Check every host (at most ``concurrency`` at once); one verdict per host, in host order."""
    spec = spec or PreflightSpec()
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(host: str) -> HostCheck:
        async with gate:
            return await _check_host(transport, host, spec)

    return list(await asyncio.gather(*(one(h) for h in hosts)))
