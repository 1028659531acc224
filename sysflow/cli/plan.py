"""What ``sysflow plan`` and ``sysflow forecast`` do, as plain functions (``sysflow.cli`` wraps them).

Both load a workflow file and an inventory, plan from ``--start`` (default: now, to the minute) and
print a summary; ``plan`` can write the plan's JSON and a Gantt chart, ``forecast`` prints the
forecast as a table (p50 and p90 plans) and can write its JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from sysflow.cli.timefmt import DisplayZone, display_zone
from sysflow.clock import utc
from sysflow.planner.durations import DurationModel
from sysflow.planner.forecast import Distribution, Forecast, distribution, forecast, samples_for, task_retries
from sysflow.planner.plan import Plan

__all__ = [
    "PlanOptions",
    "distribution_lines",
    "forecast_command",
    "forecast_table",
    "parse_start",
    "plan_command",
    "plan_summary",
]

Echo = Callable[[str], None]
SolverName = Literal["greedy", "cpsat"]


@dataclass(frozen=True)
class PlanOptions:
    """How ``plan`` and ``forecast`` plan: solver, its time limit, the start, learned durations."""

    solver: SolverName = "greedy"
    time_limit: float = 10.0  # CP-SAT seconds
    start: str | None = None  # ISO 8601; default now, to the minute
    durations: Path | None = None  # a DurationModel saved as JSON
    horizon_days: float = 14.0
    tz: str | None = None  # display zone (--tz); default: the zone of the windows

    def planning(self, workflow: Path, inventory: Path) -> tuple[Any, Any, dict[str, Any]]:
        """The loaded workflow and inventory, and the keyword arguments every planner call shares."""
        wf, inv, model = _load(workflow, inventory, self.durations)
        kw = {
            "solver": self.solver,
            "start": parse_start(self.start),
            "time_limit": self.time_limit,
            "horizon": timedelta(days=self.horizon_days),
            "durations": model,
        }
        return wf, inv, kw


LAST_START_YEAR = 9000  # plenty of room for any planning horizon in front of datetime.max


def parse_start(text: str | None) -> datetime:
    """An ISO 8601 time (naive = UTC), or now to the minute; one far in the future is refused (a
    horizon past year 9999 cannot be computed)."""
    if not text:
        return datetime.now(UTC).replace(second=0, microsecond=0)
    try:
        start = utc(datetime.fromisoformat(text))
    except ValueError:
        raise ValueError(f"--start: not an ISO 8601 time: {text!r}") from None
    if start.year > LAST_START_YEAR:
        raise ValueError(f"--start {text} is too far in the future to plan from")
    return start


def _load(workflow: Path, inventory: Path, durations: Path | None) -> tuple[Any, Any, DurationModel | None]:
    from sysflow.model.inventory import Inventory
    from sysflow.model.workflow import MaintenanceWorkflow

    wf = MaintenanceWorkflow.from_file(workflow)
    inv = Inventory.load(inventory)
    model = DurationModel.from_json(durations.read_text()) if durations else None
    return wf, inv, model


def plan_summary(plan: Plan, zone: DisplayZone | None = None) -> list[str]:
    """What ``sysflow plan`` prints, times in ``zone`` (default: the zone of the windows)."""
    q, b = plan.quality, plan.bound
    z = zone or display_zone(None, None)
    done = ", ".join(str(n) for n in plan.hosts_done_per_window)
    lines = [
        f"zone        {z.header()}",
        f"solver      {plan.solver} ({plan.status}) in {plan.seconds:.2f} s",
        f"hosts       {sum(plan.hosts_done_per_window)} placed, {len(plan.deferred)} deferred",
        f"per window  {done}",
        f"start       {z.fmt(plan.origin)}",
        f"finish      {z.fmt(plan.at(q.makespan))} (lower bound {z.fmt(plan.at(b.makespan))})",
        f"quality     ratio {q.ratio:.4f} in window time, {q.excess_s} s over the bound",
    ]
    for host, reason in sorted(plan.deferred.items())[:10]:
        lines.append(f"deferred    {host}: {reason}")
    if len(plan.deferred) > 10:
        lines.append(f"deferred    ... and {len(plan.deferred) - 10} more")
    lines.extend(f"note        {n}" for n in plan.notes)
    return lines


def plan_command(
    workflow: Path,
    inventory: Path,
    options: PlanOptions = PlanOptions(),
    *,
    json_out: Path | None = None,
    gantt: Path | None = None,
    echo: Echo = print,
    show: bool = False,
    show_all: bool = False,
) -> Plan:
    """Plan ``workflow`` over ``inventory``; print a summary, write JSON and a chart if asked;
    ``show``: then the preview of ``run --check`` for this plan (``show_all``: every host)."""
    from sysflow.planner.build import plan

    wf, inv, kw = options.planning(workflow, inventory)
    zone = display_zone(options.tz, wf)
    result = plan(wf, inv, **kw)
    for line in plan_summary(result, zone):
        echo(line)
    if show:
        from sysflow.cli.preview import preview_lines

        for line in preview_lines(wf, inv, show_all=show_all, tz=options.tz, plan=result):
            echo(line)
    if json_out is not None:
        json_out.write_text(result.to_json())
        echo(f"wrote       {json_out}")
    if gantt is not None:
        from sysflow.cli.gantt_files import write_gantt

        write_gantt(result, gantt, zone)
        echo(f"wrote       {gantt}")
    return result


def forecast_table(fc: Forecast, zone: DisplayZone | None = None) -> list[str]:
    """The forecast as an aligned text table (times in ``zone``), then the deferred hosts."""
    z = zone or display_zone(None, None)
    head = ("window", "group", "remaining", "fit p50", "fit p90", "bottleneck")
    rows = [
        (
            f"{z.local(w.start):%a %Y-%m-%d %H:%M}-{z.fmt(w.end, day=False)}",
            w.group,
            str(w.candidates),
            str(w.fit_p50),
            "-" if w.fit_p90 is None else str(w.fit_p90),
            w.bottleneck,
        )
        for w in fc.windows
    ]
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]
    out = ["  ".join(c.ljust(n) for c, n in zip(r, widths, strict=True)).rstrip() for r in (head, *rows)]
    out.insert(1, "  ".join("-" * n for n in widths))
    out.insert(0, z.header())
    out.append(f"binding constraint: {fc.binding}")
    out.append(f"lower bound: {z.fmt(fc.lower_bound)}; planned finish: {z.fmt(fc.makespan)}")
    for host, reason in sorted(fc.deferred.items()):
        out.append(f"deferred at p50: {host}: {reason}")
    return out


def distribution_lines(dist: Distribution, zone: DisplayZone | None = None) -> list[str]:
    """The Monte Carlo forecast: finish quantiles, hosts done in the first window, per group."""
    z = zone or display_zone(None, None)

    def at(q: float, day: bool = True) -> str:
        t = dist.finish_at(q)
        return z.fmt(t, day=day) if t is not None else "not every host"

    lo, hi = dist.done_interval(0.8)
    lines = [
        f"finish: p10 {at(0.1)}, p50 {at(0.5)}, p90 {at(0.9)} ({dist.samples} simulated runs)",
        f"first window (ends {z.fmt(dist.first_window_end)}): {lo}-{hi} of {dist.hosts} hosts done"
        f" (80 % interval); every host inside: {dist.p_all_in_first_window():.0%}",
    ]
    for group, values in sorted(dist.group_finish.items()):
        p50, p90 = (Distribution.quantile_of(values, q) for q in (0.5, 0.9))
        shown = [z.fmt(dist.plan.at(round(v)), day=False) if v != float("inf") else "-" for v in (p50, p90)]
        lines.append(f"  {group}: p50 {shown[0]}, p90 {shown[1]}")
    return lines


def forecast_command(
    workflow: Path,
    inventory: Path,
    options: PlanOptions = PlanOptions(),
    *,
    json_out: Path | None = None,
    echo: Echo = print,
) -> Forecast:
    """Plan at p50 and p90 and print what fits per window and group, and what binds."""
    from sysflow.planner.build import plan_pair

    wf, inv, kw = options.planning(workflow, inventory)
    zone = display_zone(options.tz, wf)
    p50, p90 = plan_pair(wf, inv, quantiles=(0.5, 0.9), **kw)
    fc = forecast(p50, p90)
    for line in forecast_table(fc, zone):
        echo(line)
    model = (kw["durations"] or DurationModel()).with_priors({t.id: t.estimate for t in wf.tasks})
    dist = distribution(p50, model, retries=task_retries(wf), samples=samples_for(p50))
    for line in distribution_lines(dist, zone):
        echo(line)
    if json_out is not None:
        json_out.write_text(json.dumps({**fc.to_dict(), "distribution": dist.to_dict()}, indent=1))
        echo(f"wrote {json_out}")
    return fc
