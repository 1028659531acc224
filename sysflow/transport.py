"""The transport seam: run one command on one host and say what happened.

Implementations: ``actors.ssh.SSHTransport`` (asyncssh), ``actors.local.LocalTransport`` (a local
subprocess, for run-once hooks and tests) and ``sim.transport.SimTransport`` (the simulator).
Connection-level failures raise the ``ConnectionFailed`` family from ``sysflow.errors``; a command
that ran, whatever its exit status, is a :class:`CommandResult`; a command that overran its timeout
raises ``CommandTimeout`` after it was stopped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

__all__ = ["DEFAULT_OUTPUT_CAP", "CapturedOutput", "CommandResult", "Transport", "cap_output"]

DEFAULT_OUTPUT_CAP = 64 * 1024  # bytes of stdout/stderr kept per command (head and tail)


@dataclass(frozen=True, slots=True)
class CapturedOutput:
    """Output kept within a cap: the head and the tail, the total size, and a digest of all of it."""

    text: str
    total_bytes: int
    truncated: bool
    sha256: str


def cap_output(data: bytes | str, cap: int = DEFAULT_OUTPUT_CAP) -> CapturedOutput:
    """Keep the first and last ``cap/2`` bytes of ``data`` with a marker between them."""
    raw = data.encode("utf-8", "replace") if isinstance(data, str) else data
    digest = hashlib.sha256(raw).hexdigest()
    if len(raw) <= cap:
        return CapturedOutput(raw.decode("utf-8", "replace"), len(raw), False, digest)
    half = cap // 2
    omitted = len(raw) - 2 * half
    text = (
        raw[:half].decode("utf-8", "replace")
        + f"\n... [{omitted} bytes omitted] ...\n"
        + raw[-half:].decode("utf-8", "replace")
    )
    return CapturedOutput(text, len(raw), True, digest)


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What one command did on one host. ``exit_status`` is None when a signal ended it."""

    host: str
    command: str
    exit_status: int | None
    stdout: str
    stderr: str
    start: datetime
    end: datetime
    signal: str | None = None
    stdout_bytes: int = 0
    stderr_bytes: int = 0
    truncated: bool = False
    stdout_sha256: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    @property
    def duration(self) -> float:
        """Seconds from start to end."""
        return (self.end - self.start).total_seconds()


@runtime_checkable
class Transport(Protocol):
    """Runs commands on hosts named as in the inventory."""

    async def run(
        self,
        host: str,
        command: str,
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        stdin: str | bytes | None = None,
        cwd: str | None = None,
    ) -> CommandResult: ...

    async def close(self) -> None: ...
