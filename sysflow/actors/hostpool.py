"""The HostPool actor: runs the operations of one shard of hosts, one at a time per host.

A shard is a datacenter or a network segment. Its ``HostPool`` owns the transport (and so the SSH
sessions) for the shard's hosts, keeps operations of one host in the order they were submitted and
never lets two of them overlap, caps the operations in flight across the shard, retries a *command*
failure only when the request asks for it, and turns every other failure into an :class:`OpResult`
whose ``error_kind`` says what went wrong: at fleet scale, failures are values.

It is a plain class, so it is tested without Ray; ``backends.LocalBackend`` runs it in-process or in
worker processes and ``ray_backend.RayBackend`` makes it a Ray async actor at one edge. Results come
back three ways, for in-process callers and for remote drivers alike:

* ``await pool.run_op(req)`` / ``await pool.run_batch(reqs)``: the caller waits for its results;
* ``pool.submit(req)`` returns a future; ``await pool.post(reqs)`` queues without waiting;
* with ``stream=True`` every result also lands in an outbox that a driver drains with
  ``await pool.pull()`` (what a Ray driver calls) or ``async for r in pool.results()``.

All times come from the :class:`~sysflow.clock.Clock` seam, so the simulator's virtual clock works.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import socket
import sys
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sysflow.actors.ops import (
    DEFAULT_RESULT_OUTPUT_CAP,
    DEFAULT_RETRY_DELAY,
    ErrorKind,
    OpRequest,
    OpResult,
    PoolLoad,
    Where,
    failure_of,
    result_of,
    retry_delay,
)
from sysflow.actors.requests import run_request
from sysflow.clock import Clock, RealClock
from sysflow.errors import ExecutionError
from sysflow.transport import CommandResult, Transport

__all__ = ["DEFAULT_MAX_IN_FLIGHT", "HostPool", "PoolState", "TransportFactory"]

DEFAULT_MAX_IN_FLIGHT = 256  # operations running at once in one shard
TransportFactory = Callable[[], Transport]
"""Builds the transport inside the actor (a picklable callable when the actor lives elsewhere)."""


class PoolState(enum.Enum):
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


@dataclass(eq=False)
class _Item:
    """A submitted request, its caller's future and, once it runs, the task running it."""

    request: OpRequest
    future: asyncio.Future[OpResult]
    runner: asyncio.Task[OpResult] | None = None
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True
        if self.runner is not None:
            self.runner.cancel()


@dataclass
class _Counters:
    in_flight: int = 0
    completed: int = 0
    lanes: dict[str, asyncio.Task[None]] = field(default_factory=dict)


class HostPool:
    """Runs operations for one shard: per-host order, a shard-wide in-flight cap, failures as values.

    Give it either a ``transport`` (shared, not closed by the pool) or a ``factory`` that builds one
    on first use inside the pool's event loop (owned, closed by :meth:`close`).
    """

    def __init__(
        self,
        shard: str,
        transport: Transport | None = None,
        *,
        factory: TransportFactory | None = None,
        clock: Clock | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        retry_delay: float = DEFAULT_RETRY_DELAY,
        output_cap: int = DEFAULT_RESULT_OUTPUT_CAP,
        stream: bool = False,
        on_result: Callable[[OpResult], None] | None = None,
    ) -> None:
        if (transport is None) == (factory is None):
            raise ValueError("give exactly one of transport= and factory=")
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.shard = shard
        self.executor = f"{shard}@{_node()}"
        self._transport = transport
        self._factory = factory
        self._clock = clock or RealClock()
        self._max_in_flight = max_in_flight
        self._slots: asyncio.Semaphore | None = None
        self._retry_delay = retry_delay
        self._cap = output_cap
        self._on_result = on_result
        self._outbox: asyncio.Queue[OpResult | None] | None = asyncio.Queue() if stream else None
        self._queues: dict[str, deque[_Item]] = {}
        # hosts running an operation in its caller's task -> the future a lane waits on, made on demand
        self._inline: dict[str, asyncio.Future[None] | None] = {}
        self._inline_tasks: set[asyncio.Task[Any]] = set()
        self._items: dict[str, _Item] = {}
        self._counters = _Counters()
        self._state = PoolState.OPEN

    # -- submitting -------------------------------------------------------------------------------

    @property
    def state(self) -> PoolState:
        return self._state

    def submit(self, request: OpRequest) -> asyncio.Future[OpResult]:
        """Queue ``request`` behind its host's earlier operations; the future gets its result.

        Cancelling the future cancels the operation (stopping the command if it runs).
        """
        if self._state is not PoolState.OPEN:
            raise ExecutionError(f"host pool {self.shard!r} is {self._state.value}")
        loop = asyncio.get_running_loop()
        item = _Item(request, loop.create_future())
        item.future.add_done_callback(lambda f: item.cancel() if f.cancelled() else None)
        self._items[request.op_id] = item
        self._queues.setdefault(request.host, deque()).append(item)
        if request.host not in self._counters.lanes:
            self._counters.lanes[request.host] = loop.create_task(self._lane(request.host))
        return item.future

    async def post(self, requests: Sequence[OpRequest]) -> list[str]:
        """Queue ``requests`` without waiting (results go to the outbox); returns their op ids."""
        for request in requests:
            self.submit(request)
        return [r.op_id for r in requests]

    async def run_op(self, request: OpRequest, *, stream: bool = True) -> OpResult:
        """Run one operation (after its host's earlier ones) and return its result.

        When the host has nothing queued the operation runs in the caller's own task (no lane, no
        extra task: the engine's path, one operation per host at a time); cancelling the caller
        stops the command and reports it ``CANCELLED`` to streams and ``on_result``. ``stream=False``
        keeps the result out of the outbox (a remote caller that awaits it needs no second copy).
        """
        host = request.host
        if host in self._counters.lanes or host in self._inline:
            return await self.submit(request)
        if self._state is not PoolState.OPEN:
            raise ExecutionError(f"host pool {self.shard!r} is {self._state.value}")
        self._inline[host] = None
        task = asyncio.current_task()
        if task is not None:
            self._inline_tasks.add(task)
        try:
            result = await self._run_inline(request, stream)
        finally:
            waiter = self._inline.pop(host)
            if task is not None:
                self._inline_tasks.discard(task)
            if waiter is not None:
                waiter.set_result(None)
        self._finish_result(result, stream)
        return result

    async def _run_inline(self, request: OpRequest, stream: bool) -> OpResult:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._max_in_flight)
        async with self._slots:
            self._counters.in_flight += 1
            try:
                return await self._attempts(request)
            except asyncio.CancelledError:
                self._finish_result(self._cancelled(request, self._clock.now(), 0.0, 1), stream)
                raise
            finally:
                self._counters.in_flight -= 1

    async def run_batch(self, requests: Iterable[OpRequest]) -> list[OpResult]:
        """Run operations, each host's in the given order, and return results in the given order."""
        futures = [self.submit(r) for r in requests]
        return list(await asyncio.gather(*futures))

    def cancel(self, op_id: str) -> bool:
        """Cancel a queued or running operation; False if it is unknown or already finished."""
        item = self._items.get(op_id)
        if item is None or item.future.done():
            return False
        item.cancel()
        return True

    # -- results ----------------------------------------------------------------------------------

    async def pull(self, max_items: int = 1000, timeout: float | None = 0.5) -> list[OpResult]:
        """Results finished since the last pull: wait up to ``timeout`` for the first, then drain."""
        outbox = self._require_outbox()
        out: list[OpResult] = []
        if outbox.empty():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    first = await outbox.get()
                    if first is not None:
                        out.append(first)
        while len(out) < max_items and not outbox.empty():
            item = outbox.get_nowait()
            if item is not None:
                out.append(item)
        return out

    async def results(self) -> AsyncIterator[OpResult]:
        """Every result as it finishes, until the pool is closed."""
        outbox = self._require_outbox()
        while True:
            item = await outbox.get()
            if item is None:
                return
            yield item

    def _require_outbox(self) -> asyncio.Queue[OpResult | None]:
        if self._outbox is None:
            raise ExecutionError(f"host pool {self.shard!r} was made without stream=True")
        return self._outbox

    # -- load and lifecycle -----------------------------------------------------------------------

    def load(self) -> PoolLoad:
        in_flight = self._counters.in_flight
        waiting = sum(len(q) for q in self._queues.values()) - in_flight
        return PoolLoad(
            shard=self.shard,
            connections_open=_open_connections(self._transport),
            in_flight=in_flight,
            queued=waiting,
            hosts_active=len(self._counters.lanes),
            completed=self._counters.completed,
        )

    async def close(self, *, drain: bool = False) -> None:
        """Stop: with ``drain`` finish what was submitted, else cancel it; then close the transport."""
        if self._state is PoolState.CLOSED:
            return
        self._state = PoolState.CLOSING
        if not drain:
            for item in list(self._items.values()):
                item.cancel()
            for task in list(self._inline_tasks):
                task.cancel()
        lanes = list(self._counters.lanes.values())
        if lanes:
            await asyncio.gather(*lanes, return_exceptions=True)
        if self._factory is not None and self._transport is not None:
            await self._transport.close()
        self._state = PoolState.CLOSED
        if self._outbox is not None:
            self._outbox.put_nowait(None)

    async def __aenter__(self) -> HostPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- running ----------------------------------------------------------------------------------

    async def _lane(self, host: str) -> None:
        """Run the host's queued operations one after another, then retire."""
        queue = self._queues[host]
        try:
            if host in self._inline:  # an operation runs in its caller's task: queue behind it
                waiter = self._inline[host] = asyncio.get_running_loop().create_future()
                await asyncio.shield(waiter)
            while queue:
                item = queue[0]
                result = await self._run_item(item)
                queue.popleft()
                self._finish(item, result)
        finally:  # cancelled from outside (loop shutdown): nothing queued may be left unanswered
            while queue:
                item = queue.popleft()
                self._finish(item, self._cancelled(item.request, self._clock.now(), 0.0, 0))
            del self._queues[host]
            del self._counters.lanes[host]

    async def _run_item(self, item: _Item) -> OpResult:
        if item.cancelled:
            now = self._clock.now()
            return self._cancelled(item.request, now, 0.0, 0)
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._max_in_flight)
        async with self._slots:
            if item.cancelled:
                now = self._clock.now()
                return self._cancelled(item.request, now, 0.0, 0)
            item.runner = asyncio.get_running_loop().create_task(self._attempts(item.request))
            self._counters.in_flight += 1
            try:
                await asyncio.wait([item.runner])
            except asyncio.CancelledError:
                item.runner.cancel()
                raise
            finally:
                self._counters.in_flight -= 1
            if item.runner.cancelled():
                return self._cancelled(item.request, self._clock.now(), 0.0, 1)
            return item.runner.result()

    def _finish(self, item: _Item, result: OpResult) -> None:
        self._items.pop(item.request.op_id, None)
        if not item.future.done():
            item.future.set_result(result)
        self._finish_result(result)

    def _finish_result(self, result: OpResult, stream: bool = True) -> None:
        self._counters.completed += 1
        if self._outbox is not None and stream:
            self._outbox.put_nowait(result)
        if self._on_result is not None:
            self._on_result(result)

    async def _attempts(self, req: OpRequest) -> OpResult:
        """Run the command, retrying command failures up to ``req.retries`` times."""
        start, t0 = self._clock.now(), self._clock.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                outcome: CommandResult | BaseException = await run_request(
                    self._transport_of(), req, self._clock
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                outcome = exc
            result = self._result(req, outcome, start, self._clock.monotonic() - t0, attempt)
            if not result.error_kind.retryable or attempt > req.retries:
                return result
            base = req.retry_delay if req.retry_delay is not None else self._retry_delay
            await self._clock.sleep(retry_delay(base, attempt, req.op_id))

    def _transport_of(self) -> Transport:
        """The pool's transport, built by its factory on first use."""
        if self._transport is None:
            assert self._factory is not None
            self._transport = self._factory()
        return self._transport

    def _result(
        self,
        req: OpRequest,
        outcome: CommandResult | BaseException,
        start: datetime,
        duration: float,
        attempts: int,
    ) -> OpResult:
        where = Where(self.shard, self.executor, self._clock.now())
        return result_of(req, outcome, where, start, duration, attempts, self._cap)

    def _cancelled(self, req: OpRequest, now: datetime, duration: float, attempts: int) -> OpResult:
        where = Where(self.shard, self.executor, now)
        return failure_of(req, where, now, duration, attempts, ErrorKind.CANCELLED, "operation cancelled")


def _node() -> str:
    """Where this pool runs: the Ray node id inside a Ray worker, else ``hostname:pid``."""
    ray: Any = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        with contextlib.suppress(Exception):
            return str(ray.get_runtime_context().get_node_id())
    return f"{socket.gethostname()}:{os.getpid()}"


def _open_connections(transport: Transport | None) -> int:
    """Connections the transport holds open, if it says: ``stats().connections_open`` (SSHTransport)
    or an ``open_connections`` attribute or method; 0 otherwise."""
    stats: Any = getattr(transport, "stats", None)
    value: Any = getattr(stats(), "connections_open", None) if callable(stats) else None
    if value is None:
        value = getattr(transport, "open_connections", 0)
        value = value() if callable(value) else value
    return int(value) if isinstance(value, int) else 0
