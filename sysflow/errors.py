"""The one exception tree of sysflow.

Every error a user can catch derives from :class:`SysflowError`; where a builtin category fits, the
class mixes it in (``WorkflowError`` is also a ``ValueError``, ``ConnectTimeout`` a ``TimeoutError``)::

    SysflowError
    ├── WorkflowError (ValueError)          workflow files and API input; carries all Problems
    ├── InventoryError (ValueError)         inventory files, host patterns, ssh_config
    ├── ConstraintError (ValueError)        window specs, calendars, pools, limits, budgets
    ├── PlanningError                       the planner could not produce a plan
    │   └── InfeasiblePlan                  nothing fits: the reasons name hosts and constraints
    ├── TransportError                      running a command on a host
    │   ├── ConnectionFailed (ConnectionError)
    │   │   ├── ConnectTimeout (TimeoutError)
    │   │   ├── HostUnreachable
    │   │   ├── AuthenticationFailed
    │   │   ├── HostKeyMismatch             the key changed: possible interception
    │   │   └── HostKeyUnknown              no key for the host in known_hosts yet
    │   └── CommandTimeout (TimeoutError)
    ├── VerificationError                   a probe could not be run or parsed
    ├── ExecutionError                      the engine refused or stopped a run
    │   ├── WindowClosed
    │   ├── RunFailed                       raised by RunResult.raise_on_error()
    │   └── LeaseConflict                   a host is held by another run
    ├── StoreError                          the run store (missing run, schema)
    └── AuditTampered                       the audit log's hash chain is broken

Errors carry their context (``host``, ``task``, ``location``) as attributes, so a CLI can print one
clear line and a program can react without parsing messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "AuditTampered",
    "AuthenticationFailed",
    "CommandTimeout",
    "ConnectTimeout",
    "ConnectionFailed",
    "ConstraintError",
    "ExecutionError",
    "HostKeyMismatch",
    "HostKeyUnknown",
    "HostUnreachable",
    "InfeasiblePlan",
    "InventoryError",
    "LeaseConflict",
    "PlanningError",
    "Problem",
    "RunFailed",
    "RunOwned",
    "StoreError",
    "SysflowError",
    "TransportError",
    "VerificationError",
    "WindowClosed",
    "WorkflowError",
]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with user input, and where: ``file:line:col`` or a field path."""

    message: str
    location: str = ""

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


class SysflowError(Exception):
    """Root of every error sysflow raises on purpose."""


class _ProblemsError(SysflowError, ValueError):
    """An input error that carries every problem found, not just the first."""

    def __init__(self, problems: Iterable[Problem | str] | str, *, source: str | None = None) -> None:
        items: list[Problem] = []
        for p in [problems] if isinstance(problems, str) else problems:
            items.append(p if isinstance(p, Problem) else Problem(str(p)))
        self.problems: Sequence[Problem] = tuple(items)
        self.source = source
        head = f"{source}: " if source else ""
        if len(items) == 1:
            msg = f"{head}{items[0]}"
        else:
            msg = f"{head}{len(items)} problems:\n" + "\n".join(f"  {p}" for p in items)
        super().__init__(msg)


class WorkflowError(_ProblemsError):
    """A workflow is malformed or inconsistent; ``.problems`` lists them all."""


class InventoryError(_ProblemsError):
    """An inventory, host pattern or ssh_config could not be used; ``.problems`` lists why."""


class ConstraintError(_ProblemsError):
    """A window spec, calendar, pool, rate limit or budget is malformed; names the spec and source."""


class PlanningError(SysflowError):
    """The planner could not produce a plan."""


class InfeasiblePlan(PlanningError):
    """No operation of some hosts can be placed; ``reasons`` maps host to why."""

    def __init__(self, message: str, reasons: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.reasons = dict(reasons or {})


class TransportError(SysflowError):
    """Running a command on ``host`` went wrong below the command itself."""

    def __init__(self, message: str, *, host: str | None = None) -> None:
        super().__init__(f"{host}: {message}" if host else message)
        self.host = host


class ConnectionFailed(TransportError, ConnectionError):
    """Could not open (or lost) the connection to a host."""


class ConnectTimeout(ConnectionFailed, TimeoutError):
    """The TCP connect or the SSH handshake/login did not finish in time."""


class HostUnreachable(ConnectionFailed):
    """The host refused the connection, has no route, or its name does not resolve."""


class AuthenticationFailed(ConnectionFailed):
    """Every credential the provider offered was rejected (after one fresh ask)."""


class HostKeyMismatch(ConnectionFailed):
    """The host's key differs from the one in known_hosts: possible interception."""


class HostKeyUnknown(ConnectionFailed):
    """known_hosts has no key for the host yet: trust it first (``--host-keys accept-new``)."""


class CommandTimeout(TransportError, TimeoutError):
    """A command ran longer than its timeout and was stopped on the remote side.

    ``stdout`` and ``stderr`` hold what it printed before it was stopped, capped by the transport
    (head and tail, as ``sysflow.transport.cap_output`` keeps them); empty when nothing is known.
    """

    def __init__(
        self,
        message: str,
        *,
        host: str | None = None,
        timeout: float | None = None,
        stdout: str = "",
        stderr: str = "",
    ) -> None:
        super().__init__(message, host=host)
        self.timeout = timeout
        self.stdout = stdout
        self.stderr = stderr


class VerificationError(SysflowError):
    """A probe could not be run or its output could not be parsed."""


class ExecutionError(SysflowError):
    """The engine refused or stopped a run."""


class WindowClosed(ExecutionError):
    """An operation would start outside its host's maintenance window (or after the cutoff)."""


class RunFailed(ExecutionError):
    """Raised by ``RunResult.raise_on_error()`` when some hosts failed."""

    def __init__(self, message: str, failed_hosts: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.failed_hosts = tuple(failed_hosts)


class LeaseConflict(ExecutionError):
    """A host is leased by another live run; names the holder."""

    def __init__(self, message: str, *, hosts: Sequence[str] = (), holder: str | None = None) -> None:
        super().__init__(message)
        self.hosts = tuple(hosts)
        self.holder = holder


class RunOwned(ExecutionError):
    """A run is owned by a live controller (another process, maybe on another machine): it cannot
    be resumed or started here; or, raised inside a run, this controller lost it to a takeover."""

    def __init__(
        self,
        message: str,
        *,
        run_id: str,
        host: str,
        pid: int,
        since: str,
        heartbeat_age: float | None = None,
    ) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.host = host
        self.pid = pid
        self.since = since
        self.heartbeat_age = heartbeat_age


class StoreError(SysflowError):
    """The run store is missing a run, or its schema cannot be used."""


class AuditTampered(SysflowError):
    """The audit log's hash chain is broken; ``record_id`` is the first bad record."""

    def __init__(self, message: str, record_id: int | None = None) -> None:
        super().__init__(message)
        self.record_id = record_id
