"""Limits: instances per scope, per-operation lookups, budgets, throttling, errors."""

from __future__ import annotations

from typing import Any

import pytest

from sysflow.constraints import BudgetInstance, LimitKind, Limits, MinSpacing, PoolInstance, RateInstance
from sysflow.errors import ConstraintError
from tests.constraints.ops import make_op

OPS = [
    make_op("w1", groups=("web", "frontend"), datacenter="ams"),
    make_op("w2", groups=("web",), datacenter="nyc", demands=(("bandwidth", 50.0),)),
    make_op("d1", groups=("db",), datacenter="ams", segment="s1"),
    make_op("d1", "reboot", groups=("db",), datacenter="ams", segment="s1"),
    make_op("x1", groups=("db",), datacenter=None),
]

CONFIG: dict[str, Any] = {
    "max_parallel_servers": 10,
    "max_parallel_per_group": 5,
    "max_parallel_per_datacenter": 3,
    "delay_between_servers": "2s",
    "pools": [
        {"name": "bandwidth", "capacity": 100, "unit": "MB/s", "default_demand": 10},
        {"name": "web_pool", "capacity": 2, "scope": "group", "groups": ["web"], "default_demand": 1},
        {"name": "seg", "capacity": 1, "scope": "segment", "default_demand": 1},
        {"name": "per_task", "capacity": 4, "scope": "task", "default_demand": 1},
    ],
    "rate_limits": [
        {"name": "mirror", "max_starts": 5, "per": "1m", "tasks": ["patch"]},
        {"name": "jump", "max_starts": 2, "per": "10s", "scope": "datacenter"},
    ],
    "disruption_budget": {"max_unavailable": "50%"},
}


@pytest.fixture
def limits() -> Limits:
    return Limits.from_ops(CONFIG, OPS)


def test_usage_per_scope(limits: Limits) -> None:
    assert limits.usage(OPS[0]) == (
        ("max_parallel_servers", 1.0),
        ("max_parallel_per_group[group=web]", 1.0),
        ("max_parallel_per_datacenter[datacenter=ams]", 1.0),
        ("bandwidth", 10.0),
        ("web_pool[group=web]", 1.0),
        ("per_task[task=patch]", 1.0),
    )
    assert ("bandwidth", 50.0) in limits.usage(OPS[1])
    assert ("seg[segment=s1]", 1.0) in limits.usage(OPS[2])
    assert ("per_task[task=reboot]", 1.0) in limits.usage(OPS[3])
    keys = [k for k, _ in limits.usage(OPS[4])]
    assert not any("datacenter" in k for k in keys)  # no datacenter: no datacenter instance
    assert not any(k.startswith("web_pool") for k in keys)  # not a web host


def test_rates_budgets_spacing(limits: Limits) -> None:
    assert limits.rate_keys(OPS[0]) == ("mirror", "jump[datacenter=ams]")
    assert limits.rate_keys(OPS[3]) == ("jump[datacenter=ams]",)  # reboot is not a mirror task
    assert limits.rate_keys(OPS[4]) == ("mirror",)
    assert limits.budget_keys(OPS[0]) == ("disruption_budget[group=web]", "disruption_budget[group=frontend]")
    assert limits.spacing == MinSpacing(2.0)
    web = limits.instance("disruption_budget[group=web]")
    assert web == BudgetInstance("disruption_budget[group=web]", "web", 1, 2)  # 50% of 2 hosts
    assert limits.capacity("disruption_budget[group=db]") == 1  # 50% of 2 hosts (d1, x1)


def test_instances_listing(limits: Limits) -> None:
    kinds = {i.kind for i in limits.instances}
    assert kinds == {LimitKind.POOL, LimitKind.RATE, LimitKind.BUDGET, LimitKind.SPACING}
    assert [p.key for p in limits.pools()][:2] == ["bandwidth", "max_parallel_per_datacenter[datacenter=ams]"]
    assert all(isinstance(r, RateInstance) for r in limits.rates())
    assert {b.group for b in limits.budgets()} == {"web", "frontend", "db"}
    pool = limits.instance("web_pool[group=web]")
    assert pool == PoolInstance("web_pool[group=web]", "web_pool", 2.0, "group", "web", None)


def test_percentages_round_down_with_minimum_one() -> None:
    ops = [make_op(f"h{i}") for i in range(19)]
    assert (
        Limits.from_ops({"disruption_budget": {"max_unavailable": "10%"}}, ops).capacity(
            "disruption_budget[group=web]"
        )
        == 1
    )
    sized = Limits.from_ops({"disruption_budget": {"max_unavailable": "10%"}}, ops, group_sizes={"web": 40})
    assert sized.capacity("disruption_budget[group=web]") == 4
    fixed = Limits.from_ops({"disruption_budget": {"max_unavailable": 3, "groups": ["web"]}}, ops)
    assert fixed.capacity("disruption_budget[group=web]") == 3
    assert fixed.budget_keys(make_op("z", groups=("db",))) == ()


def test_lazy_instances_and_unknown_size() -> None:
    limits = Limits.build({"max_parallel_per_group": 2, "disruption_budget": {"max_unavailable": 1}})
    assert limits.usage(make_op("a", groups=("new",))) == (("max_parallel_per_group[group=new]", 1.0),)
    assert limits.budget_keys(make_op("a", groups=("new",))) == ("disruption_budget[group=new]",)
    pct = Limits.build({"disruption_budget": {"max_unavailable": "10%"}}, location="wf.yaml")
    with pytest.raises(ConstraintError, match="group size unknown"):
        pct.budget_keys(make_op("a"))


def test_set_capacity(limits: Limits) -> None:
    limits.set_capacity("max_parallel_servers", 4)
    assert limits.capacity("max_parallel_servers") == 4.0
    limits.set_capacity("mirror", 1)
    assert limits.capacity("mirror") == 1
    limits.set_capacity("disruption_budget[group=web]", 2)
    assert limits.capacity("disruption_budget[group=web]") == 2
    limits.set_capacity("delay_between_servers", 0.5)
    assert limits.spacing == MinSpacing(0.5)
    with pytest.raises(ConstraintError, match="invalid capacity"):
        limits.set_capacity("mirror", 1.5)
    with pytest.raises(ConstraintError, match="invalid capacity"):
        limits.set_capacity("bandwidth", -1)
    with pytest.raises(ConstraintError, match="no constraint instance 'nope'"):
        limits.set_capacity("nope", 1)


def test_brief_set_parallelization() -> None:
    limits = Limits.build(
        {"max_parallel_servers": 10, "max_parallel_per_group": 5, "delay_between_servers": "2s"}
    )
    op = make_op("h", groups=("web",))
    assert limits.usage(op) == (("max_parallel_servers", 1.0), ("max_parallel_per_group[group=web]", 1.0))
    assert limits.spacing is not None
    assert limits.spacing.seconds == 2.0
    assert limits.spacing.capacity == 2.0


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        (
            {"pools": [{"name": "p", "capacity": 1, "scope": "group", "groups": ["nope"]}]},
            "unknown group 'nope'",
        ),
        ({"disruption_budget": {"max_unavailable": 1, "groups": ["ghost"]}}, "unknown group 'ghost'"),
        (
            {"rate_limits": [{"name": "r", "max_starts": 1, "per": 1, "tasks": ["nope"]}]},
            "unknown task 'nope'",
        ),
        (
            {
                "pools": [{"name": "p", "capacity": 1}],
                "rate_limits": [{"name": "p", "max_starts": 1, "per": 1}],
            },
            "duplicate pool/rate-limit name 'p'",
        ),
        ({"pools": [{"name": "max_parallel_servers", "capacity": 1}]}, "reserved"),
        ({"pools": [{"name": "p", "capacity": 0}]}, "greater than 0"),
        ({"rate_limits": [{"name": "r", "max_starts": 1, "per": 0}]}, "must be positive"),
        ({"disruption_budget": {"max_unavailable": "120%"}}, "0-100%"),
        ({"disruption_budget": {"max_unavailable": "lots"}}, "not a count"),
        ({"disruption_budget": {"max_unavailable": "x%"}}, "not a percentage"),
        ({"disruption_budget": {"max_unavailable": -1}}, ">= 0"),
    ],
)
def test_malformed(config: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConstraintError, match=r"wf\.yaml") as info:
        Limits.build(config, known_groups={"web", "db"}, known_tasks={"patch"}, location="wf.yaml")
    assert needle in str(info.value)


def test_counts_as_text() -> None:
    limits = Limits.from_ops({"disruption_budget": {"max_unavailable": "2"}}, [make_op("a")])
    assert limits.capacity("disruption_budget[group=web]") == 2
