"""What users write about capacity: concurrency, named pools, rate limits, spacing, disruption budgets.

``sysflow.constraints.capacity`` turns these into concrete constraint instances that both the
planner (CP-SAT) and runtime admission read; both use these same objects.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator

from sysflow.model.base import FrozenModel
from sysflow.model.durations import Duration

__all__ = [
    "Count",
    "DisruptionBudgetSpec",
    "ParallelismConfig",
    "PoolSpec",
    "RateLimitSpec",
    "Scope",
    "check_count",
    "resolve_count",
]

Scope = Literal["global", "group", "datacenter", "segment", "task"]
Count = int | str
"""A count (``5``) or a percentage of the hosts concerned (``"10%"``)."""

RESERVED_NAMES = frozenset({"max_parallel_servers", "max_parallel_per_group", "max_parallel_per_datacenter"})


def check_count(value: Count) -> Count:
    """Validate ``5`` or ``"10%"``."""
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a count must be >= 0: {value}")
        return value
    text = value.strip()
    if text.endswith("%"):
        try:
            pct = float(text[:-1])
        except ValueError:
            raise ValueError(f"not a percentage: {value!r}") from None
        if not 0 <= pct <= 100:
            raise ValueError(f"a percentage must be within 0-100%: {value!r}")
        return text
    if text.isdigit():
        return int(text)
    raise ValueError(f"not a count or percentage: {value!r}")


def resolve_count(value: Count, total: int) -> int:
    """Hosts allowed by ``value`` out of ``total``: percentages round down, minimum 1."""
    if isinstance(value, int):
        return max(1, value)
    pct = float(value.strip()[:-1])
    return max(1, math.floor(pct * total / 100 + 1e-9))


class PoolSpec(FrozenModel):
    """A capacity shared by operations; ``scope`` makes one instance per group/datacenter/... ."""

    name: str = Field(min_length=1)
    capacity: float = Field(gt=0, description="Units available at once (slots, MB/s, ...).")
    scope: Scope = "global"
    unit: str | None = Field(None, description='Informational unit, e.g. "MB/s".')
    groups: list[str] | None = Field(None, description="Only operations on hosts of these groups use it.")
    default_demand: float = Field(0.0, ge=0, description="Demand of operations whose task names no demand.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if value in RESERVED_NAMES or any(c in value for c in "[]="):
            raise ValueError(f"pool name {value!r} is reserved or contains '[', ']' or '='")
        return value


class RateLimitSpec(FrozenModel):
    """At most ``max_starts`` operation starts per ``per`` seconds within ``scope``."""

    name: str = Field(min_length=1)
    max_starts: int = Field(gt=0)
    per: Duration
    scope: Scope = "global"
    tasks: list[str] | None = Field(None, description="Only starts of these tasks count (default: all).")

    @field_validator("per")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("a rate limit's interval must be positive")
        return value


class DisruptionBudgetSpec(FrozenModel):
    """At most N or P% of a group's hosts in maintenance at once (percentages round down, min 1)."""

    max_unavailable: Count
    groups: list[str] | None = Field(None, description="Groups it applies to (default: every group).")

    _count = field_validator("max_unavailable")(check_count)


class ParallelismConfig(FrozenModel):
    """The brief's ``set_parallelization`` plus named pools, rate limits and a disruption budget."""

    max_parallel_servers: int | None = Field(None, gt=0, description="Hosts worked on at once, overall.")
    max_parallel_per_group: int | None = Field(None, gt=0, description="Hosts at once per group.")
    max_parallel_per_datacenter: int | None = Field(None, gt=0, description="Hosts at once per datacenter.")
    delay_between_servers: Duration | None = Field(None, description="Minimum spacing between host starts.")
    pools: list[PoolSpec] = Field(default_factory=list)
    rate_limits: list[RateLimitSpec] = Field(default_factory=list)
    disruption_budget: DisruptionBudgetSpec | None = None
