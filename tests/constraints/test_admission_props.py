"""Property: random acquire/release sequences never exceed any pool, rate, spacing or budget.

The test keeps its own books (operations in flight per group, bandwidth, hosts in maintenance,
start times) from what it knows of each operation, independent of ``Limits``' lookups.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sysflow.clock import ManualClock
from sysflow.constraints import Admission, Grant, Limits
from sysflow.planner.graph import Operation
from tests.constraints.ops import make_op

GROUPS = ("web", "db", "cache")
HOSTS = [f"h{i}" for i in range(8)]
TASKS = ("a", "b")
CONFIG: dict[str, Any] = {
    "max_parallel_servers": 4,
    "max_parallel_per_group": 2,
    "delay_between_servers": "3s",
    "pools": [{"name": "bw", "capacity": 100, "default_demand": 20}],
    "rate_limits": [{"name": "mirror", "max_starts": 3, "per": "20s", "tasks": ["a"]}],
    "disruption_budget": {"max_unavailable": "50%"},
}


def op_of(h: int, t: int) -> Operation:
    demand = (("bw", 60.0),) if (h + t) % 3 == 0 else ()
    return make_op(HOSTS[h], TASKS[t], groups=(GROUPS[h % 3],), demands=demand)


def bandwidth(op: Operation) -> float:
    return 60.0 if op.demands else 20.0


@dataclass
class Books:
    """What the test itself believes is in use."""

    caps: dict[str, float] = field(default_factory=lambda: {"servers": 4, "group": 2, "bw": 100, "mirror": 3})
    running: list[Operation] = field(default_factory=list)
    maintenance: set[str] = field(default_factory=set)
    mirror_starts: list[float] = field(default_factory=list)
    last_host_start: float | None = None

    def check_grant(self, op: Operation, now: float) -> None:
        new_host = op.host not in self.maintenance
        self.running.append(op)
        self.maintenance.add(op.host)
        assert len(self.running) <= self.caps["servers"]
        assert sum(1 for o in self.running if o.group == op.group) <= self.caps["group"]
        assert sum(bandwidth(o) for o in self.running) <= self.caps["bw"] + 1e-9
        in_group = sum(1 for h in self.maintenance if GROUPS[HOSTS.index(h) % 3] == op.group)
        group_size = sum(1 for i in range(len(HOSTS)) if GROUPS[i % 3] == op.group)
        assert in_group <= max(1, group_size // 2)
        if op.task == "a":
            self.mirror_starts.append(now)
            assert sum(1 for s in self.mirror_starts if s > now - 20) <= self.caps["mirror"]
        if new_host:
            assert self.last_host_start is None or now - self.last_host_start >= 3 - 1e-9
            self.last_host_start = now


ALL_OPS = [op_of(h, t) for h in range(len(HOSTS)) for t in range(2)]

action = st.one_of(
    st.tuples(st.just("acquire"), st.integers(0, len(HOSTS) - 1), st.integers(0, 1)),
    st.tuples(st.just("release"), st.integers(0, 20), st.just(0)),
    st.tuples(st.just("done"), st.integers(0, len(HOSTS) - 1), st.just(0)),
    st.tuples(st.just("advance"), st.integers(0, 10), st.just(0)),
    st.tuples(st.just("throttle"), st.integers(1, 5), st.just(0)),
)


@settings(max_examples=60, deadline=None)
@given(actions=st.lists(action, max_size=80))
def test_random_sequences_never_exceed(actions: list[tuple[str, int, int]]) -> None:
    clock = ManualClock()
    adm = Admission(Limits.from_ops(CONFIG, ALL_OPS), clock)
    books = Books()
    grants: list[tuple[Grant, Operation]] = []
    for kind, x, y in actions:
        if kind == "acquire":
            op = op_of(x, y)
            result = adm.try_acquire(op)
            if isinstance(result, Grant):
                books.check_grant(op, clock.monotonic())
                grants.append((result, op))
            else:
                assert result.reason
                assert result.retry_at is None or result.retry_at > clock.now()
        elif kind == "release" and grants:
            grant, op = grants.pop(x % len(grants))
            adm.release(grant)
            books.running.remove(op)
        elif kind == "done" and not any(o.host == HOSTS[x] for _, o in grants):
            adm.host_done(HOSTS[x])
            books.maintenance.discard(HOSTS[x])
        elif kind == "advance":
            clock.advance(x)
        elif kind == "throttle":
            adm.set_capacity("max_parallel_servers", x)
            books.caps["servers"] = x


@settings(max_examples=15, deadline=None)
@given(
    chains=st.lists(st.integers(0, len(HOSTS) - 1), min_size=1, max_size=8, unique=True),
    sleeps=st.lists(st.sampled_from([0.0, 0.5, 1.0, 4.0]), min_size=1, max_size=5),
)
def test_concurrent_waiters_never_exceed(chains: list[int], sleeps: list[float]) -> None:
    async def scenario() -> int:
        clock = ManualClock()
        adm = Admission(Limits.from_ops(CONFIG, ALL_OPS), clock)
        books = Books()
        done = 0

        async def host(h: int) -> None:
            nonlocal done
            for t in range(2):
                op = op_of(h, t)
                grant = await adm.acquire(op)
                books.check_grant(op, clock.monotonic())
                await clock.sleep(sleeps[(h + t) % len(sleeps)])
                books.running.remove(op)
                adm.release(grant)
                done += 1
            books.maintenance.discard(HOSTS[h])
            adm.host_done(HOSTS[h])

        await asyncio.wait_for(asyncio.gather(*(host(h) for h in chains)), timeout=10)
        return done

    assert asyncio.run(scenario()) == 2 * len(chains)
