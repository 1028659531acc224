"""Virtual time: sleeps and timeouts run instantly, at exact virtual instants."""

from __future__ import annotations

import asyncio
import socket
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from sysflow.clock import Clock
from sysflow.sim.loop import (
    DEFAULT_START,
    VirtualClock,
    VirtualDeadlock,
    VirtualTimeLoop,
    VirtualTimeout,
    current_virtual_clock,
    run_virtual,
)

FOUR_HOURS = 4 * 3600.0


async def test_four_virtual_hours_pass_at_once(virtual_clock: VirtualClock) -> None:
    await asyncio.sleep(FOUR_HOURS)
    assert asyncio.get_running_loop().time() == FOUR_HOURS
    assert virtual_clock.monotonic() == FOUR_HOURS
    assert virtual_clock.now() == DEFAULT_START + timedelta(hours=4)


async def test_timeout_fires_at_the_right_instant(virtual_clock: VirtualClock) -> None:
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(30):
            await asyncio.sleep(3600)
    assert virtual_clock.monotonic() == 30.0


async def test_wait_for_fires_at_the_right_instant(virtual_clock: VirtualClock) -> None:
    await asyncio.sleep(0.25)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.Event().wait(), 12.5)
    assert virtual_clock.monotonic() == 12.75


async def test_concurrent_sleepers_wake_in_order_at_their_instants(virtual_clock: VirtualClock) -> None:
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await asyncio.sleep(seconds)
        woke.append((name, virtual_clock.monotonic()))

    async with asyncio.TaskGroup() as tg:
        for name, seconds in (("c", 300.0), ("a", 1.5), ("b", 60.0)):
            tg.create_task(sleeper(name, seconds))
    assert woke == [("a", 1.5), ("b", 60.0), ("c", 300.0)]


async def test_jumps_past_the_24h_select_cap(virtual_clock: VirtualClock) -> None:
    await asyncio.sleep(3 * 86400.0)
    assert virtual_clock.monotonic() == 3 * 86400.0


async def test_clock_satisfies_the_protocol(virtual_clock: VirtualClock) -> None:
    assert isinstance(virtual_clock, Clock)
    await virtual_clock.sleep(-5)  # negative sleeps are no-ops
    await virtual_clock.sleep(90)
    assert virtual_clock.now() == virtual_clock.at(90)
    assert virtual_clock.elapsed(virtual_clock.now()) == 90
    assert virtual_clock.start == DEFAULT_START
    assert virtual_clock.loop is asyncio.get_running_loop()


async def test_real_subprocess_still_works(virtual_clock: VirtualClock) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "print('hi')", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    assert out == b"hi\n"
    assert proc.returncode == 0


async def test_real_socket_io_without_competing_timer() -> None:
    left, right = socket.socketpair()
    with left, right:
        left.setblocking(False)
        right.setblocking(False)
        loop = asyncio.get_running_loop()
        loop.call_soon(right.send, b"ping")
        assert await loop.sock_recv(left, 4) == b"ping"


def test_autojump_threshold_gives_real_io_a_grace_period() -> None:
    async def main() -> tuple[bytes, float]:
        loop = asyncio.get_running_loop()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "print('late')", stdout=asyncio.subprocess.PIPE
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 3600)
        return out, loop.time()

    out, _now = run_virtual(main(), autojump_threshold=30.0)
    assert out == b"late\n"


def test_run_virtual_returns_the_result_and_starts_where_told() -> None:
    start = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)

    async def main() -> datetime:
        await asyncio.sleep(7200)
        return current_virtual_clock().now()

    assert run_virtual(main(), start=start) == start + timedelta(hours=2)


def test_advance_moves_time_by_hand() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualTimeLoop)
        fired: list[float] = []
        loop.call_later(10, lambda: fired.append(loop.time()))
        loop.advance(20)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        with pytest.raises(ValueError, match="backwards"):
            loop.advance(-1)
        return fired[0]

    assert run_virtual(main()) == 20.0


def test_virtual_clock_with_its_own_start() -> None:
    loop = VirtualTimeLoop(datetime(2026, 3, 1, 12, 0))
    try:
        clock = VirtualClock(loop, start=datetime(2026, 3, 1, 13, 0, tzinfo=UTC))
        assert clock.now() == datetime(2026, 3, 1, 13, 0, tzinfo=UTC)
        assert loop.clock.now() == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    finally:
        loop.close()


def test_negative_threshold_is_refused() -> None:
    with pytest.raises(ValueError, match="autojump_threshold"):
        VirtualTimeLoop(autojump_threshold=-1)


def test_current_virtual_clock_needs_a_virtual_loop() -> None:
    async def main() -> None:
        current_virtual_clock()

    with pytest.raises(RuntimeError, match="not a VirtualTimeLoop"):
        asyncio.run(main())


def test_without_threshold_a_timer_beats_slow_real_io() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        proc = await asyncio.create_subprocess_exec("sleep", "5")
        try:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(proc.wait(), 3600)
            return loop.time()
        finally:
            proc.kill()
            await proc.wait()

    assert run_virtual(main()) == 3600.0


def test_a_stuck_simulation_fails_clearly() -> None:
    async def main() -> None:
        await asyncio.sleep(60)
        await asyncio.Event().wait()

    with pytest.raises(VirtualDeadlock, match="cannot progress"):
        run_virtual(main(), stall_limit=0.01)


def test_a_thread_may_wake_an_idle_loop() -> None:
    async def main() -> int:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, sum, range(1000))

    assert run_virtual(main(), stall_limit=30) == 499500


async def test_virtual_loop_fixture(virtual_loop: VirtualTimeLoop) -> None:
    virtual_loop.advance(5)
    assert virtual_loop.time() == 5


async def test_sleeps_jump_while_real_sockets_are_registered(virtual_clock: VirtualClock) -> None:
    loop = asyncio.get_running_loop()
    left, right = socket.socketpair()
    with left, right:
        wrote: list[bool] = []

        def writable() -> None:
            wrote.append(True)
            loop.remove_writer(left)

        loop.add_reader(left, lambda: None)
        loop.add_writer(left, writable)  # same fd: the selector key is modified
        await asyncio.sleep(100)
        loop.remove_reader(left)
    assert wrote == [True]
    assert virtual_clock.monotonic() == 100


async def test_sleep_until_an_exact_instant(virtual_clock: VirtualClock) -> None:
    await virtual_clock.sleep(1.4788307136263938)
    await virtual_clock.sleep_until(4098.478830713626)
    assert virtual_clock.monotonic() == 4098.478830713626
    task = asyncio.create_task(virtual_clock.sleep_until(5000))
    await asyncio.sleep(1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(10_000)  # the cancelled wake-up never fires


def test_a_spinning_simulation_stops_at_its_wall_limit_even_if_it_swallows_errors() -> None:
    """pytest-timeout raises into the running task; code that survives that would spin on. The loop's
    own wall limit ends ``run_until_complete`` whatever the tasks catch, and, after a grace, the
    runner's cleanup too (this task even swallows its cancellation)."""

    async def spins_forever() -> None:
        while True:
            try:
                await asyncio.sleep(0)
            except BaseException:
                continue

    started = time.monotonic()
    with pytest.raises(VirtualTimeout, match="wall-clock limit"):
        run_virtual(spins_forever(), wall_limit=0.3)
    assert time.monotonic() - started < 5.0
