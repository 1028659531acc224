"""Dispatch through HostPool actors: an ``OpRunner`` that sends operations to a ``Backend``.

The run decides *when* an operation may start (windows, admission, waves); :class:`BackendRunner`
decides *where* it runs: it submits an :class:`~sysflow.actors.hostpool.OpRequest` to the HostPool
that owns the host's shard (in this process with ``LocalBackend``, in worker processes, or as Ray
actors with ``RayBackend``), and one pump task pulls :class:`~sysflow.actors.hostpool.OpResult`
values back and resolves the future of each waiting operation. Results become the engine's
:class:`~sysflow.engine.result.OpRecord` with the same error text as ``TransportRunner``
(``"CommandTimeout: ..."``, ``"HostUnreachable: ..."``), so a run's trace does not depend on the path.

Lifecycle: ``async with BackendRunner(...) as runner`` starts the backend's pools and the pump and
stops both on exit; a runner handed to ``Engine(runner=...)`` without ``async with`` starts itself
on its first operation (and must then be stopped with :meth:`BackendRunner.stop`).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sysflow.actors.backends import Backend, LocalBackend, ShardSpec, shards_from_inventory
from sysflow.actors.hostpool import ErrorKind, OpRequest, OpResult, TransportFactory
from sysflow.clock import Clock, RealClock
from sysflow.engine.executor import TransportRunner, command_record, exit_text
from sysflow.engine.result import OpRecord
from sysflow.engine.states import OpState
from sysflow.errors import ExecutionError
from sysflow.model.inventory import Inventory
from sysflow.planner.graph import Operation
from sysflow.transport import Transport

__all__ = ["DEFAULT_PULL_TIMEOUT", "BackendRunner", "RunnerState", "record_of"]

DEFAULT_PULL_TIMEOUT = 0.2  # seconds one pull waits on a remote backend before polling again
PULL_BATCH = 1000  # results taken per pull

# Error text per kind, as TransportRunner writes it from the exception class the transport raised.
_ERROR_PREFIX: Mapping[ErrorKind, str] = {
    ErrorKind.COMMAND_TIMEOUT: "CommandTimeout",
    ErrorKind.CONNECT_TIMEOUT: "ConnectTimeout",
    ErrorKind.HOST_UNREACHABLE: "HostUnreachable",
    ErrorKind.AUTHENTICATION_FAILED: "AuthenticationFailed",
    ErrorKind.HOST_KEY_MISMATCH: "HostKeyMismatch",
    ErrorKind.CONNECTION_FAILED: "ConnectionFailed",
    ErrorKind.TRANSPORT_ERROR: "TransportError",
    ErrorKind.CANCELLED: "Cancelled",
    ErrorKind.INTERNAL: "ExecutionError",
}


class RunnerState(enum.Enum):
    """NEW → RUNNING → STOPPED; a stopped runner refuses new operations."""

    NEW = "new"
    RUNNING = "running"
    STOPPED = "stopped"


def record_of(op: Operation, command: str, result: OpResult) -> OpRecord:
    """The engine's record of an operation from the HostPool's result."""
    if result.ok:
        error = None
    elif result.error_kind is ErrorKind.COMMAND_FAILED:
        error = exit_text(result.exit_status, result.signal)
    else:
        error = f"{_ERROR_PREFIX[result.error_kind]}: {result.error_message}"
    return command_record(
        op, command, result.start, result.end, result.exit_status, error, result.stdout, result.stderr,
        result.attempts,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Waiting:
    """An operation submitted to the backend, and the future its ``run_op`` awaits."""

    request: OpRequest
    future: asyncio.Future[OpResult]


class BackendRunner:
    """An ``OpRunner`` over HostPool actors reached through a :class:`Backend`.

    ``shards`` say which pool owns which host (see :func:`shards_from_inventory` or
    :meth:`for_inventory`). Local tasks (``op.local``) run on ``local`` in this process, as
    ``TransportRunner`` runs them. ``env_of`` adds environment variables to an operation's request.
    """

    def __init__(
        self,
        backend: Backend,
        shards: Sequence[ShardSpec],
        *,
        clock: Clock | None = None,
        local: Transport | None = None,
        pull_timeout: float | None = None,
        env_of: Callable[[Operation], Mapping[str, str] | None] | None = None,
    ) -> None:
        self.backend = backend
        self.shards = tuple(shards)
        self.clock = clock or RealClock()
        self._local = TransportRunner(local, self.clock) if local is not None else None
        self._pull_timeout = pull_timeout if pull_timeout is not None else _pull_timeout_for(backend)
        self._env_of = env_of
        self._waiting: dict[str, _Waiting] = {}
        self._pump: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None
        self._start_lock: asyncio.Lock | None = None
        self._state = RunnerState.NEW

    @classmethod
    def for_inventory(
        cls,
        inventory: Inventory,
        factory: TransportFactory,
        *,
        backend: Backend | None = None,
        clock: Clock | None = None,
        hosts: Iterable[str] | None = None,
        local: Transport | None = None,
        **shard_kw: Any,
    ) -> BackendRunner:
        """One shard per network segment of ``inventory``, each building its transport from ``factory``."""
        clock = clock or RealClock()
        shards = shards_from_inventory(inventory, factory, hosts, **shard_kw)
        return cls(backend or LocalBackend(clock=clock), shards, clock=clock, local=local)

    @property
    def state(self) -> RunnerState:
        return self._state

    @property
    def in_flight(self) -> int:
        """Operations submitted whose result has not come back yet."""
        return len(self._waiting)

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the backend's pools and the result pump (idempotent while running)."""
        if self._state is RunnerState.STOPPED:
            raise ExecutionError("backend runner is stopped")
        if self._state is RunnerState.RUNNING:
            return
        await self.backend.start(self.shards)
        self._pump = asyncio.get_running_loop().create_task(self._pump_results(), name="sysflow-pump")
        self._state = RunnerState.RUNNING

    async def stop(self) -> None:
        """Stop the pump and the backend; operations still waiting fail as values."""
        if self._state is RunnerState.STOPPED:
            return
        was_running = self._state is RunnerState.RUNNING
        self._state = RunnerState.STOPPED
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        if was_running:
            await self.backend.stop()
        self._fail_waiting(ExecutionError("backend runner stopped"))

    async def __aenter__(self) -> BackendRunner:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _ensure_started(self) -> None:
        if self._state is RunnerState.RUNNING:
            return
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            await self.start()

    # -- OpRunner ---------------------------------------------------------------------------------

    async def run_op(self, op: Operation, command: str, on_start: Callable[[int], None]) -> OpRecord:
        """Submit the operation to its host's pool and wait for its record (failures are values)."""
        if op.local and self._local is not None:
            return await self._local.run_op(op, command, on_start)
        try:
            await self._ensure_started()
        except ExecutionError as exc:
            return _failed_record(op, command, self.clock, exc)
        if self._failure is not None:
            return _failed_record(op, command, self.clock, _broken(self._failure))
        request = self._request(op, command)
        if request.op_id in self._waiting:
            return _failed_record(op, command, self.clock, ExecutionError(f"{op.id} is already running"))
        waiting = _Waiting(request, asyncio.get_running_loop().create_future())
        self._waiting[request.op_id] = waiting
        on_start(1)
        try:
            await self.backend.submit([request])
            result = await waiting.future
        except ExecutionError as exc:
            return _failed_record(op, command, self.clock, exc)
        finally:
            self._waiting.pop(request.op_id, None)
        return record_of(op, command, result)

    def _request(self, op: Operation, command: str) -> OpRequest:
        env = self._env_of(op) if self._env_of is not None else None
        return OpRequest(
            op_id=op.id,
            host=op.host,
            task=op.task,
            command=command,
            timeout=op.timeout,
            retries=op.retries,
            env=tuple(sorted((env or {}).items())),
        )

    # -- the pump ---------------------------------------------------------------------------------

    async def _pump_results(self) -> None:
        """Pull results and resolve the futures of their operations until stopped."""
        try:
            while True:
                for result in await self.backend.pull(max_items=PULL_BATCH, timeout=self._pull_timeout):
                    self._resolve(result)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the backend broke: every waiting operation fails as a value
            self._failure = exc
            self._fail_waiting(_broken(exc))

    def _resolve(self, result: OpResult) -> None:
        waiting = self._waiting.get(result.op_id)
        if waiting is not None and not waiting.future.done():
            waiting.future.set_result(result)

    def _fail_waiting(self, exc: ExecutionError) -> None:
        for waiting in self._waiting.values():
            if not waiting.future.done():
                waiting.future.set_exception(exc)


def _pull_timeout_for(backend: Backend) -> float | None:
    """In-process pools can block on their queue; remote ones are polled."""
    if isinstance(backend, LocalBackend) and not backend.processes:
        return None
    return DEFAULT_PULL_TIMEOUT


def _broken(exc: BaseException) -> ExecutionError:
    return ExecutionError(f"backend failed: {type(exc).__name__}: {exc}")


def _failed_record(op: Operation, command: str, clock: Clock, exc: ExecutionError) -> OpRecord:
    now = clock.now()
    return OpRecord(
        op.id,
        op.host,
        op.task,
        op.wave,
        OpState.FAILED,
        command=command,
        start=now,
        end=now,
        error=f"{type(exc).__name__}: {exc}",
        attempts=0,
    )
