"""Run one operation to a final record: the command, its timeout, and the retries the task asks for.

Connection failures and timeouts become failed records (failures are values); command failures are
retried only when the task has ``retries``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sysflow.clock import Clock
from sysflow.engine.result import OpRecord
from sysflow.engine.states import OpState
from sysflow.errors import CommandTimeout, TransportError
from sysflow.planner.graph import Operation
from sysflow.transport import CommandResult, Transport

__all__ = ["OpRunner", "TransportRunner", "command_record", "exit_text"]

DEFAULT_RETRY_DELAY = 5.0  # seconds between command retries when a task asks for them


class OpRunner(Protocol):
    """Runs an operation's command on its host and returns the final record."""

    async def run_op(self, op: Operation, command: str, on_start: Callable[[int], None]) -> OpRecord: ...


@dataclass
class TransportRunner:
    """An ``OpRunner`` over a ``Transport`` (SSH, local, simulated), in this process."""

    transport: Transport
    clock: Clock
    retry_delay: float = DEFAULT_RETRY_DELAY
    local: Transport | None = None  # for local tasks (run on the controller)

    async def run_op(self, op: Operation, command: str, on_start: Callable[[int], None]) -> OpRecord:
        transport = self.local if op.local and self.local is not None else self.transport
        attempt = 0
        while True:
            attempt += 1
            on_start(attempt)
            record = await _attempt(transport.run, op, command, self.clock, attempt)
            if record.state is OpState.SUCCEEDED or attempt > op.retries or record.error_kind_is_connection:
                return record.record
            await self.clock.sleep(self.retry_delay)


@dataclass(frozen=True, slots=True)
class _Attempt:
    record: OpRecord
    error_kind_is_connection: bool = False

    @property
    def state(self) -> OpState:
        return self.record.state


async def _attempt(
    run: Callable[..., Awaitable[CommandResult]], op: Operation, command: str, clock: Clock, attempt: int
) -> _Attempt:
    start = clock.now()
    try:
        res = await run(op.host, command, timeout=op.timeout)
    except CommandTimeout as exc:
        return _Attempt(_failed(op, command, start, clock, attempt, f"CommandTimeout: {exc}"))
    except TransportError as exc:
        return _Attempt(_failed(op, command, start, clock, attempt, f"{type(exc).__name__}: {exc}"), True)
    error = None if res.ok else exit_text(res.exit_status, res.signal)
    return _Attempt(
        command_record(
            op, command, res.start, res.end, res.exit_status, error, res.stdout, res.stderr, attempt
        )
    )


def exit_text(exit_status: int | None, signal: str | None) -> str:
    """How a command that ran but failed is described in records: ``exit status N`` or ``signal X``."""
    return f"signal {signal}" if signal else f"exit status {exit_status}"


def command_record(
    op: Operation,
    command: str,
    start: datetime,
    end: datetime,
    exit_status: int | None,
    error: str | None,
    stdout: str,
    stderr: str,
    attempts: int,
) -> OpRecord:
    """The record of an operation whose command ran (or failed to): succeeded exactly when no error."""
    return OpRecord(
        op.id,
        op.host,
        op.task,
        op.wave,
        OpState.SUCCEEDED if error is None else OpState.FAILED,
        command=command,
        start=start,
        end=end,
        exit_status=exit_status,
        error=error,
        stdout=stdout,
        stderr=stderr,
        attempts=attempts,
    )


def _failed(op: Operation, command: str, start: datetime, clock: Clock, attempt: int, error: str) -> OpRecord:
    return OpRecord(
        op.id,
        op.host,
        op.task,
        op.wave,
        OpState.FAILED,
        command=command,
        start=start,
        end=clock.now(),
        error=error,
        attempts=attempt,
    )
