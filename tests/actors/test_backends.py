"""LocalBackend in-process and over worker processes: routing, order, load, pulling, stopping."""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from sysflow.actors.backends import (
    DEFAULT_SHARD,
    Backend,
    LocalBackend,
    ShardSpec,
    _merge,
    _Worker,
    merge_loads,
    shards_from_inventory,
)
from sysflow.actors.local import LocalTransport
from sysflow.actors.ops import ErrorKind, OpRequest, OpResult, PoolLoad
from sysflow.errors import ExecutionError
from sysflow.model.inventory import Inventory


def fleet() -> Inventory:
    inv = Inventory()
    for i in range(3):
        inv.add_host(f"ams{i}", datacenter="ams")
        inv.add_host(f"fra{i}", segment="fra-dmz", datacenter="fra")
    inv.add_host("lonely")
    return inv


def writes(tmp: Path, host: str, n: int, delay: str = "0") -> OpRequest:
    cmd = f"sleep {delay}; echo {n} $PPID >> {tmp / host}"
    return OpRequest(op_id=f"t{n}@{host}", host=host, task=f"t{n}", command=cmd)


def lines(tmp: Path, host: str) -> list[list[str]]:
    return [line.split() for line in (tmp / host).read_text().splitlines()]


def test_shards_from_inventory_group_by_segment() -> None:
    shards = shards_from_inventory(fleet(), LocalTransport, max_in_flight=7)
    assert [(s.name, s.segment, s.hosts) for s in shards] == [
        ("ams", "ams", ("ams0", "ams1", "ams2")),
        ("fra-dmz", "fra-dmz", ("fra0", "fra1", "fra2")),
        (DEFAULT_SHARD, None, ("lonely",)),
    ]
    assert {s.max_in_flight for s in shards} == {7}
    parts = shards[0].split(2)
    assert [p.hosts for p in parts] == [("ams0", "ams2"), ("ams1",)]
    assert {p.max_in_flight for p in parts} == {3}
    assert len(shards[2].split(5)) == 1


def test_merge_loads_sums_parts() -> None:
    merged = merge_loads(
        [PoolLoad("a", 1, 2, 3, 4, 5), PoolLoad("a", 1, 1, 1, 1, 1), PoolLoad("b", 0, 0, 0, 0, 9)]
    )
    assert merged == {"a": PoolLoad("a", 2, 3, 4, 5, 6), "b": PoolLoad("b", 0, 0, 0, 0, 9)}


async def test_in_process_routes_orders_and_reports(tmp_path: Path) -> None:
    backend = LocalBackend()
    assert isinstance(backend, Backend)
    await backend.start(shards_from_inventory(fleet(), LocalTransport))
    hosts = list(fleet().hosts)
    requests = [
        writes(tmp_path, h, n, f"0.0{(n * 7 + i) % 3}") for n in range(3) for i, h in enumerate(hosts)
    ]
    results = await backend.gather(requests, timeout=60)
    assert [r.op_id for r in results] == [r.op_id for r in requests]
    assert all(r.ok for r in results)
    assert {r.host: r.shard for r in results}["fra1"] == "fra-dmz"
    for h in hosts:
        assert [n for n, _ in lines(tmp_path, h)] == ["0", "1", "2"]
    load = await backend.load()
    assert sorted(load) == ["ams", "default", "fra-dmz"]
    assert sum(x.completed for x in load.values()) == len(requests)
    assert backend.pending == 0
    await backend.stop()


async def test_pull_streams_and_gather_keeps_other_results(tmp_path: Path) -> None:
    async with LocalBackend() as backend:
        await backend.start(shards_from_inventory(fleet(), LocalTransport))
        await backend.submit([writes(tmp_path, "ams0", 0, "0.2")])
        quick = await backend.gather([writes(tmp_path, "fra0", 0)], timeout=60)
        assert quick[0].ok
        assert backend.pending == 1
        got: list[OpResult] = []
        for _ in range(100):
            got += await backend.pull(timeout=1.0)
            if got:
                break
        assert [r.op_id for r in got] == ["t0@ams0"]
        assert backend.pending == 0
        assert await backend.pull(timeout=0.01) == []


async def test_gather_stashes_results_of_earlier_submissions(tmp_path: Path) -> None:
    async with LocalBackend() as backend:
        await backend.start(shards_from_inventory(fleet(), LocalTransport))
        await backend.submit([writes(tmp_path, "ams0", 0)])
        await asyncio.sleep(0.3)  # let it finish so gather sees it first
        results = await backend.gather([writes(tmp_path, "ams0", 1)], timeout=60)
        assert [r.op_id for r in results] == ["t1@ams0"]
        assert backend.pending == 1
        assert [r.op_id for r in await backend.pull(max_items=5)] == ["t0@ams0"]


async def test_refusals() -> None:
    backend = LocalBackend()
    with pytest.raises(ExecutionError, match="not started"):
        await backend.submit([OpRequest("x", "ams0", "t", "true")])
    await backend.start(shards_from_inventory(fleet(), LocalTransport))
    with pytest.raises(ExecutionError, match="already started"):
        await backend.start([])
    with pytest.raises(ExecutionError, match="no shard"):
        await backend.submit([OpRequest("x", "elsewhere", "t", "true")])
    await backend.submit([OpRequest("x", "ams0", "t", "sleep 5")])
    with pytest.raises(ExecutionError, match="already submitted"):
        await backend.submit([OpRequest("x", "ams0", "t", "true")])
    await backend.stop()
    assert [r.error_kind for r in await backend.pull()] == [ErrorKind.CANCELLED]
    with pytest.raises(ValueError, match="processes"):
        LocalBackend(processes=-1)


async def test_worker_processes_spread_shards_and_keep_order(tmp_path: Path) -> None:
    backend = LocalBackend(processes=2)
    await backend.start(shards_from_inventory(fleet(), functools.partial(LocalTransport, output_cap=4096)))
    hosts = list(fleet().hosts)
    requests = [writes(tmp_path, h, n, f"0.0{(n + i) % 3}") for n in range(3) for i, h in enumerate(hosts)]
    results = await backend.gather(requests, timeout=120)
    assert all(r.ok for r in results), [r.error_message for r in results if not r.ok]
    workers = {h: {pid for _, pid in lines(tmp_path, h)} for h in hosts}
    assert all(len(pids) == 1 for pids in workers.values())  # a host stays in one worker
    pids = set().union(*workers.values())
    assert len(pids) == 2
    assert str(os.getpid()) not in pids
    for h in hosts:
        assert [n for n, _ in lines(tmp_path, h)] == ["0", "1", "2"]
    load = await backend.load()
    assert sum(x.completed for x in load.values()) == len(requests)
    await backend.stop(drain=True)


async def test_one_shard_is_split_over_the_workers(tmp_path: Path) -> None:
    hosts = tuple(f"h{i}" for i in range(6))
    backend = LocalBackend(processes=2)
    await backend.start([ShardSpec("only", hosts, LocalTransport, max_in_flight=10)])
    results = await backend.gather([writes(tmp_path, h, 0) for h in hosts], timeout=120)
    assert {r.shard for r in results} == {"only"}
    assert len({pid for h in hosts for _, pid in lines(tmp_path, h)}) == 2
    load = await backend.load()
    assert list(load) == ["only"]
    assert load["only"].completed == 6
    await backend.stop()


async def test_stopping_workers_cancels_running_commands(tmp_path: Path) -> None:
    backend = LocalBackend(processes=1)
    await backend.start([ShardSpec("s", ("a",), LocalTransport)])
    await backend.submit([OpRequest("long@a", "a", "long", f"echo $$ > {tmp_path / 'pid'}; exec sleep 30")])
    for _ in range(200):
        if (tmp_path / "pid").exists() and (tmp_path / "pid").read_text().strip():
            break
        await asyncio.sleep(0.05)
    await backend.stop()
    (result,) = await backend.pull()
    assert result.error_kind is ErrorKind.CANCELLED
    pid = int((tmp_path / "pid").read_text())
    for _ in range(100):  # the reaper may lag a moment behind the kill
        if not _alive(pid):
            break
        await asyncio.sleep(0.05)
    assert not _alive(pid)


async def test_a_dead_worker_reports_its_operations_lost(tmp_path: Path) -> None:
    backend = LocalBackend(processes=1)
    await backend.start([ShardSpec("s", ("a",), LocalTransport)])
    await backend.submit([OpRequest("long@a", "a", "long", f"echo $$ > {tmp_path / 'pid'}; exec sleep 30")])
    for _ in range(200):
        if (tmp_path / "pid").exists() and (tmp_path / "pid").read_text().strip():
            break
        await asyncio.sleep(0.05)
    worker = backend._workers[0]._process
    assert worker.pid is not None
    os.kill(worker.pid, signal.SIGKILL)  # a process this test started
    os.kill(int((tmp_path / "pid").read_text()), signal.SIGKILL)  # and its command
    results = await backend.pull(timeout=30)
    assert [(r.op_id, r.error_kind) for r in results] == [("long@a", ErrorKind.INTERNAL)]
    assert "exited" in results[0].error_message
    with pytest.raises(ExecutionError, match="not running"):
        await backend.submit([OpRequest("next@a", "a", "next", "true")])
    with pytest.raises(ExecutionError, match=r"exited|not running"):
        await backend.load()
    await backend.stop()


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


async def test_worker_loop_in_process_over_a_pipe(tmp_path: Path) -> None:
    """The worker's end, run in this loop so its protocol is exercised (and measured) here."""
    parent, child = multiprocessing.Pipe(duplex=True)
    units = [(0, ShardSpec("s", ("a", "b"), LocalTransport)), (1, ShardSpec("t", ("c",), LocalTransport))]
    serving = asyncio.create_task(_Worker(child, units).serve())

    async def recv() -> tuple[Any, ...]:
        for _ in range(600):
            if parent.poll():
                message: tuple[Any, ...] = parent.recv()
                return message
            await asyncio.sleep(0.01)
        raise AssertionError("worker sent nothing")

    assert await recv() == ("ready", True)
    parent.send(("submit", [writes(tmp_path, h, 0) for h in ("a", "b", "c")]))
    got: list[OpResult] = []
    while len(got) < 3:
        kind, batch = await recv()
        assert kind == "results"
        got += batch
    assert sorted(r.host for r in got) == ["a", "b", "c"]
    parent.send(("load", "tok"))
    kind, token, loads = await recv()
    assert (kind, token, sorted(x.shard for x in loads)) == ("load", "tok", ["s", "t"])
    parent.send(("submit", [OpRequest("slow@a", "a", "slow", "sleep 0.2")]))
    parent.send(("stop", True))
    parent.send(("submit", [OpRequest("late@c", "c", "late", "true")]))
    messages = [await recv() for _ in range(2)]
    results = [r for m in messages if m[0] == "results" for r in m[1]]
    if messages[-1][0] != "stopped":
        messages.append(await recv())
    assert messages[-1] == ("stopped", True)
    assert {r.op_id: r.error_kind for r in results} == {
        "slow@a": ErrorKind.NONE,
        "late@c": ErrorKind.INTERNAL,
    }
    await serving
    parent.close()


async def test_worker_stops_when_its_parent_goes_away() -> None:
    parent, child = multiprocessing.Pipe(duplex=True)
    serving = asyncio.create_task(_Worker(child, [(0, ShardSpec("s", ("a",), LocalTransport))]).serve())
    await asyncio.sleep(0.05)
    parent.close()
    async with asyncio.timeout(30):
        await serving


def test_merge_batches() -> None:
    r = [object(), object(), object()]
    assert _merge([("results", [r[0]]), ("results", [r[1]]), ("load", "t", []), ("results", [r[2]])]) == [
        ("results", [r[0], r[1]]),
        ("load", "t", []),
        ("results", [r[2]]),
    ]
