"""The forecast set against what happened: predicted vs actual finish, ops/hour, and end of each wave.

Printed in the closing summary of ``sysflow run`` and ``sim`` when the run had a plan, so a drifting
forecast is seen (and the planner's duration priors can be corrected) instead of assumed right.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sysflow.cli.timefmt import DisplayZone
from sysflow.engine.result import OpRecord, RunResult
from sysflow.planner.plan import Plan, PlannedOp

__all__ = ["forecast_vs_actual"]


def _rate(n: int, first: datetime, last: datetime) -> str:
    hours = (last - first).total_seconds() / 3600
    return f"{n / hours:,.0f}" if hours > 0 and n else "-"


def _delta(predicted: datetime, actual: datetime) -> str:
    seconds = (actual - predicted).total_seconds()
    if abs(seconds) < 1:
        return "on time"
    return f"{seconds:+.0f} s" if abs(seconds) < 90 else f"{round(seconds / 60):+d} min"


def _ends_per_wave(items: Iterable[PlannedOp | OpRecord]) -> dict[int, datetime]:
    out: dict[int, datetime] = {}
    for op in items:
        if op.end is not None:
            out[op.wave] = max(out.get(op.wave, op.end), op.end)
    return out


def forecast_vs_actual(result: RunResult, plan: Plan, zone: DisplayZone) -> list[str]:
    """The block of summary lines; empty when the plan or the run has no operations with times."""
    planned = list(plan.ops())
    ran = [r for r in result.ops.values() if r.start is not None and r.end is not None]
    if not planned or not ran:
        return []
    p_first, p_last = min(o.start for o in planned), max(o.end for o in planned)
    a_first = min(r.start for r in ran if r.start is not None)
    a_last = max(r.end for r in ran if r.end is not None)
    lines = [
        f"  forecast vs actual ({zone.header()}):",
        f"    finish      predicted {zone.fmt(p_last)}, actual {zone.fmt(a_last)} ({_delta(p_last, a_last)})",
        f"    ops/hour    predicted {_rate(len(planned), p_first, p_last)}, actual {_rate(len(ran), a_first, a_last)}"
        f" ({len(planned)} planned, {len(ran)} ran)",
    ]
    p_waves, a_waves = _ends_per_wave(planned), _ends_per_wave(ran)
    for wave in sorted(set(p_waves) | set(a_waves)):
        p, a = p_waves.get(wave), a_waves.get(wave)
        shown_p = zone.fmt(p, day=False) if p else "-"
        shown_a = zone.fmt(a, day=False) if a else "did not run"
        delta = f" ({_delta(p, a)})" if p and a else ""
        lines.append(f"    wave {wave + 1:<6} predicted end {shown_p}, actual {shown_a}{delta}")
    return lines
