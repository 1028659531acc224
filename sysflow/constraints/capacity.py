"""Capacity constraints as concrete instances: pools, rate limits, spacing, disruption budgets.

:class:`Limits` turns a ``ParallelismConfig`` into instances with keys and capacities, and tells
for any operation which instances it uses and how much. It is the ONE definition shared by the
planner (which encodes each pool instance as a CP-SAT cumulative, each budget instance as a
cumulative over host intervals, rate limits and spacing over start times) and by runtime
admission (:mod:`sysflow.constraints.admission`).

Instances and keys:

* ``max_parallel_servers`` → pool ``"max_parallel_servers"`` (demand 1 per operation);
* ``max_parallel_per_group`` → ``"max_parallel_per_group[group=web]"`` per primary group (``op.group``);
* ``max_parallel_per_datacenter`` → ``"max_parallel_per_datacenter[datacenter=dc1]"``;
* a pool ``p`` with scope ``global`` → ``"p"``; scope ``group``/``datacenter``/``segment``/``task``
  → ``"p[group=web]"`` etc., one per value. An operation's demand is what its task names
  (``op.demands``) or else the pool's ``default_demand``; zero demand means it does not use it.
  A pool restricted to ``groups`` applies to hosts in any of them (scope ``group`` then keys by
  the first of the host's groups that is listed). An operation without a datacenter (segment)
  uses no datacenter- (segment-) scoped instance;
* rate limits likewise (``"mirror[datacenter=dc1]"``), counting operation starts;
* ``delay_between_servers`` → :class:`MinSpacing` between consecutive *host* starts (global);
* the disruption budget → ``"disruption_budget[group=web]"`` per group of the host (every group,
  not only the primary one): hosts in maintenance from the start of their first operation to the
  end of their last; ``"10%"`` of a group's hosts rounds down, minimum 1.

An operation is identified by ``(host, task)``; lookups are cached on it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Protocol

from pydantic import ValidationError

from sysflow.constraints.specs import problems_of
from sysflow.errors import ConstraintError, Problem
from sysflow.model.parallelism import (
    DisruptionBudgetSpec,
    ParallelismConfig,
    PoolSpec,
    RateLimitSpec,
    Scope,
    resolve_count,
)

__all__ = [
    "BUDGET",
    "SPACING",
    "BudgetInstance",
    "LimitKind",
    "Limits",
    "MinSpacing",
    "OpLike",
    "OpNeeds",
    "PoolInstance",
    "RateInstance",
    "instance_key",
]

BUDGET = "disruption_budget"
SPACING = "delay_between_servers"
_BUILTIN_POOLS: tuple[tuple[str, Scope], ...] = (
    ("max_parallel_servers", "global"),
    ("max_parallel_per_group", "group"),
    ("max_parallel_per_datacenter", "datacenter"),
)


class OpLike(Protocol):
    """What constraints read of an operation (``sysflow.planner.graph.Operation`` fits)."""

    @property
    def host(self) -> str: ...
    @property
    def task(self) -> str: ...
    @property
    def group(self) -> str: ...
    @property
    def groups(self) -> tuple[str, ...]: ...
    @property
    def datacenter(self) -> str | None: ...
    @property
    def segment(self) -> str | None: ...
    @property
    def demands(self) -> tuple[tuple[str, float], ...]: ...


class LimitKind(StrEnum):
    POOL = "pool"
    RATE = "rate"
    SPACING = "spacing"
    BUDGET = "budget"


def instance_key(name: str, scope: Scope, value: str | None) -> str:
    """``name`` for a global instance, ``name[scope=value]`` otherwise."""
    return name if scope == "global" else f"{name}[{scope}={value}]"


@dataclass(frozen=True, slots=True)
class PoolInstance:
    """One pool instance: at most ``capacity`` units in use at once."""

    key: str
    name: str
    capacity: float
    scope: Scope = "global"
    scope_value: str | None = None
    unit: str | None = None
    kind: LimitKind = LimitKind.POOL


@dataclass(frozen=True, slots=True)
class RateInstance:
    """At most ``capacity`` starts in any ``per`` seconds."""

    key: str
    name: str
    capacity: int
    per: float
    scope: Scope = "global"
    scope_value: str | None = None
    kind: LimitKind = LimitKind.RATE


@dataclass(frozen=True, slots=True)
class BudgetInstance:
    """At most ``capacity`` of the ``hosts`` hosts of ``group`` in maintenance at once."""

    key: str
    group: str
    capacity: int
    hosts: int
    kind: LimitKind = LimitKind.BUDGET


@dataclass(frozen=True, slots=True)
class MinSpacing:
    """Consecutive host starts at least ``seconds`` apart (global)."""

    seconds: float
    key: str = SPACING
    kind: LimitKind = LimitKind.SPACING

    @property
    def capacity(self) -> float:
        return self.seconds


Instance = PoolInstance | RateInstance | BudgetInstance | MinSpacing


@dataclass(frozen=True, slots=True)
class OpNeeds:
    """Everything one operation uses: pool demands, rate limits counting its start, budgets.

    Also the instance keys it queues on, precomputed: admission asks for them at every decision.
    """

    usage: tuple[tuple[str, float], ...]
    rates: tuple[str, ...]
    budgets: tuple[str, ...]
    running_keys: frozenset[str] = field(init=False)  # its host already in maintenance
    new_host_keys: frozenset[str] = field(init=False)  # its host not yet in maintenance

    def __post_init__(self) -> None:
        running = frozenset(k for k, _ in self.usage) | frozenset(self.rates)
        object.__setattr__(self, "running_keys", running)
        object.__setattr__(self, "new_host_keys", running | frozenset(self.budgets))


def _scope_value(op: OpLike, scope: Scope, groups: list[str] | None) -> str | None:
    if scope == "group":
        if groups is None:
            return op.group
        return next((g for g in op.groups if g in groups), None)
    if scope == "datacenter":
        return op.datacenter
    if scope == "segment":
        return op.segment
    return op.task  # "task"; "global" never asks


class Limits:
    """Concrete constraint instances of a run and per-operation lookups. Capacities may change."""

    def __init__(
        self,
        config: ParallelismConfig,
        *,
        group_sizes: Mapping[str, int] | None = None,
        known_groups: Collection[str] | None = None,
        known_tasks: Collection[str] | None = None,
        location: str | None = None,
    ) -> None:
        self.config = config
        self.location = location
        self._sizes = dict(group_sizes or {})
        known = set(known_groups) if known_groups is not None else (set(self._sizes) or None)
        _validate(config, known, known_tasks, location)
        self._pools = {p.name: p for p in config.pools}
        self._instances: dict[str, Instance] = {}
        self._caps: dict[str, float] = {}  # key -> capacity, kept in step with _instances
        self._periods: dict[str, float] = {}  # rate key -> interval seconds
        self._needs: dict[tuple[str, str], OpNeeds] = {}
        self._usage_of: dict[tuple[object, ...], tuple[tuple[str, float], ...]] = {}  # by op shape
        self._interned: dict[
            tuple[tuple[tuple[str, float], ...], tuple[str, ...], tuple[str, ...]], OpNeeds
        ] = {}
        self.spacing: MinSpacing | None = (
            MinSpacing(config.delay_between_servers) if config.delay_between_servers else None
        )
        if self.spacing is not None:
            self._put(self.spacing)
        self._eager_instances()

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        config: ParallelismConfig | Mapping[str, object],
        *,
        group_sizes: Mapping[str, int] | None = None,
        known_groups: Collection[str] | None = None,
        known_tasks: Collection[str] | None = None,
        location: str | None = None,
    ) -> Limits:
        """Validate ``config`` (a model or raw mapping) and build; errors are ``ConstraintError``."""
        if not isinstance(config, ParallelismConfig):
            try:
                config = ParallelismConfig.model_validate(config)
            except ValidationError as exc:
                raise ConstraintError(
                    problems_of(exc, "parallelism"), source=location or "parallelism"
                ) from None
        return cls(
            config,
            group_sizes=group_sizes,
            known_groups=known_groups,
            known_tasks=known_tasks,
            location=location,
        )

    @classmethod
    def from_ops(
        cls,
        config: ParallelismConfig | Mapping[str, object],
        ops: Iterable[OpLike],
        *,
        group_sizes: Mapping[str, int] | None = None,
        known_groups: Collection[str] | None = None,
        known_tasks: Collection[str] | None = None,
        location: str | None = None,
    ) -> Limits:
        """Build for these operations: every instance they use exists afterwards.

        Group sizes for percentage budgets default to the number of distinct hosts per group
        among ``ops``; pass ``group_sizes`` (from the inventory) to count hosts not targeted.
        """
        op_list = list(ops)
        sizes: dict[str, set[str]] = {}
        for op in op_list:
            for g in op.groups or (op.group,):
                sizes.setdefault(g, set()).add(op.host)
        merged = {g: len(h) for g, h in sizes.items()} | dict(group_sizes or {})
        groups = set(known_groups) if known_groups is not None else set(merged)
        limits = cls.build(
            config, group_sizes=merged, known_groups=groups, known_tasks=known_tasks, location=location
        )
        for op in op_list:
            limits.needs(op)
        return limits

    def _eager_instances(self) -> None:
        if self.config.max_parallel_servers:
            self._add_pool("max_parallel_servers", float(self.config.max_parallel_servers), "global", None)
        for pool in self.config.pools:
            if pool.scope == "global":
                self._add_pool(pool.name, pool.capacity, "global", None, pool.unit)
        for rate in self.config.rate_limits:
            if rate.scope == "global":
                self._add_rate(rate, None)

    def _add_pool(
        self, name: str, cap: float, scope: Scope, value: str | None, unit: str | None = None
    ) -> str:
        key = instance_key(name, scope, value)
        if key not in self._instances:
            self._put(PoolInstance(key, name, cap, scope, value, unit))
        return key

    def _add_rate(self, rate: RateLimitSpec, value: str | None) -> str:
        key = instance_key(rate.name, rate.scope, value)
        if key not in self._instances:
            self._put(RateInstance(key, rate.name, rate.max_starts, rate.per, rate.scope, value))
            self._periods[key] = rate.per
        return key

    def _add_budget(self, budget: DisruptionBudgetSpec, group: str) -> str:
        key = instance_key(BUDGET, "group", group)
        if key not in self._instances:
            size = self._sizes.get(group)
            if size is None and isinstance(budget.max_unavailable, str):
                msg = f"disruption budget {budget.max_unavailable!r} of group {group!r}: group size unknown"
                raise ConstraintError([Problem(msg, "parallelism.disruption_budget")], source=self.location)
            cap = resolve_count(budget.max_unavailable, size or 0)
            self._put(BudgetInstance(key, group, cap, size or 0))
        return key

    # -- per operation -----------------------------------------------------------------------

    def needs(self, op: OpLike) -> OpNeeds:
        """Pool demands, rate limits and budgets of ``op`` (cached per ``(host, task)``)."""
        ident = (op.host, op.task)
        found = self._needs.get(ident)
        if found is None:
            parts = (self._usage(op), self._rates(op), self._budgets(op))
            found = self._interned.get(parts)
            if found is None:  # hosts of one group share one value
                found = self._interned[parts] = OpNeeds(*parts)
            self._needs[ident] = found
        return found

    def usage(self, op: OpLike) -> tuple[tuple[str, float], ...]:
        """``(instance key, demand)`` for every pool instance ``op`` occupies while it runs."""
        return self.needs(op).usage

    def rate_keys(self, op: OpLike) -> tuple[str, ...]:
        """Rate-limit instances that count the start of ``op``."""
        return self.needs(op).rates

    def budget_keys(self, op: OpLike) -> tuple[str, ...]:
        """Disruption-budget instances that count ``op``'s host while it is in maintenance."""
        return self.needs(op).budgets

    def _usage(self, op: OpLike) -> tuple[tuple[str, float], ...]:
        """``op``'s pool demands, computed once per distinct (task, groups, place, demands): the
        hosts of a group share them (instances are only ever added, so a stored answer stays true)."""
        key = (op.task, op.group, op.groups, op.datacenter, op.segment, op.demands)
        found = self._usage_of.get(key)
        if found is None:
            found = self._usage_of[key] = self._pool_demands(op)
        return found

    def _pool_demands(self, op: OpLike) -> tuple[tuple[str, float], ...]:
        out: list[tuple[str, float]] = []
        cfg = self.config
        for (name, scope), cap in zip(
            _BUILTIN_POOLS,
            (cfg.max_parallel_servers, cfg.max_parallel_per_group, cfg.max_parallel_per_datacenter),
            strict=True,
        ):
            value = None if scope == "global" else _scope_value(op, scope, None)
            if cap and (scope == "global" or value is not None):
                out.append((self._add_pool(name, float(cap), scope, value), 1.0))
        named = dict(op.demands)
        for pool in cfg.pools:
            entry = self._pool_usage(op, pool, named.get(pool.name, pool.default_demand))
            if entry is not None:
                out.append(entry)
        return tuple(out)

    def _pool_usage(self, op: OpLike, pool: PoolSpec, demand: float) -> tuple[str, float] | None:
        if demand <= 0 or (pool.groups is not None and not set(op.groups or (op.group,)) & set(pool.groups)):
            return None
        value = None if pool.scope == "global" else _scope_value(op, pool.scope, pool.groups)
        if pool.scope != "global" and value is None:
            return None
        return self._add_pool(pool.name, pool.capacity, pool.scope, value, pool.unit), demand

    def _rates(self, op: OpLike) -> tuple[str, ...]:
        out: list[str] = []
        for rate in self.config.rate_limits:
            if rate.tasks is not None and op.task not in rate.tasks:
                continue
            value = None if rate.scope == "global" else _scope_value(op, rate.scope, None)
            if rate.scope == "global" or value is not None:
                out.append(self._add_rate(rate, value))
        return tuple(out)

    def _budgets(self, op: OpLike) -> tuple[str, ...]:
        budget = self.config.disruption_budget
        if budget is None:
            return ()
        groups = [g for g in (op.groups or (op.group,)) if budget.groups is None or g in budget.groups]
        return tuple(self._add_budget(budget, g) for g in dict.fromkeys(groups))

    # -- instances ---------------------------------------------------------------------------

    @property
    def instances(self) -> list[Instance]:
        """Every instance created so far (all that the operations seen use), by key."""
        return [self._instances[k] for k in sorted(self._instances)]

    def pools(self) -> list[PoolInstance]:
        return [i for i in self.instances if isinstance(i, PoolInstance)]

    def rates(self) -> list[RateInstance]:
        return [i for i in self.instances if isinstance(i, RateInstance)]

    def budgets(self) -> list[BudgetInstance]:
        return [i for i in self.instances if isinstance(i, BudgetInstance)]

    def instance(self, key: str) -> Instance:
        try:
            return self._instances[key]
        except KeyError:
            raise ConstraintError(f"no constraint instance {key!r}", source=self.location) from None

    def capacity(self, key: str) -> float:
        """Current capacity of ``key`` (units, starts per interval, hosts, or seconds of spacing)."""
        cap = self._caps.get(key)
        return cap if cap is not None else float(self.instance(key).capacity)

    def set_capacity(self, key: str, value: float) -> None:
        """Throttle: change the capacity of one instance while planning or running.

        Pools and spacing take floats ≥ 0 (0 pauses a pool); rate limits and budgets whole numbers ≥ 0.
        While a run is admitting, call ``Admission.set_capacity`` instead, so that waiters wake.
        """
        inst = self.instance(key)
        if value < 0 or (not isinstance(inst, PoolInstance | MinSpacing) and value != int(value)):
            raise ConstraintError(f"invalid capacity {value!r} for {key!r}", source=self.location)
        if isinstance(inst, MinSpacing):
            self.spacing = replace(inst, seconds=float(value))
            self._put(self.spacing)
        elif isinstance(inst, PoolInstance):
            self._put(replace(inst, capacity=float(value)))
        else:
            self._put(replace(inst, capacity=int(value)))

    def _put(self, inst: Instance) -> None:
        self._instances[inst.key] = inst
        self._caps[inst.key] = float(inst.capacity)

    @property
    def capacities(self) -> Mapping[str, float]:
        """Live read-only view: instance key -> current capacity (for hot paths)."""
        return MappingProxyType(self._caps)

    def period(self, key: str) -> float:
        """The interval of a rate-limit instance, in seconds."""
        try:
            return self._periods[key]
        except KeyError:
            raise ConstraintError(f"no rate limit {key!r}", source=self.location) from None


def _validate(
    config: ParallelismConfig,
    known_groups: Collection[str] | None,
    known_tasks: Collection[str] | None,
    location: str | None,
) -> None:
    problems = list(_name_problems(config))
    if known_groups is not None:
        problems += _group_problems(config, set(known_groups))
    if known_tasks is not None:
        for k, rate in enumerate(config.rate_limits):
            for task in sorted(set(rate.tasks or ()) - set(known_tasks)):
                msg = f"rate limit {rate.name!r} names unknown task {task!r}"
                problems.append(Problem(msg, f"parallelism.rate_limits[{k}].tasks"))
    if problems:
        raise ConstraintError(problems, source=location or "parallelism")


def _name_problems(config: ParallelismConfig) -> list[Problem]:
    names = [p.name for p in config.pools] + [r.name for r in config.rate_limits]
    return [
        Problem(f"duplicate pool/rate-limit name {n!r}", "parallelism")
        for n in sorted({n for n in names if names.count(n) > 1})
    ]


def _group_problems(config: ParallelismConfig, known: set[str]) -> list[Problem]:
    out: list[Problem] = []
    for k, pool in enumerate(config.pools):
        for g in sorted(set(pool.groups or ()) - known):
            out.append(
                Problem(f"pool {pool.name!r} names unknown group {g!r}", f"parallelism.pools[{k}].groups")
            )
    budget = config.disruption_budget
    for g in sorted(set(budget.groups or ()) - known) if budget else ():
        out.append(
            Problem(f"disruption budget names unknown group {g!r}", "parallelism.disruption_budget.groups")
        )
    return out
