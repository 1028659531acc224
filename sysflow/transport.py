"""The transport seam: run one command on one host and say what happened.

Implementations: ``actors.ssh.SSHTransport`` (asyncssh), ``actors.local.LocalTransport`` (a local
subprocess, for run-once hooks and tests) and ``sim.transport.SimTransport`` (the simulator).
Connection-level failures raise the ``ConnectionFailed`` family from ``sysflow.errors``; a command
that ran, whatever its exit status, is a :class:`CommandResult`; a command that overran its timeout
raises ``CommandTimeout`` after it was stopped.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

__all__ = [
    "COMMAND_ID_VAR",
    "DEFAULT_OUTPUT_CAP",
    "DEFAULT_SETTLE_TIMEOUT",
    "FETCHED_VAR",
    "FETCH_MARK",
    "FETCH_NEEDED",
    "HAVE_SHA_VAR",
    "OP_STARTED_VAR",
    "OUTPUT_LINE_CAP",
    "REBOOT_MARK",
    "REBOOT_NEEDED",
    "STAGE_SHA_VAR",
    "STAGE_SIZE_VAR",
    "STAGE_VAR",
    "UPLOAD_MARK",
    "UPLOAD_NEEDED",
    "CapturedOutput",
    "CommandResult",
    "Download",
    "Fetching",
    "OutputTap",
    "Reboot",
    "Reconnecting",
    "SettlePolicy",
    "Settled",
    "Settling",
    "Transport",
    "Upload",
    "Uploading",
    "cap_output",
    "command_id",
    "valid_command_id",
]

DEFAULT_OUTPUT_CAP = 64 * 1024  # bytes of stdout/stderr kept per command (head and tail)
OUTPUT_LINE_CAP = 4096  # bytes of one line an OutputTap is given; longer lines are cut there

OutputTap = Callable[[str, str, str], None]
"""Told ``(host, kind, text)`` while commands run: kind ``command`` as one starts (the command line,
secrets and all: a tap masks what it shows), then ``stdout`` / ``stderr`` line by line as output
arrives (``sysflow run -v``). Called on the event loop: it must not block."""
COMMAND_ID_VAR = "SYSFLOW_CMD_ID"  # the marker every remote command carries in its environment
DEFAULT_SETTLE_TIMEOUT = 600.0  # seconds a resume waits for an interrupted command without a timeout
OP_STARTED_VAR = "SYSFLOW_OP_STARTED"  # a resumed operation's check: when it first started (Unix s)
STAGE_VAR = "SYSFLOW_STAGE"
STAGE_SHA_VAR = "SYSFLOW_STAGE_SHA256"  # ... and the checksum and size it must have (a template's
STAGE_SIZE_VAR = "SYSFLOW_STAGE_SIZE"  # differ per host, so the host pool passes them)  # where a command that needs a local file (``copy``) finds it on the host
UPLOAD_MARK = "::sysflow upload"  # ... printed (exit UPLOAD_NEEDED) when it is not there yet
UPLOAD_NEEDED = 75  # EX_TEMPFAIL: "send the file, then run me again"
FETCH_MARK = "::sysflow fetch"  # a fetch's first line (then its checksum and size) when the controller
FETCH_NEEDED = 77  # should take the staged file, then run the command again (to remove the stage)
HAVE_SHA_VAR = "SYSFLOW_HAVE_SHA256"  # the controller's copy's checksum (empty: none yet)
FETCHED_VAR = "SYSFLOW_FETCHED"  # set on the second run: the controller has the file
REBOOT_MARK = "::sysflow reboot"  # ``reboot``'s first command prints this and the boot id ...
REBOOT_NEEDED = 75  # ... and exits so: "reboot the host now" (see sysflow.actors.reboot)
_COMMAND_ID = re.compile(r"[0-9a-f]{32}")  # fixed length: no marker is a prefix of another


def command_id(run_id: str, op_id: str) -> str:
    """The marker of operation ``op_id`` of run ``run_id``: the same in every controller process, so
    a resume finds the command a crashed controller sent (every attempt of an operation carries it;
    attempts run one after another, so at most one of them can still be running)."""
    return hashlib.sha256(f"{run_id}\0{op_id}".encode()).hexdigest()[:32]


def valid_command_id(marker: str) -> bool:
    """Whether ``marker`` is a command id (32 lowercase hex digits): safe unquoted in a shell line."""
    return _COMMAND_ID.fullmatch(marker) is not None


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


class SettlePolicy(enum.Enum):
    """What a resume does with an interrupted command that is still running on its host."""

    WAIT = "wait"  # let it end (bounded by the task's timeout; stopped when the bound passes)
    STOP = "stop"  # stop it at once


@dataclass(frozen=True, slots=True)
class Settled:
    """What :meth:`Settling.settle` found: was the command running, is it still, was it stopped."""

    host: str
    command_id: str
    found: bool  # some process of the command was running when first looked for
    running: bool  # still running when settle returned (it could be neither awaited nor stopped)
    stopped: bool = False  # settle killed it
    waited: float = 0.0  # seconds spent waiting for it to end

    @property
    def settled(self) -> bool:
        """Nothing of the command runs any more: its effect can be checked."""
        return not self.running

    @classmethod
    def from_fields(cls, host: str, command_id: str, fields: Mapping[str, int], waited: float) -> Settled:
        """What the host's settle script printed (``found=1 running=0 stopped=0``), as a value."""
        found = bool(fields.get("found"))
        return cls(
            host,
            command_id,
            found=found,
            running=bool(fields.get("running")),
            stopped=bool(fields.get("stopped")),
            waited=round(waited, 3) if found else 0.0,
        )


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


@dataclass(frozen=True, slots=True)
class Upload:
    """A local file an operation needs on its host (``copy``). Sent only when its command asks
    (first it compares checksums on the host): to the path in ``STAGE_VAR``, then the command runs
    again and installs it from there."""

    src: str  # absolute path on the controller (``template``: the template's, for messages)
    sha256: str
    size: int
    rate: float | None = None  # bytes per second the transfer may use (its task's bandwidth demand)
    content: bytes | None = None  # what to send instead of ``src``'s bytes (a rendered template)


@dataclass(frozen=True, slots=True)
class Download:
    """Where an operation's file from its host goes on the controller (``fetch``): the command copies
    it to the stage path (readable by the login user) and asks (``FETCH_MARK`` checksum size); the
    host pool gets it over the transport, checks the checksum, renames it into ``dest``, and runs
    the command again to remove the stage."""

    dest: str  # absolute path on the controller


@runtime_checkable
class Fetching(Protocol):
    """A transport that can bring a file from a host (SFTP over the pooled connection, for SSH) into a
    local file ``dest``; the bytes received."""

    async def get(self, host: str, src: str, dest: str, *, timeout: float | None = None) -> int: ...


@runtime_checkable
class Uploading(Protocol):
    """A transport that can send a file to a host (SFTP over the pooled connection, for SSH): to a
    new file ``dest`` (never over an existing one) readable by the login user only; the bytes sent.
    ``rate`` (bytes per second) bounds the transfer's average rate; None: as fast as it goes.
    ``content``: these bytes instead of ``src``'s (``src`` then only names them in messages)."""

    async def put(
        self,
        host: str,
        src: str,
        dest: str,
        *,
        timeout: float | None = None,
        rate: float | None = None,
        content: bytes | None = None,
    ) -> int: ...


@dataclass(frozen=True, slots=True)
class Reboot:
    """How an operation reboots its host (``reboot``) once its command asks (``REBOOT_MARK`` and the
    boot id): issue ``command``, then reconnect and run ``boot_id_command`` with a bounded backoff
    until a boot id other than the recorded one answers, for at most ``timeout`` seconds."""

    boot_id_command: str  # prints the host's boot id (one line)
    command: str  # issues the reboot (it may never answer: the connection dies under it)
    timeout: float  # seconds from the reboot command until the new boot id must have answered
    probe_timeout: float = 10.0  # seconds one reconnect and read (or the reboot command) may take
    interval: float = 1.0  # seconds before the first poll; doubles up to ``max_interval``
    max_interval: float = 10.0


@runtime_checkable
class Reconnecting(Protocol):
    """A transport that keeps connections between commands (SSH) and can drop one host's, so that its
    next command connects anew: after a reboot the pooled connection is dead, or worse, still the old
    boot's. Transports that connect per command need not implement it."""

    async def disconnect(self, host: str) -> None: ...


@runtime_checkable
class Settling(Protocol):
    """A transport that can tell whether a command it (or a crashed controller) sent still runs.

    Commands carry their id in ``COMMAND_ID_VAR`` (give it in ``env`` to choose it, see
    :func:`command_id`). ``settle`` looks for processes of that command on ``host``; with ``wait``
    it waits up to ``timeout`` seconds for them to end and stops them when that passes, else it
    stops them at once. Implemented by the SSH, local and simulated transports.
    """

    async def settle(
        self, host: str, command_id: str, *, wait: bool = True, timeout: float | None = None
    ) -> Settled: ...
