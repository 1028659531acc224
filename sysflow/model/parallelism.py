"""What users write about capacity: concurrency, named pools, rate limits, spacing, disruption budgets.

``sysflow.constraints`` turns these into runtime admission and the planner into CP-SAT constraints;
both read these same objects.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from sysflow.model.base import FrozenModel
from sysflow.model.durations import Duration

__all__ = ["Count", "DisruptionBudgetSpec", "ParallelismConfig", "PoolSpec", "RateLimitSpec", "Scope"]

Scope = Literal["global", "group", "datacenter", "segment", "task"]
Count = int | str
"""A count (``5``) or a percentage of the hosts concerned (``"10%"``)."""


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


class PoolSpec(FrozenModel):
    """A capacity shared by operations; ``scope`` makes one instance per group/datacenter/... ."""

    name: str
    capacity: float = Field(gt=0, description="Units available at once (slots, MB/s, ...).")
    scope: Scope = "global"
    unit: str | None = Field(None, description='Informational unit, e.g. "MB/s".')
    groups: list[str] | None = Field(None, description="Only operations on hosts of these groups use it.")
    default_demand: float = Field(0.0, ge=0, description="Demand of operations whose task names no demand.")


class RateLimitSpec(FrozenModel):
    """At most ``max_starts`` operation starts per ``per`` seconds within ``scope``."""

    name: str
    max_starts: int = Field(gt=0)
    per: Duration
    scope: Scope = "global"
    tasks: list[str] | None = Field(None, description="Only starts of these tasks count (default: all).")


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
