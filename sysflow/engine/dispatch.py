"""The one execution path: ``Run → BackendRunner → HostPool → Transport``.

The run decides *when* an operation may start (windows, admission, waves); :class:`BackendRunner`
decides *where* it runs: it sends an :class:`~sysflow.actors.hostpool.OpRequest` to the HostPool
that owns the host's shard and awaits the result over the backend's own channel: a direct call in
this process (``LocalBackend()``, the default), the worker's pipe (``LocalBackend(processes=N)``) or
a Ray object reference (``RayBackend``). Nothing polls. Tasks that run on the controller
(``local: true``, run-once hooks) go through a HostPool of their own over a ``LocalTransport``.

Lifecycle: ``async with BackendRunner(...) as runner`` starts the backend's pools and stops them on
exit; a runner handed to ``Engine(runner=...)`` without ``async with`` starts itself on its first
operation (and must then be stopped with :meth:`BackendRunner.stop`; the engine stops the runners it
builds itself).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sysflow.actors.backends import Backend, LocalBackend, ShardSpec, shards_from_inventory
from sysflow.actors.hostpool import HostPool, TransportFactory
from sysflow.actors.ops import ErrorKind, OpRequest
from sysflow.clock import Clock, RealClock
from sysflow.engine.executor import failed_record, record_of
from sysflow.engine.result import OpRecord
from sysflow.errors import ExecutionError
from sysflow.model.inventory import Inventory
from sysflow.planner.graph import Operation
from sysflow.transport import Transport

__all__ = ["BackendRunner", "RunnerState", "request_of"]

LOCAL_SHARD = "controller"  # the HostPool of tasks that run on the controller itself


class RunnerState(enum.Enum):
    """NEW → RUNNING → STOPPED; a stopped runner refuses new operations."""

    NEW = "new"
    RUNNING = "running"
    STOPPED = "stopped"


def request_of(op: Operation, command: str, env: Mapping[str, str] | None = None) -> OpRequest:
    """The request that runs ``op`` with its rendered ``command``."""
    return OpRequest(
        op_id=op.id,
        host=op.where,
        task=op.task,
        command=command,
        timeout=op.timeout,
        retries=op.retries,
        env=tuple(sorted(env.items())) if env else (),
        retry_delay=op.retry_delay,
        become=op.become,
        upload=op.upload,
        reboot=op.reboot,
        download=op.download,
    )


class BackendRunner:
    """An ``OpRunner`` over HostPool actors reached through a :class:`Backend`.

    ``shards`` say which pool owns which host (see :func:`shards_from_inventory`,
    :meth:`for_inventory` and :meth:`for_transport`). Local tasks (``op.local``) run on ``local``
    through a HostPool in this process. ``env_of`` adds environment variables to a request.
    """

    def __init__(
        self,
        backend: Backend,
        shards: Sequence[ShardSpec],
        *,
        clock: Clock | None = None,
        local: Transport | None = None,
        env_of: Callable[[Operation], Mapping[str, str] | None] | None = None,
    ) -> None:
        self.backend = backend
        self.shards = tuple(shards)
        self.clock = clock or RealClock()
        self._local = HostPool(LOCAL_SHARD, local, clock=self.clock) if local is not None else None
        self._env_of = env_of
        self._start_lock: asyncio.Lock | None = None
        self._state = RunnerState.NEW
        self._running: set[str] = set()

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
        """Operations sent whose result has not come back yet."""
        return len(self._running)

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the backend's pools (idempotent while running)."""
        if self._state is RunnerState.STOPPED:
            raise ExecutionError("backend runner is stopped")
        if self._state is RunnerState.RUNNING:
            return
        await self.backend.start(self.shards)
        self._state = RunnerState.RUNNING

    async def stop(self) -> None:
        """Stop the backend and the local pool; a stopped runner refuses new operations."""
        if self._state is RunnerState.STOPPED:
            return
        was_running = self._state is RunnerState.RUNNING
        self._state = RunnerState.STOPPED
        if was_running:
            await self.backend.stop()
        if self._local is not None:
            await self._local.close()

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
        """Send the operation to its host's pool and wait for its record (failures are values)."""
        if op.id in self._running:
            return self._refused(op, command, ExecutionError(f"{op.id} is already running"))
        local = op.local and self._local is not None
        try:
            if not local and self._state is not RunnerState.RUNNING:
                await self._ensure_started()
        except ExecutionError as exc:
            return self._refused(op, command, exc)
        env = self._env_of(op) if self._env_of is not None else None
        request = request_of(op, command, env)
        self._running.add(op.id)
        on_start(1)
        try:
            if local:
                assert self._local is not None
                result = await self._local.run_op(request)
            else:
                result = await self.backend.run(request)
        except ExecutionError as exc:
            return self._refused(op, command, exc)
        finally:
            self._running.discard(op.id)
        return record_of(op, command, result)

    def _refused(self, op: Operation, command: str, exc: ExecutionError) -> OpRecord:
        return failed_record(op, command, self.clock.now(), ErrorKind.INTERNAL, str(exc))
