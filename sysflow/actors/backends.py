"""Execution backends: where the HostPools of a run live, and how operations reach them.

A :class:`Backend` starts one HostPool per shard (a datacenter or network segment), routes each
:class:`~sysflow.actors.hostpool.OpRequest` to the shard that owns its host, hands back
:class:`~sysflow.actors.hostpool.OpResult` values as they finish (the driver *pulls*, which is what a
remote actor allows), reports each shard's load and stops.

:class:`LocalBackend` is the default: every pool in this process's event loop. One event loop uses
one core and SSH handshakes are CPU-bound, so ``LocalBackend(processes=N)`` spreads the shards over
``N`` worker processes (each with its own loop), splitting a shard's hosts when there are fewer
shards than workers. The transport is built *inside* the worker from the shard's
``factory``, which is therefore a picklable callable (a class, a ``functools.partial`` of one, a
module-level function): connections and credentials are never pickled. ``ray_backend.RayBackend``
is the same contract on a Ray cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing
import multiprocessing.connection
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

from sysflow.actors.hostpool import DEFAULT_MAX_IN_FLIGHT, HostPool, TransportFactory
from sysflow.actors.ops import (
    DEFAULT_RESULT_OUTPUT_CAP,
    DEFAULT_RETRY_DELAY,
    ErrorKind,
    OpRequest,
    OpResult,
    PoolLoad,
    Where,
    failure_of,
)
from sysflow.clock import Clock, RealClock
from sysflow.errors import ExecutionError
from sysflow.model.inventory import Inventory
from sysflow.transport import Transport

__all__ = [
    "DEFAULT_SHARD",
    "WORKER_START_TIMEOUT",
    "Backend",
    "BackendBase",
    "LocalBackend",
    "ShardSpec",
    "merge_loads",
    "shards_from_inventory",
]

DEFAULT_SHARD = "default"  # shard of hosts that name no segment or datacenter
WORKER_START_TIMEOUT = 60.0  # seconds for a worker process to import sysflow and build its pools
WORKER_STOP_TIMEOUT = 30.0  # seconds for a worker process to exit after it was told to stop


@dataclass(frozen=True, slots=True)
class ShardSpec:
    """One shard: its hosts, the segment it must run in, and how to build its transport there."""

    name: str
    hosts: tuple[str, ...]
    factory: TransportFactory
    segment: str | None = None
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    retry_delay: float = DEFAULT_RETRY_DELAY
    output_cap: int = DEFAULT_RESULT_OUTPUT_CAP
    shared: Transport | None = None  # in-process only: a transport the pool uses but does not close

    def make_pool(self, *, clock: Clock | None = None, stream: bool = False, **kw: Any) -> HostPool:
        """The HostPool of this shard (its transport built on first use, where the pool runs)."""
        return HostPool(
            self.name,
            self.shared,
            factory=None if self.shared is not None else self.factory,
            clock=clock,
            max_in_flight=self.max_in_flight,
            retry_delay=self.retry_delay,
            output_cap=self.output_cap,
            stream=stream,
            **kw,
        )

    def split(self, parts: int) -> list[ShardSpec]:
        """``parts`` shards of the same name over disjoint hosts, sharing the in-flight cap."""
        parts = max(1, min(parts, len(self.hosts)))
        cap = max(1, self.max_in_flight // parts)
        return [replace(self, hosts=self.hosts[i::parts], max_in_flight=cap) for i in range(parts)]


def shards_from_inventory(
    inventory: Inventory, factory: TransportFactory, hosts: Iterable[str] | None = None, **kw: Any
) -> list[ShardSpec]:
    """One shard per network segment (falling back to the datacenter, then ``default``)."""
    members: dict[str, list[str]] = defaultdict(list)
    for name in inventory.hosts if hosts is None else hosts:
        members[inventory.host(name).segment or DEFAULT_SHARD].append(name)
    return [
        ShardSpec(name, tuple(names), factory, segment=None if name == DEFAULT_SHARD else name, **kw)
        for name, names in members.items()
    ]


def merge_loads(loads: Iterable[PoolLoad]) -> dict[str, PoolLoad]:
    """Sum the loads of pools that serve parts of the same shard."""
    out: dict[str, PoolLoad] = {}
    for load in loads:
        prev = out.get(load.shard)
        out[load.shard] = (
            load
            if prev is None
            else PoolLoad(
                load.shard,
                prev.connections_open + load.connections_open,
                prev.in_flight + load.in_flight,
                prev.queued + load.queued,
                prev.hosts_active + load.hosts_active,
                prev.completed + load.completed,
            )
        )
    return out


@runtime_checkable
class Backend(Protocol):
    """Runs HostPools somewhere; the engine only ever talks to this."""

    async def start(self, shards: Sequence[ShardSpec]) -> None: ...

    async def run(self, request: OpRequest) -> OpResult:
        """Run one operation on its host's pool and return its result (over the backend's own
        channel: a direct call in-process, the worker's pipe, a Ray object reference)."""
        ...

    async def submit(self, requests: Iterable[OpRequest]) -> None: ...

    async def pull(self, *, max_items: int = 1000, timeout: float | None = 0.5) -> list[OpResult]: ...

    async def gather(
        self, requests: Iterable[OpRequest], *, timeout: float | None = None
    ) -> list[OpResult]: ...

    async def load(self) -> dict[str, PoolLoad]: ...

    async def stop(self, *, drain: bool = False) -> None: ...

    @property
    def pending(self) -> int: ...


class BackendBase:
    """Routing by host, the count of outstanding operations, and ``gather`` on top of ``pull``."""

    def __init__(self) -> None:
        self._route: dict[str, int] = {}
        self._outstanding: dict[str, OpRequest] = {}
        self._stash: list[OpResult] = []
        self._started = False

    @property
    def pending(self) -> int:
        """Operations submitted whose results have not been pulled yet."""
        return len(self._outstanding) + len(self._stash)

    def _set_routes(self, units: Sequence[ShardSpec]) -> None:
        if self._started:
            raise ExecutionError("backend already started")
        self._route = {h: i for i, unit in enumerate(units) for h in unit.hosts}
        self._started = True

    def _unit_of(self, host: str) -> int:
        if not self._started:
            raise ExecutionError("backend not started")
        unit = self._route.get(host)
        if unit is None:
            raise ExecutionError(f"host {host!r} belongs to no shard of this backend")
        return unit

    def _routed(self, requests: Iterable[OpRequest]) -> dict[int, list[OpRequest]]:
        if not self._started:
            raise ExecutionError("backend not started")
        batches: dict[int, list[OpRequest]] = defaultdict(list)
        for request in requests:
            unit = self._route.get(request.host)
            if unit is None:
                raise ExecutionError(f"host {request.host!r} belongs to no shard of this backend")
            if request.op_id in self._outstanding:
                raise ExecutionError(f"operation {request.op_id!r} is already submitted")
            batches[unit].append(request)
        for batch in batches.values():
            self._outstanding.update((r.op_id, r) for r in batch)
        return batches

    def _received(self, results: Iterable[OpResult]) -> list[OpResult]:
        out = []
        for result in results:
            if self._outstanding.pop(result.op_id, None) is not None:
                out.append(result)
        return out

    async def _pull_new(self, max_items: int, timeout: float | None) -> list[OpResult]:
        raise NotImplementedError

    async def submit(self, requests: Iterable[OpRequest]) -> None:
        raise NotImplementedError

    async def pull(self, *, max_items: int = 1000, timeout: float | None = 0.5) -> list[OpResult]:
        """Results that finished since the last pull (waiting up to ``timeout`` for the first)."""
        if self._stash:
            out, self._stash = self._stash[:max_items], self._stash[max_items:]
            return out
        return self._received(await self._pull_new(max_items, timeout))

    async def gather(self, requests: Iterable[OpRequest], *, timeout: float | None = None) -> list[OpResult]:
        """Submit ``requests`` and wait for all their results, returned in the same order.

        Results of other operations that arrive meanwhile are kept for the next :meth:`pull`.
        """
        wanted = list(requests)
        await self.submit(wanted)
        ids = {r.op_id for r in wanted}
        got: dict[str, OpResult] = {}
        async with asyncio.timeout(timeout):
            while len(got) < len(ids):
                for result in await self._pull_new(1000, 0.5):
                    if self._outstanding.pop(result.op_id, None) is None:
                        continue
                    if result.op_id in ids:
                        got[result.op_id] = result
                    else:
                        self._stash.append(result)
        return [got[r.op_id] for r in wanted]


class LocalBackend(BackendBase):
    """HostPools in this process (``processes=0``, the default) or in ``processes`` worker processes."""

    def __init__(self, *, processes: int = 0, clock: Clock | None = None) -> None:
        super().__init__()
        if processes < 0:
            raise ValueError("processes must be 0 (in-process) or more")
        self.processes = processes
        self._clock = clock or RealClock()
        self._pools: list[HostPool] = []
        self._workers: list[_WorkerHandle] = []
        self._results: asyncio.Queue[OpResult] = asyncio.Queue()
        self._running: dict[str, asyncio.Future[OpResult]] = {}  # ``run`` callers waiting on a worker

    async def start(self, shards: Sequence[ShardSpec]) -> None:
        """Build a pool per shard here, or start the workers and build the pools there."""
        if not self.processes:
            self._set_routes(shards)
            self._pools = [s.make_pool(clock=self._clock, on_result=self._on_pool_result) for s in shards]
            return
        if any(s.shared is not None for s in shards):
            raise ExecutionError("a shard with a shared transport runs in-process only (processes=0)")
        units = _units(shards, self.processes)
        plan = _assign(len(units), self.processes)
        self._set_routes(units)
        route = {i: w for w, idxs in enumerate(plan) for i in idxs}
        self._route = {h: route[u] for h, u in self._route.items()}
        self._workers = [
            _WorkerHandle(w, [(i, units[i]) for i in idxs], self._on_worker_results)
            for w, idxs in enumerate(plan)
        ]
        await asyncio.gather(*(w.start() for w in self._workers))

    async def run(self, request: OpRequest) -> OpResult:
        """In-process: the pool's ``run_op`` in the caller's task; workers: a future the pipe resolves."""
        unit = self._unit_of(request.host)
        if not self._workers:
            return await self._pools[unit].run_op(request)
        if request.op_id in self._running or request.op_id in self._outstanding:
            raise ExecutionError(f"operation {request.op_id!r} is already submitted")
        future: asyncio.Future[OpResult] = asyncio.get_running_loop().create_future()
        self._running[request.op_id] = future
        try:
            await self._workers[unit].send(("submit", [request]))
            return await future
        finally:
            self._running.pop(request.op_id, None)

    async def submit(self, requests: Iterable[OpRequest]) -> None:
        """Queue operations on the pools of their hosts (each host's in the given order)."""
        batches = self._routed(requests)
        for unit, batch in batches.items():
            if self._workers:
                await self._workers[unit].send(("submit", batch))
            else:
                await self._pools[unit].post(batch)

    async def _pull_new(self, max_items: int, timeout: float | None) -> list[OpResult]:
        out: list[OpResult] = []
        if self._results.empty():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    out.append(await self._results.get())
        while len(out) < max_items and not self._results.empty():
            out.append(self._results.get_nowait())
        return out

    def _on_worker_results(self, results: list[OpResult]) -> None:
        for result in results:
            waiting = self._running.get(result.op_id)
            if waiting is not None:
                if not waiting.done():
                    waiting.set_result(result)
            else:
                self._results.put_nowait(result)

    def _on_pool_result(self, result: OpResult) -> None:
        """In-process results: those of ``submit`` go to ``pull``; those of ``run`` went to their caller."""
        if result.op_id in self._outstanding:
            self._results.put_nowait(result)

    async def load(self) -> dict[str, PoolLoad]:
        """Load per shard (parts of a split shard summed)."""
        if self._workers:
            loads = await asyncio.gather(*(w.load() for w in self._workers))
            return merge_loads(itertools.chain.from_iterable(loads))
        return merge_loads(p.load() for p in self._pools)

    async def stop(self, *, drain: bool = False) -> None:
        """Stop every pool (finishing submitted work with ``drain``) and every worker process."""
        await asyncio.gather(*(p.close(drain=drain) for p in self._pools))
        await asyncio.gather(*(w.stop(drain) for w in self._workers))
        for worker in self._workers:
            self._on_worker_results(worker.orphans())

    async def __aenter__(self) -> LocalBackend:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def _units(shards: Sequence[ShardSpec], processes: int) -> list[ShardSpec]:
    """Shards, split when there are fewer of them than worker processes."""
    if not shards:
        return []
    parts = -(-processes // len(shards))
    return [part for shard in shards for part in shard.split(parts)]


def _assign(units: int, processes: int) -> list[list[int]]:
    """Unit indexes per worker, round-robin, dropping workers that would get nothing."""
    plan = [list(range(w, units, processes)) for w in range(processes)]
    return [p for p in plan if p]


# -- worker processes ---------------------------------------------------------------------------


class _WorkerHandle:
    """The parent's end of one worker process: a duplex pipe read by the event loop."""

    def __init__(
        self, index: int, units: list[tuple[int, ShardSpec]], on_results: Callable[[list[OpResult]], None]
    ) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe(duplex=True)
        self._process = ctx.Process(
            target=_worker_main, args=(child, units), name=f"sysflow-hostpool-{index}", daemon=True
        )
        self._child = child
        self._on_results = on_results
        self._send_lock = asyncio.Lock()
        self._replies: dict[str, asyncio.Future[Any]] = {}
        self._tokens = itertools.count()
        self._sent: dict[str, OpRequest] = {}
        self._alive = False

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        ready = self._expect("ready")
        self._process.start()
        self._child.close()
        self._alive = True
        loop.add_reader(self._conn.fileno(), self._readable)
        try:
            async with asyncio.timeout(WORKER_START_TIMEOUT):
                await ready
        except TimeoutError:
            await self._kill()
            raise ExecutionError(f"worker {self._process.name} did not start") from None

    def _expect(self, key: str) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._replies[key] = fut
        return fut

    async def send(self, message: tuple[Any, ...]) -> None:
        if not self._alive:
            raise ExecutionError(f"worker {self._process.name} is not running")
        if message[0] == "submit":
            self._sent.update((r.op_id, r) for r in message[1])
        async with self._send_lock:  # one writer at a time; in a thread so a full pipe never blocks the loop
            await asyncio.get_running_loop().run_in_executor(None, self._conn.send, message)

    def _readable(self) -> None:
        try:
            while self._conn.poll():
                self._dispatch(self._conn.recv())
        except (EOFError, OSError):
            self._gone()

    def _dispatch(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "results":
            for result in message[1]:
                self._sent.pop(result.op_id, None)
            self._on_results(message[1])
            return
        key = message[1] if kind == "load" else kind
        fut = self._replies.pop(key, None)
        if fut is not None and not fut.done():
            fut.set_result(message[-1])

    def _gone(self) -> None:
        """The worker died: stop reading, fail its pending replies, report its operations as lost."""
        if not self._alive:
            return
        self._alive = False
        asyncio.get_running_loop().remove_reader(self._conn.fileno())
        for fut in self._replies.values():
            if not fut.done():
                fut.set_exception(ExecutionError(f"worker {self._process.name} exited"))
        self._replies.clear()
        self._on_results(self.orphans())

    def orphans(self) -> list[OpResult]:
        """Results saying the worker's unfinished operations were lost with it."""
        lost = [_lost(r, f"worker {self._process.name} exited") for r in self._sent.values()]
        self._sent.clear()
        return lost

    async def load(self) -> list[PoolLoad]:
        token = f"load-{next(self._tokens)}"
        reply = self._expect(token)
        await self.send(("load", token))
        loads: list[PoolLoad] = await reply
        return loads

    async def stop(self, drain: bool) -> None:
        if self._alive:
            stopped = self._expect("stopped")
            with contextlib.suppress(ExecutionError, TimeoutError):
                await self.send(("stop", drain))
                async with asyncio.timeout(None if drain else WORKER_STOP_TIMEOUT):
                    await stopped
        await self._kill()

    async def _kill(self) -> None:
        loop = asyncio.get_running_loop()
        if self._alive:
            self._alive = False
            loop.remove_reader(self._conn.fileno())
        await loop.run_in_executor(None, self._process.join, WORKER_STOP_TIMEOUT)
        if self._process.is_alive():  # pragma: no cover - only a wedged worker gets here
            self._process.kill()
            await loop.run_in_executor(None, self._process.join)
        self._conn.close()


def _lost(request: OpRequest, message: str) -> OpResult:
    """An operation whose pool went away: lost, as a value (never re-sent: it may have run)."""
    now = RealClock().now()
    return failure_of(request, Where("", "", now), now, 0.0, 0, ErrorKind.INTERNAL, message)


def _worker_main(conn: multiprocessing.connection.Connection, units: list[tuple[int, ShardSpec]]) -> None:
    """Entry point of a worker process: serve the pools of ``units`` until told to stop."""
    asyncio.run(_Worker(conn, units).serve())


class _Worker:
    """The worker's end: pools in one event loop, requests read from the pipe, results batched back."""

    def __init__(
        self, conn: multiprocessing.connection.Connection, units: list[tuple[int, ShardSpec]]
    ) -> None:
        self._conn = conn
        self._units = units
        self._outbox: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self._pools: dict[str, HostPool] = {}
        self._done: asyncio.Future[bool] | None = None

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        pools = [spec.make_pool(on_result=self._result) for _, spec in self._units]
        self._pools = {
            h: pool for (_, spec), pool in zip(self._units, pools, strict=True) for h in spec.hosts
        }
        loop.add_reader(self._conn.fileno(), self._readable)
        sender = loop.create_task(self._sender())
        self._outbox.put_nowait(("ready", True))
        try:
            drain = await self._done
            await asyncio.gather(*(p.close(drain=drain) for p in pools))
        finally:
            loop.remove_reader(self._conn.fileno())
            self._outbox.put_nowait(("stopped", True))
            await self._outbox.join()
            sender.cancel()
            self._conn.close()

    def _result(self, result: OpResult) -> None:
        self._outbox.put_nowait(("results", [result]))

    def _readable(self) -> None:
        try:
            while self._conn.poll():
                self._handle(self._conn.recv())
        except (EOFError, OSError):  # the parent went away: stop, cancelling everything
            self._finish(False)

    def _handle(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "submit":
            for request in message[1]:
                self._submit(request)
        elif kind == "load":
            loads = [p.load() for p in {id(p): p for p in self._pools.values()}.values()]
            self._outbox.put_nowait(("load", message[1], loads))
        elif kind == "stop":
            self._finish(bool(message[1]))

    def _submit(self, request: OpRequest) -> None:
        if self._done is not None and self._done.done():  # told to stop: the operation is lost, say so
            self._result(_lost(request, "worker is stopping"))
            return
        self._pools[request.host].submit(request)

    def _finish(self, drain: bool) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(drain)

    async def _sender(self) -> None:
        """Send queued messages, merging consecutive result batches into one message."""
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._outbox.get()]
            while not self._outbox.empty():
                batch.append(self._outbox.get_nowait())
            for message in _merge(batch):
                with contextlib.suppress(OSError):
                    await loop.run_in_executor(None, self._conn.send, message)
            for _ in batch:
                self._outbox.task_done()


def _merge(messages: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for message in messages:
        if message[0] == "results" and out and out[-1][0] == "results":
            out[-1] = ("results", out[-1][1] + message[1])
        else:
            out.append(message)
    return out
