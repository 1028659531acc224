"""RayBackend on a local three-node Ray cluster (127.0.0.1), one node per network segment."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray

from sysflow.actors.backends import Backend, ShardSpec
from sysflow.actors.local import LocalTransport
from sysflow.actors.ops import ErrorKind, OpRequest, OpResult
from sysflow.actors.ray_backend import RayBackend, _translated, segment_resource
from sysflow.errors import ExecutionError, HostUnreachable
from tests.fixtures.ray_cluster import ray_cluster

pytestmark = pytest.mark.ray

SEGMENTS = ("ams", "fra", "lon")


@pytest.fixture(scope="module")
def cluster() -> Iterator[dict[str, str]]:
    """Three nodes, each offering one ``segment:`` resource; yields segment -> node id."""
    with ray_cluster([{segment_resource(seg): 1} for seg in SEGMENTS]) as c:
        ray.init(address=c.address, _node_ip_address="127.0.0.1", log_to_driver=False)
        try:
            nodes = {}
            for node in ray.nodes():
                for seg in SEGMENTS:
                    if segment_resource(seg) in node["Resources"]:
                        nodes[seg] = node["NodeID"]
            yield nodes
        finally:
            ray.shutdown()


def shards(tmp: Path) -> list[ShardSpec]:
    return [
        ShardSpec(seg, tuple(f"{seg}{i}" for i in range(3)), LocalTransport, segment=seg) for seg in SEGMENTS
    ]


def writes(tmp: Path, host: str, n: int) -> OpRequest:
    cmd = f"sleep 0.0{(n * 3 + len(host)) % 4}; echo {n} >> {tmp / host}"
    return OpRequest(op_id=f"t{n}@{host}", host=host, task=f"t{n}", command=cmd)


async def test_actors_land_in_their_segment_and_results_come_back(
    cluster: dict[str, str], tmp_path: Path
) -> None:
    backend = RayBackend()
    assert isinstance(backend, Backend)
    await backend.start(shards(tmp_path))
    assert await backend.placement() == cluster
    hosts = [h for s in shards(tmp_path) for h in s.hosts]
    requests = [writes(tmp_path, h, n) for n in range(4) for h in hosts]
    results = await backend.gather(requests, timeout=120)
    assert [r.op_id for r in results] == [r.op_id for r in requests]
    assert all(r.ok for r in results)
    assert {r.host[:3] for r in results if r.shard == "fra"} == {"fra"}
    for h in hosts:
        assert (tmp_path / h).read_text().split() == ["0", "1", "2", "3"]
    load = await backend.load()
    assert sorted(load) == list(SEGMENTS)
    assert sum(x.completed for x in load.values()) == len(requests)
    await backend.stop()


async def test_stop_cancels_running_work_and_hands_back_its_results(
    cluster: dict[str, str], tmp_path: Path
) -> None:
    async with RayBackend() as backend:
        await backend.start(shards(tmp_path))
        await backend.submit([OpRequest("long@ams0", "ams0", "long", "sleep 30")])
        await asyncio.sleep(0.5)
        assert (await backend.load())["ams"].in_flight == 1
        await backend.stop()
        results = await backend.pull(timeout=1)
    assert [(r.op_id, r.error_kind) for r in results] == [("long@ams0", ErrorKind.CANCELLED)]


async def test_a_dead_actor_loses_its_operations_as_values(cluster: dict[str, str], tmp_path: Path) -> None:
    backend = RayBackend()
    await backend.start(shards(tmp_path))
    await backend.submit([OpRequest("long@lon0", "lon0", "long", "sleep 30")])
    await asyncio.sleep(0.5)
    ray.kill(backend._actors[2])  # an actor this test's backend created
    results: list[OpResult] = []
    for _ in range(60):
        results += await backend.pull(timeout=0.5)
        if results:
            break
    assert [(r.op_id, r.error_kind) for r in results] == [("long@lon0", ErrorKind.INTERNAL)]
    assert "died" in results[0].error_message
    await backend.submit([OpRequest("next@lon1", "lon1", "next", "true")])
    (late,) = await backend.pull()
    assert "gone" in late.error_message
    other = await backend.gather([OpRequest("still@ams1", "ams1", "still", "true")], timeout=60)
    assert other[0].ok
    assert sorted(await backend.load()) == ["ams", "fra"]
    await backend.stop()


async def test_an_unplaceable_shard_is_an_error_naming_its_segment(cluster: dict[str, str]) -> None:
    backend = RayBackend(start_timeout=3)
    with pytest.raises(ExecutionError, match="segment:nowhere"):
        await backend.start([ShardSpec("x", ("x1",), LocalTransport, segment="nowhere")])


async def test_ray_errors_become_sysflow_errors(cluster: dict[str, str]) -> None:
    @ray.remote
    def fails(exc: Exception) -> None:
        raise exc

    with pytest.raises(HostUnreachable, match="refused"), _translated("s"):
        await fails.remote(HostUnreachable("refused", host="h"))
    with pytest.raises(ExecutionError, match="shard 's' failed"), _translated("s"):
        await fails.remote(ValueError("odd"))
    ref = sleeper.remote()
    with pytest.raises(ExecutionError, match="GetTimeoutError"), _translated("s"):
        ray.get(ref, timeout=0.01)
    ray.cancel(ref, force=True)


@ray.remote(num_cpus=0)
def sleeper() -> None:
    time.sleep(30)
