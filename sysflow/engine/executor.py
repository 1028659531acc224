"""The edge between a run and its HostPools: the ``OpRunner`` seam and the one record builder.

Every operation, in every mode, is run by :class:`sysflow.engine.dispatch.BackendRunner`, which
hands it to the HostPool that owns its host and turns the pool's
:class:`~sysflow.actors.hostpool.OpResult` into the engine's :class:`OpRecord` here, and only here.
Failures are values: the record's ``error`` is worded from the result's
:class:`~sysflow.actors.hostpool.ErrorKind` (``"CommandTimeout: ..."``, ``"exit status 3"``), never
reparsed from text.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from sysflow.actors.ops import ErrorKind, OpResult
from sysflow.engine.result import OpRecord
from sysflow.engine.states import OpState
from sysflow.planner.graph import Operation

__all__ = ["OpRunner", "error_text", "failed_record", "record_of"]


class OpRunner(Protocol):
    """Runs an operation's command on its host and returns the final record."""

    async def run_op(self, op: Operation, command: str, on_start: Callable[[int], None]) -> OpRecord: ...


def error_text(result: OpResult) -> str | None:
    """How a record words a result's failure: ``exit status N``, ``signal X`` or ``Kind: message``."""
    kind = result.error_kind
    if kind is ErrorKind.NONE:
        return None
    if kind is ErrorKind.COMMAND_FAILED:
        return f"signal {result.signal}" if result.signal else f"exit status {result.exit_status}"
    return f"{kind.label}: {result.error_message}"


def record_of(op: Operation, command: str, result: OpResult) -> OpRecord:
    """The engine's record of an operation from its HostPool result: succeeded exactly when ok."""
    return OpRecord(
        op.id,
        op.host,
        op.task,
        op.wave,
        OpState.SUCCEEDED if result.ok else OpState.FAILED,
        command=command,
        start=result.start,
        end=result.end,
        exit_status=result.exit_status,
        error=error_text(result),
        stdout=result.stdout,
        stderr=result.stderr,
        attempts=result.attempts,
        executor=result.executor,
    )


def failed_record(op: Operation, command: str, at: datetime, kind: ErrorKind, message: str) -> OpRecord:
    """The record of an operation that never reached a HostPool (the backend could not take it)."""
    return OpRecord(
        op.id,
        op.host,
        op.task,
        op.wave,
        OpState.FAILED,
        command=command,
        start=at,
        end=at,
        error=f"{kind.label}: {message}",
        attempts=0,
    )
