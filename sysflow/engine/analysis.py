"""Metric analysis at gates: ``count`` measurements ``interval`` apart, judged against bounds.

The gate fails when more measurements fall out of bounds than ``failure_limit`` allows, and is
inconclusive (the rollout does not proceed) when more than ``inconclusive_limit`` gave no number.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from sysflow.clock import Clock
from sysflow.engine.result import OpRecord
from sysflow.engine.states import OpState
from sysflow.model.analysis import MetricCheck
from sysflow.planner.graph import Operation

__all__ = ["MetricVerdict", "measure"]

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")

RunOp = Callable[[Operation, str, Callable[[int], None]], Awaitable[OpRecord]]


@dataclass(frozen=True, slots=True)
class MetricVerdict:
    """What a metric check saw: passed (None = inconclusive), the values, and why."""

    name: str
    passed: bool | None
    values: tuple[float | None, ...]
    reason: str


def _operation(check: MetricCheck, wave: int, i: int) -> Operation:
    host = check.host or "@controller"
    return Operation(
        f"analysis:{check.name}:{wave}:{i}", host, f"analysis:{check.name}", wave, 0, "ungrouped", (), None, None,
        check.command or "", 1.0, check.timeout, 0, None, (), False, check.host is None,
    )  # fmt: skip


def _value(record: OpRecord) -> float | None:
    if record.state is not OpState.SUCCEEDED:
        return None
    found = _NUMBER.search(record.stdout)
    return float(found.group()) if found else None


async def _take(
    check: MetricCheck, run_op: RunOp, clock: Clock, wave: int, i: int, hosts: Sequence[str]
) -> float | None:
    """One measurement: the command's number, or the PromQL sample furthest out of bounds."""
    if check.prometheus is None:
        op = _operation(check, wave, i)
        return _value(await run_op(op, op.command, lambda attempt: None))
    from sysflow.engine.prometheus import query_prometheus

    samples, _ = await query_prometheus(check, hosts, clock)
    if not samples:
        return None
    if check.max is not None and max(samples) > check.max:
        return max(samples)
    return min(samples) if check.min is not None else max(samples)


async def measure(
    check: MetricCheck, run_op: RunOp, clock: Clock, wave: int, hosts: Sequence[str] = ()
) -> MetricVerdict:
    """Take the measurements (over the wave's ``hosts`` for a PromQL query) and judge them."""
    values: list[float | None] = []
    for i in range(check.count):
        if i:
            await clock.sleep(check.interval)
        values.append(await _take(check, run_op, clock, wave, i, hosts))
    low = [v for v in values if v is not None and check.min is not None and v < check.min]
    high = [v for v in values if v is not None and check.max is not None and v > check.max]
    missing = sum(v is None for v in values)
    shown = ", ".join("-" if v is None else f"{v:g}" for v in values)
    if len(low) + len(high) > check.failure_limit:
        bounds = f"[{'' if check.min is None else f'{check.min:g}'}, {'' if check.max is None else f'{check.max:g}'}]"
        return MetricVerdict(
            check.name,
            False,
            tuple(values),
            f"{check.name}: {len(low) + len(high)} of {len(values)} measurements outside {bounds}: {shown}",
        )
    if missing > check.inconclusive_limit:
        return MetricVerdict(
            check.name, None, tuple(values), f"{check.name}: {missing} measurements gave no number"
        )
    return MetricVerdict(check.name, True, tuple(values), f"{check.name}: {shown}")
