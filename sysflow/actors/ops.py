"""The values that cross the HostPool edge, and the one way to build a result.

:class:`OpRequest` (one command for one host) goes in; :class:`OpResult` comes back, whose
:class:`ErrorKind` says what went wrong (failures are values, and the kind, not a reparsed string,
is the error vocabulary). :func:`result_of` and :func:`failure_of` are the only builders of results;
:func:`retry_delay` is the one retry policy. Everything here pickles, so it travels to worker
processes and Ray actors unchanged.
"""

from __future__ import annotations

import enum
import zlib
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, NamedTuple

from sysflow.errors import (
    AuthenticationFailed,
    CommandTimeout,
    ConnectionFailed,
    ConnectTimeout,
    HostKeyMismatch,
    HostKeyUnknown,
    HostUnreachable,
    TransportError,
)
from sysflow.transport import CapturedOutput, CommandResult, Download, Reboot, Upload, cap_output

__all__ = [
    "DEFAULT_RESULT_OUTPUT_CAP",
    "DEFAULT_RETRY_DELAY",
    "MAX_RETRY_DELAY",
    "ErrorKind",
    "OpRequest",
    "OpResult",
    "PoolLoad",
    "Where",
    "classify",
    "failure_of",
    "result_of",
    "retry_delay",
]

DEFAULT_RESULT_OUTPUT_CAP = 16 * 1024  # bytes of stdout/stderr kept in each OpResult (head and tail)
DEFAULT_RETRY_DELAY = 1.0  # seconds before the first command retry; doubles each retry
_NO_OUTPUT = cap_output("")  # what an empty stream keeps, digest included (most commands print nothing)
MAX_RETRY_DELAY = 60.0  # seconds, the longest wait between two command attempts


class ErrorKind(enum.Enum):
    """Why an operation did not succeed; ``NONE`` when it did."""

    NONE = "none"
    COMMAND_FAILED = "command_failed"  # the command ran and exited non-zero or was signalled
    COMMAND_TIMEOUT = "command_timeout"
    CONNECT_TIMEOUT = "connect_timeout"
    HOST_UNREACHABLE = "host_unreachable"
    AUTHENTICATION_FAILED = "authentication_failed"
    HOST_KEY_MISMATCH = "host_key_mismatch"  # the key changed: possible interception
    HOST_KEY_UNKNOWN = "host_key_unknown"  # no key in known_hosts yet: trust it first
    CONNECTION_FAILED = "connection_failed"
    TRANSPORT_ERROR = "transport_error"
    CANCELLED = "cancelled"
    INTERNAL = "internal"  # an unexpected exception in the transport: a bug, reported as a value

    @property
    def is_connection(self) -> bool:
        """True for failures to reach or log in to the host (the command never ran)."""
        return self in _CONNECTION_KINDS

    @property
    def retryable(self) -> bool:
        """Command failures and timeouts: what a task's ``retries`` repeat (never connection failures)."""
        return self in _RETRYABLE

    @property
    def label(self) -> str:
        """How records name the failure: the sysflow exception it stands for (``CommandTimeout``)."""
        return _LABELS[self]


_CONNECTION_KINDS = frozenset(
    {
        ErrorKind.CONNECT_TIMEOUT,
        ErrorKind.HOST_UNREACHABLE,
        ErrorKind.AUTHENTICATION_FAILED,
        ErrorKind.HOST_KEY_MISMATCH,
        ErrorKind.HOST_KEY_UNKNOWN,
        ErrorKind.CONNECTION_FAILED,
    }
)

# Most specific first: the first matching class names the kind.
_KIND_OF_ERROR: tuple[tuple[type[BaseException], ErrorKind], ...] = (
    (HostKeyMismatch, ErrorKind.HOST_KEY_MISMATCH),
    (HostKeyUnknown, ErrorKind.HOST_KEY_UNKNOWN),
    (AuthenticationFailed, ErrorKind.AUTHENTICATION_FAILED),
    (ConnectTimeout, ErrorKind.CONNECT_TIMEOUT),
    (HostUnreachable, ErrorKind.HOST_UNREACHABLE),
    (ConnectionFailed, ErrorKind.CONNECTION_FAILED),
    (CommandTimeout, ErrorKind.COMMAND_TIMEOUT),
    (TransportError, ErrorKind.TRANSPORT_ERROR),
)

_LABELS: dict[ErrorKind, str] = {
    ErrorKind.NONE: "",
    ErrorKind.COMMAND_FAILED: "CommandFailed",
    ErrorKind.COMMAND_TIMEOUT: "CommandTimeout",
    ErrorKind.CONNECT_TIMEOUT: "ConnectTimeout",
    ErrorKind.HOST_UNREACHABLE: "HostUnreachable",
    ErrorKind.AUTHENTICATION_FAILED: "AuthenticationFailed",
    ErrorKind.HOST_KEY_MISMATCH: "HostKeyMismatch",
    ErrorKind.HOST_KEY_UNKNOWN: "HostKeyUnknown",
    ErrorKind.CONNECTION_FAILED: "ConnectionFailed",
    ErrorKind.TRANSPORT_ERROR: "TransportError",
    ErrorKind.CANCELLED: "Cancelled",
    ErrorKind.INTERNAL: "ExecutionError",
}

_RETRYABLE = frozenset({ErrorKind.COMMAND_FAILED, ErrorKind.COMMAND_TIMEOUT})


def retry_delay(base: float, attempt: int, key: str) -> float:
    """The one retry policy: ``base`` doubling per attempt up to :data:`MAX_RETRY_DELAY`, jittered.

    The jitter (x0.5 to x1.5) comes from a hash of the operation and attempt, not a random source,
    so that retries of many hosts spread out yet a seeded simulation stays reproducible.
    """
    exact = min(MAX_RETRY_DELAY, base * 2.0 ** (attempt - 1))
    spread = zlib.crc32(f"{key}#{attempt}".encode()) / 0xFFFFFFFF
    return exact * (0.5 + spread)


def classify(exc: BaseException) -> ErrorKind:
    """The :class:`ErrorKind` of an exception raised by a transport."""
    for cls, kind in _KIND_OF_ERROR:
        if isinstance(exc, cls):
            return kind
    return ErrorKind.INTERNAL


@dataclass(frozen=True, slots=True)
class OpRequest:
    """One command to run on one host, as the engine dispatches it."""

    op_id: str
    host: str
    task: str
    command: str
    timeout: float | None = None
    retries: int = 0  # extra attempts after a command failure (never after a connection failure)
    env: tuple[tuple[str, str], ...] = ()
    cwd: str | None = None
    retry_delay: float | None = None  # seconds before the first retry (None: the pool's default)
    become: str | None = None  # run through sudo as this user (None: as the login user)
    upload: Upload | None = None  # a local file the command may ask for (``copy``)
    reboot: Reboot | None = None  # how to reboot the host when the command asks (``reboot``)
    download: Download | None = None  # where a file the command stages goes (``fetch``)

    @property
    def env_map(self) -> dict[str, str] | None:
        return dict(self.env) if self.env else None


@dataclass(frozen=True, slots=True)
class OpResult:
    """What one operation did: times, exit status or error kind, capped output and its digest."""

    op_id: str
    host: str
    task: str
    shard: str
    start: datetime
    end: datetime
    duration: float  # seconds on the clock's monotonic time base, all attempts included
    exit_status: int | None
    error_kind: ErrorKind
    error_message: str = ""
    signal: str | None = None
    stdout: str = ""
    stderr: str = ""
    stdout_bytes: int = 0
    stderr_bytes: int = 0
    truncated: bool = False
    output_sha256: str = ""
    attempts: int = 1
    executor: str = ""  # which HostPool ran it: "<shard>@<node>" (a Ray node id, or host:pid)

    @property
    def ok(self) -> bool:
        return self.error_kind is ErrorKind.NONE

    @property
    def failed(self) -> bool:
        return not self.ok


@dataclass(frozen=True, slots=True)
class PoolLoad:
    """A snapshot of how busy a shard is."""

    shard: str
    connections_open: int
    in_flight: int  # operations running now
    queued: int  # operations waiting behind another operation of their host or the in-flight cap
    hosts_active: int  # hosts with an operation running or queued
    completed: int


class Where(NamedTuple):
    """Which pool made a result, and when it ended."""

    shard: str
    executor: str
    end: datetime


def result_of(
    req: OpRequest,
    outcome: CommandResult | BaseException,
    where: Where,
    start: datetime,
    duration: float,
    attempts: int,
    cap: int = DEFAULT_RESULT_OUTPUT_CAP,
) -> OpResult:
    """The result of a command that ran (``CommandResult``) or raised (a transport exception)."""
    if isinstance(outcome, BaseException):
        message = str(outcome) or type(outcome).__name__
        failed = failure_of(req, where, start, duration, attempts, classify(outcome), message)
        return _with_partial_output(failed, outcome, cap)
    so = _kept(outcome.stdout, cap, outcome.stdout_bytes, outcome.stdout_sha256)
    se = _kept(outcome.stderr, cap, outcome.stderr_bytes, "")
    kind = ErrorKind.NONE if outcome.ok else ErrorKind.COMMAND_FAILED
    message = "" if outcome.ok else _exit_message(outcome)
    return failure_of(
        req, where, start, duration, attempts, kind, message,
        exit_status=outcome.exit_status,
        signal=outcome.signal,
        stdout=so.text,
        stderr=se.text,
        stdout_bytes=outcome.stdout_bytes or so.total_bytes,
        stderr_bytes=outcome.stderr_bytes or se.total_bytes,
        truncated=outcome.truncated or so.truncated or se.truncated,
        output_sha256=outcome.stdout_sha256 or so.sha256,
    )  # fmt: skip


def _kept(text: str, cap: int, total: int, digest: str) -> CapturedOutput:
    """``text`` within ``cap``. Nothing to do for an empty stream, nor for a short one the transport
    already counted and digested (no cap can cut it: a character is at most 4 bytes)."""
    if not text:
        return _NO_OUTPUT
    if digest and total and 4 * len(text) <= cap:
        return CapturedOutput(text, total, False, digest)
    return cap_output(text, cap)


def failure_of(
    req: OpRequest,
    where: Where,
    start: datetime,
    duration: float,
    attempts: int,
    kind: ErrorKind,
    message: str,
    **output: Any,
) -> OpResult:
    """The one constructor of results: identity, times and error kind; ``output`` for a command that
    ran (exit status, signal, capped output and its digest). Alone, an operation that produced no
    command result (cancelled, lost, unreachable)."""
    return OpResult(
        op_id=req.op_id,
        host=req.host,
        task=req.task,
        shard=where.shard,
        start=start,
        end=where.end,
        duration=duration,
        error_kind=kind,
        error_message=message,
        attempts=attempts,
        executor=where.executor,
        **{"exit_status": None, **output},
    )


def _with_partial_output(result: OpResult, exc: BaseException, cap: int) -> OpResult:
    """A timed-out command's result keeps what it printed before it was stopped (capped)."""
    if not isinstance(exc, CommandTimeout) or not (exc.stdout or exc.stderr):
        return result
    so, se = cap_output(exc.stdout, cap), cap_output(exc.stderr, cap)
    return replace(
        result,
        stdout=so.text,
        stderr=se.text,
        stdout_bytes=so.total_bytes,
        stderr_bytes=se.total_bytes,
        truncated=so.truncated or se.truncated,
        output_sha256=so.sha256,
    )


def _exit_message(result: CommandResult) -> str:
    if result.exit_status is None:
        return f"command ended by signal {result.signal or 'unknown'}"
    return f"command exited with status {result.exit_status}"
