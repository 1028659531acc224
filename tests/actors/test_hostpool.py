"""HostPool: per-host order, in-flight cap, load, command retries, failures as values, cancellation."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from sysflow.actors.hostpool import HostPool, PoolState
from sysflow.actors.local import LocalTransport
from sysflow.actors.ops import ErrorKind, OpRequest, OpResult, classify, retry_delay
from sysflow.clock import ManualClock
from sysflow.engine.dispatch import request_of
from sysflow.errors import (
    ConnectTimeout,
    ExecutionError,
)
from sysflow.planner.graph import Operation
from sysflow.testing import SCRIPTED_ERRORS, ScriptedTransport


def req(host: str, command: str, n: int = 0, **kw: object) -> OpRequest:
    return OpRequest(op_id=f"t{n}@{host}:{command}", host=host, task=f"t{n}", command=command, **kw)  # type: ignore[arg-type]


async def test_per_host_order_and_no_overlap_under_random_delays() -> None:
    transport = ScriptedTransport()
    rng = random.Random(7)
    pool = HostPool("dc1", transport, max_in_flight=8)
    hosts = [f"h{i}" for i in range(20)]
    requests = [req(h, f"sleep:{rng.uniform(0, 0.004):.4f}", n) for n in range(6) for h in hosts]
    rng.shuffle(requests)
    results = await pool.run_batch(requests)
    assert [r.op_id for r in results] == [r.op_id for r in requests]
    assert transport.overlaps == 0
    assert transport.peak <= 8
    for h in hosts:
        assert [c for hh, c in transport.calls if hh == h] == [r.command for r in requests if r.host == h]
    assert all(r.ok and r.shard == "dc1" for r in results)
    await pool.close()
    assert not transport.closed  # a given transport belongs to the caller


async def test_order_proven_by_files_written_by_real_commands(tmp_path: Path) -> None:
    pool = HostPool("local", factory=LocalTransport, max_in_flight=4)
    hosts = [f"h{i}" for i in range(4)]
    requests = [
        req(h, f"sleep 0.0{(n + i) % 3}; echo {n} >> {tmp_path / h}", n)
        for n in range(4)
        for i, h in enumerate(hosts)
    ]
    results = await pool.run_batch(requests)
    assert all(r.ok for r in results), [r.error_message for r in results if not r.ok]
    for h in hosts:
        assert (tmp_path / h).read_text().split() == ["0", "1", "2", "3"]
    await pool.close()


async def test_load_reports_in_flight_queued_and_connections() -> None:
    transport = ScriptedTransport()
    pool = HostPool("dc1", transport, max_in_flight=2)
    futures = [pool.submit(req(h, "sleep:0.05", n)) for n in range(2) for h in ("a", "b", "c")]
    await asyncio.sleep(0.01)
    load = pool.load()
    assert (load.in_flight, load.queued, load.hosts_active) == (2, 4, 3)
    assert load.connections_open == 2
    assert load.completed == 0
    await asyncio.gather(*futures)
    load = pool.load()
    assert (load.in_flight, load.queued, load.hosts_active, load.completed) == (0, 0, 0, 6)
    await pool.close()


async def test_command_failures_retried_only_when_asked() -> None:
    clock = ManualClock()
    transport = ScriptedTransport(clock)
    pool = HostPool("dc1", transport, clock=clock, retry_delay=2.0)
    no_retry = await pool.run_op(req("a", "flaky:1"))
    assert (no_retry.error_kind, no_retry.exit_status, no_retry.attempts) == (ErrorKind.COMMAND_FAILED, 1, 1)
    assert no_retry.error_message == "command exited with status 1"
    retried = await pool.run_op(req("b", "flaky:2", retries=3))
    assert retried.ok
    assert retried.attempts == 3
    # exponential backoff on the clock, jittered x0.5-1.5 per attempt, reproducibly
    expected = retry_delay(2.0, 1, "t0@b:flaky:2") + retry_delay(2.0, 2, "t0@b:flaky:2")
    assert clock.monotonic() == pytest.approx(expected)
    assert 0.5 * 6.0 <= expected <= 1.5 * 6.0
    assert retried.duration == pytest.approx(expected)
    exhausted = await pool.run_op(req("c", "exit:3", retries=2))
    assert (exhausted.error_kind, exhausted.attempts, transport.attempts[("c", "exit:3")]) == (
        ErrorKind.COMMAND_FAILED,
        3,
        3,
    )
    timeouts = await pool.run_op(req("d", "raise:cmdtimeout", retries=1))
    assert (timeouts.error_kind, timeouts.attempts) == (ErrorKind.COMMAND_TIMEOUT, 2)
    await pool.close()


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("hostkey", ErrorKind.HOST_KEY_MISMATCH),
        ("newkey", ErrorKind.HOST_KEY_UNKNOWN),
        ("auth", ErrorKind.AUTHENTICATION_FAILED),
        ("ctimeout", ErrorKind.CONNECT_TIMEOUT),
        ("unreachable", ErrorKind.HOST_UNREACHABLE),
        ("conn", ErrorKind.CONNECTION_FAILED),
        ("transport", ErrorKind.TRANSPORT_ERROR),
        ("bug", ErrorKind.INTERNAL),
    ],
)
async def test_connection_failures_are_values_never_retried(name: str, kind: ErrorKind) -> None:
    transport = ScriptedTransport()
    async with HostPool("dc1", transport) as pool:
        result = await pool.run_op(req("h", f"raise:{name}", retries=5))
        after = await pool.run_op(req("h", "ok", 1))
    assert result.error_kind is kind
    assert result.failed
    assert result.attempts == 1
    assert result.exit_status is None
    assert str(SCRIPTED_ERRORS[name]) in result.error_message
    assert kind.is_connection == (name in {"hostkey", "newkey", "auth", "ctimeout", "unreachable", "conn"})
    assert after.ok  # a failure does not poison the host's lane


async def test_results_carry_capped_output_digest_and_signal() -> None:
    pool = HostPool("dc1", ScriptedTransport(), output_cap=1000)
    big, sig, ok = await pool.run_batch(
        [req("a", "big"), req("b", "signal"), req("c", "ok", env=(("K", "v"),))]
    )
    assert big.truncated
    assert big.stdout_bytes == 100_000
    assert len(big.stdout) < 1100
    assert len(big.output_sha256) == 64
    assert (sig.error_kind, sig.signal, sig.error_message) == (
        ErrorKind.COMMAND_FAILED,
        "SIGKILL",
        "command ended by signal SIGKILL",
    )
    assert ok.stdout == "c ok"
    assert ok.end >= ok.start
    await pool.close()


async def test_env_passed_and_request_of_an_operation() -> None:
    transport = ScriptedTransport()
    op = Operation(
        id="patch@web1",
        host="web1",
        task="patch",
        wave=0,
        index=0,
        group="web",
        groups=("web",),
        datacenter="ams",
        segment="ams",
        command="ok",
        expected_duration=1.0,
        timeout=30.0,
        retries=2,
    )
    request = request_of(op, op.command, env={"B": "2", "A": "1"})
    assert (request.op_id, request.timeout, request.retries, request.env) == (
        "patch@web1",
        30.0,
        2,
        (("A", "1"), ("B", "2")),
    )
    async with HostPool("ams", transport) as pool:
        result = await pool.run_op(request)
        await pool.run_op(req("web1", "ok", 9))
    assert result.ok
    assert result.task == "patch"
    assert transport.envs == [{"A": "1", "B": "2"}, None]


async def test_streaming_pull_and_iterate() -> None:
    seen: list[OpResult] = []
    pool = HostPool("dc1", ScriptedTransport(), stream=True, on_result=seen.append)
    assert await pool.post([req(h, "ok") for h in ("a", "b", "c")]) == ["t0@a:ok", "t0@b:ok", "t0@c:ok"]
    got: list[OpResult] = []
    for _ in range(20):
        got += await pool.pull(max_items=2, timeout=1.0)
        if len(got) == 3:
            break
    assert sorted(r.host for r in got) == ["a", "b", "c"]
    assert await pool.pull(timeout=0.01) == []
    pool.submit(req("d", "ok"))
    await asyncio.sleep(0.01)
    closing = asyncio.create_task(pool.close(drain=True))
    streamed = [r.host async for r in pool.results()]
    await closing
    assert streamed == ["d"]
    assert len(seen) == 4


async def test_pull_without_stream_is_refused() -> None:
    pool = HostPool("dc1", ScriptedTransport())
    with pytest.raises(ExecutionError, match="stream=True"):
        await pool.pull()
    await pool.close()


async def test_cancelling_a_caller_stops_the_command_and_frees_the_lane() -> None:
    transport = ScriptedTransport()
    pool = HostPool("dc1", transport, stream=True)
    running = asyncio.create_task(pool.run_op(req("a", "sleep:30")))
    await asyncio.sleep(0.01)
    queued = pool.submit(req("a", "ok", 1))
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert (await queued).ok
    assert transport.cancelled == ["sleep:30"]
    cancelled = (await pool.pull(timeout=1.0))[0]
    assert cancelled.error_kind is ErrorKind.CANCELLED
    assert pool.load().in_flight == 0
    await pool.close()


async def test_cancel_by_id_running_and_queued() -> None:
    transport = ScriptedTransport()
    pool = HostPool("dc1", transport)
    first = pool.submit(req("a", "sleep:30"))
    second = pool.submit(req("a", "ok", 1))
    await asyncio.sleep(0.01)
    assert pool.cancel("t1@a:ok")
    assert pool.cancel("t0@a:sleep:30")
    assert not pool.cancel("nope")
    r1, r2 = await first, await second
    assert (r1.error_kind, r1.attempts, r2.error_kind, r2.attempts) == (
        ErrorKind.CANCELLED,
        1,
        ErrorKind.CANCELLED,
        0,
    )
    assert transport.calls == [("a", "sleep:30")]
    assert not pool.cancel("t0@a:sleep:30")
    await pool.close()


async def test_cancel_while_waiting_for_a_slot() -> None:
    transport = ScriptedTransport()
    pool = HostPool("dc1", transport, max_in_flight=1)
    blocker = pool.submit(req("a", "sleep:0.05"))
    waiting = pool.submit(req("b", "ok"))
    await asyncio.sleep(0.01)
    pool.cancel("t0@b:ok")
    assert (await waiting).error_kind is ErrorKind.CANCELLED
    assert (await blocker).ok
    assert ("b", "ok") not in transport.calls
    await pool.close()


async def test_close_cancels_everything_and_refuses_new_work() -> None:
    transport = ScriptedTransport()
    pool = HostPool("dc1", factory=lambda: transport)
    futures = [pool.submit(req(h, "sleep:30", n)) for n in range(3) for h in ("a", "b")]
    await asyncio.sleep(0.01)
    await pool.close()
    results = [f.result() for f in futures]
    assert {r.error_kind for r in results} == {ErrorKind.CANCELLED}
    assert sorted(transport.cancelled) == ["sleep:30", "sleep:30"]
    assert transport.closed
    assert pool.state is PoolState.CLOSED
    assert pool.load().hosts_active == 0
    with pytest.raises(ExecutionError, match="closed"):
        pool.submit(req("a", "ok"))
    await pool.close()  # idempotent


async def test_close_of_unused_factory_pool_builds_nothing() -> None:
    built: list[ScriptedTransport] = []

    def factory() -> ScriptedTransport:
        built.append(ScriptedTransport())
        return built[-1]

    await HostPool("dc1", factory=factory).close()
    assert built == []


async def test_cancelling_a_lane_task_cancels_its_command_and_answers_the_queue() -> None:
    transport = ScriptedTransport()
    pool = HostPool("dc1", transport)
    running = pool.submit(req("a", "sleep:30"))
    queued = pool.submit(req("a", "ok", 1))
    await asyncio.sleep(0.01)
    lane = pool._counters.lanes["a"]
    lane.cancel()
    with pytest.raises(asyncio.CancelledError):
        await lane
    assert transport.cancelled == ["sleep:30"]
    assert (await running).error_kind is ErrorKind.CANCELLED
    assert (await queued).error_kind is ErrorKind.CANCELLED
    assert pool.load().in_flight == 0
    assert pool.load().hosts_active == 0
    await pool.close()


def test_constructor_checks_and_classify() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        HostPool("x")
    with pytest.raises(ValueError, match="exactly one"):
        HostPool("x", ScriptedTransport(), factory=ScriptedTransport)
    with pytest.raises(ValueError, match="max_in_flight"):
        HostPool("x", ScriptedTransport(), max_in_flight=0)
    assert classify(KeyError("k")) is ErrorKind.INTERNAL
    assert classify(ConnectTimeout("t")) is ErrorKind.CONNECT_TIMEOUT
    assert not ErrorKind.COMMAND_TIMEOUT.is_connection


async def test_local_transport_has_no_connection_count() -> None:
    pool = HostPool("local", LocalTransport())
    assert pool.load().connections_open == 0
    result = await pool.run_op(req("a", "exit 4"))
    assert result.exit_status == 4
    assert result.error_kind is ErrorKind.COMMAND_FAILED
    await pool.close()
