"""The Ray backend: one HostPool per shard as a Ray async actor, placed inside the shard's segment.

This is the one edge where HostPool meets Ray (after Ray's own ``ray.util.queue.Queue`` over its
private ``_QueueActor``): ``ray.remote(HostPool)`` makes the plain class an async actor, each actor
asks for a sliver of the custom resource ``segment:<name>`` so Ray schedules it on a node inside
that network segment (start those nodes with ``--resources '{"segment:ams": 1}'``), and every call
to an actor goes through :func:`_translated`, which turns Ray's exceptions into sysflow's: a dead
actor is an ``ExecutionError`` naming the shard and its operations come back as lost results (failures
are values), an exception raised inside the pool comes back as itself.

The transport is built inside the actor from ``ShardSpec.factory`` (shipped with cloudpickle), so
connections and credentials never cross the cluster. The engine awaits each operation's object
reference (``run``); ``submit``/``pull`` serve batch callers that drain the pool's outbox. Ray is imported only here and only
when a RayBackend starts: it is an optional dependency (``sysflow-engine[ray]``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from sysflow.actors.backends import BackendBase, ShardSpec, _lost, merge_loads
from sysflow.actors.hostpool import HostPool
from sysflow.actors.ops import OpRequest, OpResult, PoolLoad
from sysflow.errors import ExecutionError, SysflowError

__all__ = ["ACTOR_START_TIMEOUT", "SEGMENT_RESOURCE_AMOUNT", "RayBackend", "segment_resource"]

SEGMENT_RESOURCE_AMOUNT = 0.001  # of a node's "segment:<name>" resource that one HostPool actor takes
ACTOR_START_TIMEOUT = 60.0  # seconds for every actor to be placed and built
ACTOR_MAX_CONCURRENCY = 1000  # concurrent calls into one actor (pulls, posts, loads)


def segment_resource(segment: str) -> str:
    """The Ray custom resource a node inside ``segment`` offers."""
    return f"segment:{segment}"


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - ray is installed wherever the tests run
        raise ExecutionError("RayBackend needs Ray: pip install 'sysflow-engine[ray]'") from exc
    return ray


@contextlib.contextmanager
def _translated(shard: str) -> Iterator[None]:
    """Translate Ray's exceptions from a call to ``shard``'s actor into sysflow's."""
    ray = _import_ray()
    try:
        yield
    except ray.exceptions.RayActorError as exc:
        raise _ActorGone(f"host pool actor of shard {shard!r} is gone: {type(exc).__name__}") from None
    except ray.exceptions.RayTaskError as exc:
        cause = exc.cause
        if isinstance(cause, SysflowError):
            raise cause from None
        raise ExecutionError(f"host pool actor of shard {shard!r} failed: {cause!r}") from None
    except ray.exceptions.RayError as exc:
        raise ExecutionError(f"host pool actor of shard {shard!r}: {type(exc).__name__}") from None


class _ActorGone(ExecutionError):
    """An actor died or became unreachable."""


def _node_id(pool: HostPool) -> str:
    """Runs inside the actor (through ``__ray_call__``): the Ray node it lives on."""
    ray = _import_ray()
    node: str = ray.get_runtime_context().get_node_id()
    return node


class RayBackend(BackendBase):
    """One HostPool Ray actor per shard; works on ``ray.init()`` and on a multi-node cluster.

    ``address`` and ``init_kwargs`` are used only when Ray is not initialised yet (then ``stop``
    shuts it down again); ``actor_options`` are passed to ``.options()`` of every actor (the default
    reserves no CPU so that many shards fit a small node).
    """

    def __init__(
        self,
        *,
        address: str | None = None,
        init_kwargs: Mapping[str, Any] | None = None,
        actor_options: Mapping[str, Any] | None = None,
        start_timeout: float = ACTOR_START_TIMEOUT,
    ) -> None:
        super().__init__()
        self._address = address
        self._init_kwargs = dict(init_kwargs or {})
        self._actor_options = {"num_cpus": 0, **(actor_options or {})}
        self._start_timeout = start_timeout
        self._shards: list[ShardSpec] = []
        self._actors: list[Any] = []
        self._dead: set[int] = set()
        self._owns_ray = False
        self._extra: list[OpResult] = []  # results to hand out next: drained at close, or lost

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self, shards: Sequence[ShardSpec]) -> None:
        """Create the actors (one per shard, inside its segment) and wait until each is built."""
        ray = _import_ray()
        if not ray.is_initialized():
            ray.init(address=self._address, **self._init_kwargs)
            self._owns_ray = True
        _check_segments(ray, shards)
        self._set_routes(shards)
        self._shards = list(shards)
        remote_pool = ray.remote(HostPool)
        self._actors = [remote_pool.options(**self._options_for(s)).remote(**_pool_kwargs(s)) for s in shards]
        try:
            async with asyncio.timeout(self._start_timeout):
                await asyncio.gather(*(self._call(i, "__ray_ready__") for i in range(len(shards))))
        except TimeoutError:
            self._kill_all()  # an unplaced actor would never answer close(): just end them
            raise ExecutionError(
                f"host pool actors not placed within {self._start_timeout}s: does a node offer "
                f"{', '.join(sorted(self._resources_wanted()))}?"
            ) from None

    def _options_for(self, shard: ShardSpec) -> dict[str, Any]:
        options: dict[str, Any] = {"max_concurrency": ACTOR_MAX_CONCURRENCY, **self._actor_options}
        if shard.segment:
            resources = dict(options.get("resources", {}))
            resources[segment_resource(shard.segment)] = SEGMENT_RESOURCE_AMOUNT
            options["resources"] = resources
        return options

    def _resources_wanted(self) -> set[str]:
        return {segment_resource(s.segment) for s in self._shards if s.segment} or {"CPU"}

    async def stop(self, *, drain: bool = False) -> None:
        """Close every pool (finishing its work with ``drain``), collect its last results, end the actors."""
        live = [i for i in range(len(self._actors)) if i not in self._dead]
        await asyncio.gather(*(self._close(i, drain) for i in live), return_exceptions=True)
        self._kill_all()

    def _kill_all(self) -> None:
        ray = _import_ray()
        for actor in self._actors:
            with contextlib.suppress(Exception):
                ray.kill(actor)
        self._actors = []
        self._dead = set()
        if self._owns_ray:
            ray.shutdown()
            self._owns_ray = False

    async def _close(self, index: int, drain: bool) -> None:
        await self._call(index, "close", drain=drain)
        while True:  # the pool's outbox is closed by close(): drain it to its end
            batch = await self._call(index, "pull", max_items=10_000, timeout=0)
            if not batch:
                return
            self._extra.extend(batch)

    async def __aenter__(self) -> RayBackend:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- work -------------------------------------------------------------------------------------

    async def run(self, request: OpRequest) -> OpResult:
        """Run one operation on its shard's actor; the awaited object reference carries the result.

        A dead actor is a lost operation, as a value (never re-sent: it may have run).
        """
        unit = self._unit_of(request.host)
        if unit in self._dead:
            return _lost(request, f"shard {self._shards[unit].name!r} is gone")
        try:
            result: OpResult = await self._call(unit, "run_op", request, stream=False)
        except _ActorGone:
            return _lost(request, f"host pool actor of shard {self._shards[unit].name!r} died")
        return result

    async def submit(self, requests: Iterable[OpRequest]) -> None:
        """Post each shard's operations to its actor in one call (each host's in the given order)."""
        batches = self._routed(requests)
        for unit, batch in batches.items():
            if unit in self._dead:
                self._extra.extend(_lost(r, f"shard {self._shards[unit].name!r} is gone") for r in batch)
                continue
            await self._call(unit, "post", batch)

    async def _pull_new(self, max_items: int, timeout: float | None) -> list[OpResult]:
        if self._extra:
            extra, self._extra = self._extra, []
            return extra
        live = [i for i in range(len(self._actors)) if i not in self._dead]
        share = max(1, max_items // max(1, len(live)))
        batches = await asyncio.gather(
            *(self._call(i, "pull", max_items=share, timeout=timeout) for i in live), return_exceptions=True
        )
        out: list[OpResult] = []
        for batch in batches:
            if isinstance(batch, BaseException):
                if not isinstance(batch, _ActorGone):
                    raise batch
                continue
            out.extend(batch)
        out.extend(self._extra)
        self._extra = []
        return out

    async def load(self) -> dict[str, PoolLoad]:
        """Load per shard (dead shards omitted)."""
        live = [i for i in range(len(self._actors)) if i not in self._dead]
        return merge_loads(await asyncio.gather(*(self._call(i, "load") for i in live)))

    async def placement(self) -> dict[str, str]:
        """The Ray node id each shard's actor runs on."""
        live = [i for i in range(len(self._actors)) if i not in self._dead]
        nodes = await asyncio.gather(*(self._call(i, "__ray_call__", _node_id) for i in live))
        return {self._shards[i].name: node for i, node in zip(live, nodes, strict=True)}

    async def _call(self, index: int, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call a method of an actor, translating Ray's errors; a dead actor's operations are lost."""
        shard = self._shards[index].name
        try:
            with _translated(shard):
                return await getattr(self._actors[index], method).remote(*args, **kwargs)
        except _ActorGone:
            self._bury(index)
            raise

    def _bury(self, index: int) -> None:
        if index in self._dead:
            return
        self._dead.add(index)
        name = self._shards[index].name
        orphans = [r for r in self._outstanding.values() if self._route.get(r.host) == index]
        self._extra.extend(_lost(r, f"host pool actor of shard {name!r} died") for r in orphans)


def _check_segments(ray: Any, shards: Sequence[ShardSpec]) -> None:
    """Refuse, before any actor is made, shards whose segment no node of the cluster offers."""
    offered = ray.cluster_resources()
    missing = [s for s in shards if s.segment and offered.get(segment_resource(s.segment), 0) <= 0]
    if missing:
        lines = [
            f"{segment_resource(s.segment or '')} (hosts {', '.join(s.hosts[:5])}"
            f"{', ...' if len(s.hosts) > 5 else ''})"
            for s in missing
        ]
        raise ExecutionError(
            f"no Ray node offers {'; '.join(lines)}: start a node inside that segment with "
            f"ray start --resources '{{\"{segment_resource(missing[0].segment or '')}\": 1}}'"
        )


def _pool_kwargs(shard: ShardSpec) -> dict[str, Any]:
    """Keyword arguments of ``HostPool`` for a shard's actor: built from the factory, streaming."""
    return {
        "shard": shard.name,
        "factory": shard.factory,
        "max_in_flight": shard.max_in_flight,
        "retry_delay": shard.retry_delay,
        "output_cap": shard.output_cap,
        "stream": True,
    }
