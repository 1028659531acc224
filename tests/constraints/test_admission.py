"""Admission: every kind of denial, FIFO without starvation, throttling, waiting on the clock."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta
from typing import Any

import pytest

from sysflow.clock import ManualClock
from sysflow.constraints import Admission, Denied, Grant, LimitKind, Limits
from sysflow.errors import ConstraintError
from tests.constraints.ops import make_op


def admission(config: dict[str, Any], ops: list[Any] | None = None) -> tuple[Admission, ManualClock]:
    clock = ManualClock()
    limits = Limits.from_ops(config, ops or []) if ops else Limits.build(config)
    return Admission(limits, clock), clock


def granted(result: Grant | Denied) -> Grant:
    assert isinstance(result, Grant), result
    return result


def denied(result: Grant | Denied) -> Denied:
    assert isinstance(result, Denied), result
    return result


def test_pool_denial_and_release() -> None:
    adm, _ = admission({"max_parallel_servers": 1})
    a, b = make_op("a"), make_op("b")
    grant = granted(adm.try_acquire(a))
    assert grant
    assert grant.host_started
    no = denied(adm.try_acquire(b))
    assert not no
    assert (no.constraint, no.kind, no.retry_at) == ("max_parallel_servers", LimitKind.POOL, None)
    assert "1 of 1 in use" in no.reason
    assert adm.in_use("max_parallel_servers") == 1
    adm.release(grant)
    assert adm.in_use("max_parallel_servers") == 0
    granted(adm.try_acquire(b))
    with pytest.raises(ConstraintError, match="not held"):
        adm.release(grant)


def test_bandwidth_demands() -> None:
    config = {"pools": [{"name": "bw", "capacity": 100, "default_demand": 30}]}
    adm, _ = admission(config)
    big = make_op("big", demands=(("bw", 80.0),))
    small = make_op("small")
    g = granted(adm.try_acquire(big))
    assert "needs 30" in denied(adm.try_acquire(small)).reason
    adm.release(g)
    granted(adm.try_acquire(small))
    granted(adm.try_acquire(make_op("other")))
    assert adm.in_use("bw") == 60


def test_rate_limit_retry_at() -> None:
    adm, clock = admission({"rate_limits": [{"name": "mirror", "max_starts": 2, "per": "10s"}]})
    t0 = clock.now()
    granted(adm.try_acquire(make_op("a")))
    clock.advance(3)
    granted(adm.try_acquire(make_op("b")))
    no = denied(adm.try_acquire(make_op("c")))
    assert (no.kind, no.constraint, no.retry_at) == (LimitKind.RATE, "mirror", t0 + timedelta(seconds=10))
    assert adm.in_use("mirror") == 2
    clock.advance(7)
    granted(adm.try_acquire(make_op("c")))


def test_spacing_between_host_starts_only() -> None:
    adm, clock = admission({"delay_between_servers": "2s"})
    first = make_op("a")
    granted(adm.try_acquire(first))
    no = denied(adm.try_acquire(make_op("b")))
    assert (no.kind, no.retry_at) == (LimitKind.SPACING, clock.now() + timedelta(seconds=2))
    # the same host's next operation is not a host start
    granted(adm.try_acquire(make_op("a", "reboot")))
    granted(adm.try_acquire(make_op("b"), host_starting=False))
    clock.advance(2)
    granted(adm.try_acquire(make_op("c")))


def test_budget_held_until_host_done() -> None:
    adm, _ = admission({"disruption_budget": {"max_unavailable": 1}})
    g = granted(adm.try_acquire(make_op("a")))
    adm.release(g)
    assert adm.in_maintenance() == ["a"]
    assert adm.in_use("disruption_budget[group=web]") == 1
    no = denied(adm.try_acquire(make_op("b")))
    assert (no.kind, no.constraint) == (LimitKind.BUDGET, "disruption_budget[group=web]")
    second = granted(adm.try_acquire(make_op("a", "reboot")))  # a is in maintenance already
    assert not second.host_started
    adm.release(second)
    adm.host_done("a")
    granted(adm.try_acquire(make_op("b")))
    assert adm.in_maintenance() == ["b"]


def test_throttle_while_running() -> None:
    adm, _ = admission({"max_parallel_servers": 3})
    grants = [granted(adm.try_acquire(make_op(h))) for h in "abc"]
    adm.set_capacity("max_parallel_servers", 1)
    adm.release(grants[0])
    denied(adm.try_acquire(make_op("d")))  # 2 still in use, capacity 1
    adm.release(grants[1])
    adm.release(grants[2])
    granted(adm.try_acquire(make_op("d")))
    adm.set_capacity("max_parallel_servers", 2)
    granted(adm.try_acquire(make_op("e")))


async def test_acquire_waits_for_release_in_fifo_order() -> None:
    adm, _ = admission({"max_parallel_servers": 1})
    holder = granted(adm.try_acquire(make_op("first")))
    order: list[str] = []

    async def worker(host: str) -> None:
        grant = await adm.acquire(make_op(host))
        order.append(host)
        adm.release(grant)

    tasks = [asyncio.create_task(worker(h)) for h in ("w1", "w2", "w3")]
    await asyncio.sleep(0)
    assert adm.waiting == 3
    no = denied(adm.try_acquire(make_op("late")))
    assert (no.constraint, no.kind) == ("max_parallel_servers", LimitKind.POOL)
    adm.release(holder)
    await asyncio.gather(*tasks)
    assert order == ["w1", "w2", "w3"]
    assert adm.waiting == 0


async def test_earlier_waiter_is_not_starved_but_disjoint_requests_pass() -> None:
    config = {"max_parallel_per_group": 1, "pools": [{"name": "big", "capacity": 2, "default_demand": 0}]}
    adm, _ = admission(config)
    wide = make_op("w1", demands=(("big", 2.0),))
    narrow = make_op("w2", demands=(("big", 1.0),), groups=("db",))
    held = granted(adm.try_acquire(narrow))
    waiter = asyncio.create_task(adm.acquire(wide))
    await asyncio.sleep(0)
    # another small request fits the pool but would starve the wide one: it waits its turn
    other = denied(adm.try_acquire(make_op("w3", demands=(("big", 1.0),), groups=("cache",))))
    assert "earlier request is waiting for 'big'" in other.reason
    # a request on other instances passes
    granted(adm.try_acquire(make_op("x", groups=("cache",))))
    adm.release(held)
    grant = await waiter
    assert grant.host == "w1"


async def test_acquire_sleeps_on_the_clock_for_rates() -> None:
    adm, clock = admission({"rate_limits": [{"name": "r", "max_starts": 1, "per": "1m"}]})
    start = clock.now()
    g1 = await adm.acquire(make_op("a"))
    g2 = await adm.acquire(make_op("b"))
    assert g1.at == start
    assert g2.at == start + timedelta(minutes=1)


async def test_capacity_raise_wakes_waiters_and_cancel_unblocks() -> None:
    adm, _ = admission({"max_parallel_servers": 1})
    granted(adm.try_acquire(make_op("a")))
    first = asyncio.create_task(adm.acquire(make_op("b")))
    second = asyncio.create_task(adm.acquire(make_op("c")))
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    adm.set_capacity("max_parallel_servers", 2)
    grant = await asyncio.wait_for(second, timeout=5)
    assert grant.host == "c"


async def test_many_concurrent_tasks_never_exceed() -> None:
    config = {
        "max_parallel_servers": 4,
        "max_parallel_per_group": 2,
        "delay_between_servers": "1s",
        "rate_limits": [{"name": "r", "max_starts": 3, "per": "10s"}],
        "disruption_budget": {"max_unavailable": 2},
    }
    groups = ("web", "db", "cache")
    ops = [[make_op(f"h{i}", t, groups=(groups[i % 3],)) for t in ("a", "b")] for i in range(30)]
    adm, clock = admission(config, [op for chain in ops for op in chain])
    running: dict[str, int] = {}
    hosts: dict[str, set[str]] = {g: set() for g in groups}
    starts: list[float] = []
    host_starts: list[float] = []
    peak = 0

    async def host(chain: list[Any]) -> None:
        nonlocal peak
        for k, op in enumerate(chain):
            grant = await adm.acquire(op)
            now = clock.monotonic()
            starts.append(now)
            if k == 0:
                host_starts.append(now)
                hosts[op.group].add(op.host)
            running[op.group] = running.get(op.group, 0) + 1
            peak = max(peak, sum(running.values()))
            assert sum(running.values()) <= 4
            assert running[op.group] <= 2
            assert len(hosts[op.group]) <= 2
            assert sum(1 for s in starts if s > now - 10) <= 3
            await clock.sleep(0.5)
            running[op.group] -= 1
            adm.release(grant)
        hosts[chain[0].group].discard(chain[0].host)
        adm.host_done(chain[0].host)

    await asyncio.wait_for(asyncio.gather(*(host(c) for c in ops)), timeout=10)
    assert len(starts) == 60
    assert all(b - a >= 1 - 1e-9 for a, b in itertools.pairwise(host_starts))
    assert peak >= 1


def test_threads_never_exceed() -> None:
    import threading

    adm, _ = admission(
        {"max_parallel_servers": 3, "pools": [{"name": "bw", "capacity": 5, "default_demand": 2}]}
    )
    lock = threading.Lock()
    in_flight = [0]
    violations: list[int] = []

    def worker(n: int) -> None:
        for i in range(300):
            result = adm.try_acquire(make_op(f"t{n}-{i}"), host_starting=False)
            if isinstance(result, Grant):
                with lock:
                    in_flight[0] += 1
                    if in_flight[0] > 2:  # bw 5 / demand 2 allows 2, below the 3 servers
                        violations.append(in_flight[0])
                with lock:
                    in_flight[0] -= 1
                adm.release(result)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert violations == []
    assert adm.in_use("bw") == 0


async def test_release_from_another_thread_wakes_the_loop() -> None:
    adm, _ = admission({"max_parallel_servers": 1})
    holder = granted(adm.try_acquire(make_op("a")))
    waiter = asyncio.create_task(adm.acquire(make_op("b")))
    await asyncio.sleep(0)
    await asyncio.to_thread(adm.release, holder)
    grant = await asyncio.wait_for(waiter, timeout=5)
    assert grant.host == "b"


def test_rate_paused_has_no_retry_time() -> None:
    adm, _ = admission({"rate_limits": [{"name": "r", "max_starts": 2, "per": "1m"}]})
    adm.set_capacity("r", 0)
    no = denied(adm.try_acquire(make_op("a")))
    assert (no.constraint, no.retry_at) == ("r", None)
    with pytest.raises(ConstraintError, match="no rate limit 'nope'"):
        adm.limits.period("nope")
    assert adm.limits.capacities["r"] == 0


async def test_a_release_hands_the_slot_to_the_oldest_waiter_before_anyone_else_can_take_it() -> None:
    adm, _ = admission({"max_parallel_servers": 1})
    holder = granted(adm.try_acquire(make_op("first")))
    waiter = asyncio.create_task(adm.acquire(make_op("w1")))
    await asyncio.sleep(0)
    adm.release(holder)
    # the waiter has not run yet, but the slot is already its own: a newcomer is refused
    assert adm.in_use("max_parallel_servers") == 1
    assert adm.waiting == 0
    denied(adm.try_acquire(make_op("newcomer")))
    assert (await waiter).host == "w1"


async def test_a_waiter_cancelled_after_its_grant_was_handed_over_gives_it_back() -> None:
    adm, _ = admission({"max_parallel_servers": 1})
    holder = granted(adm.try_acquire(make_op("first")))
    waiter = asyncio.create_task(adm.acquire(make_op("w1")))
    behind = asyncio.create_task(adm.acquire(make_op("w2")))
    await asyncio.sleep(0)
    adm.release(holder)  # handed to w1, whose task has not resumed yet
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    # w1's slot went back and on to the next in line; nothing leaked
    grant = await asyncio.wait_for(behind, timeout=5)
    assert grant.host == "w2"
    adm.release(grant)
    assert adm.in_use("max_parallel_servers") == 0


async def test_a_grant_handed_across_threads_to_a_cancelled_waiter_goes_back() -> None:
    adm, _ = admission({"max_parallel_servers": 1})
    holder = granted(adm.try_acquire(make_op("first")))
    waiter = asyncio.create_task(adm.acquire(make_op("w1")))
    await asyncio.sleep(0)
    waiter.cancel()  # cancelled before the release on another thread hands it the slot
    await asyncio.to_thread(adm.release, holder)
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await asyncio.sleep(0)  # a hand-off scheduled on the loop runs now
    assert adm.in_use("max_parallel_servers") == 0
    granted(adm.try_acquire(make_op("later")))
