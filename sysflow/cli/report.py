"""``sysflow report RUN``: the forecast made before a run set against what happened.

From the run store: the first plan with the Monte Carlo forecast kept with it, and the operations'
records. Printed: finish forecast (p50, p90) against the actual finish, operations per hour planned and
done, each wave's forecast end against its actual end, hosts done in the first window against the
forecast's 80 % interval, and the largest misses by task × group with why (slower hosts, retries,
later starts than planned).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sysflow.cli.control import ControlError, _stored
from sysflow.cli.timefmt import DisplayZone, display_zone
from sysflow.engine.result import OpRecord
from sysflow.engine.states import OpState

__all__ = ["Miss", "report_data", "report_lines"]

MISSES = 5  # task × group rows shown


@dataclass(frozen=True)
class Miss:
    """How one task on one group ran against its plan."""

    task: str
    group: str
    planned_s: float  # median planned duration
    actual_s: float  # median measured duration
    ops: int
    retried: int
    late_start_s: float  # median of (actual start - planned start)

    @property
    def lost_s(self) -> float:
        """Operation-seconds lost against the plan (what ranks the misses)."""
        return (self.actual_s - self.planned_s) * self.ops

    def why(self) -> str:
        reasons = []
        ratio = self.actual_s / self.planned_s if self.planned_s > 0 else 1.0
        if ratio >= 1.1:
            reasons.append(f"slower hosts (median {ratio:.2f}x the plan)")
        elif ratio <= 0.9:
            reasons.append(f"faster hosts (median {ratio:.2f}x the plan)")
        if self.retried:
            reasons.append(f"{self.retried} retried")
        if self.late_start_s >= 60:
            reasons.append(
                f"started {self.late_start_s / 60:.0f} min later than planned (admission, windows, gates)"
            )
        return "; ".join(reasons) or "as planned"

    def line(self) -> str:
        return (
            f"  {self.task} x {self.group}: planned {self.planned_s:.0f} s, ran {self.actual_s:.0f} s "
            f"(median of {self.ops}): {self.why()}"
        )


def _initial_plan(state: Path, run_id: str) -> dict[str, Any] | None:
    from sysflow.engine.store import RunStore

    with RunStore(state) as store:
        plans = store.plans(run_id)
    for _, reason, text in plans:
        if reason == "initial":
            data: dict[str, Any] = json.loads(text)
            return data
    return None


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _misses(planned: Iterable[Mapping[str, Any]], ops: Mapping[str, OpRecord]) -> list[Miss]:
    per: dict[tuple[str, str], list[tuple[float, float, float, int]]] = {}
    for p in planned:
        r = ops.get(p["op"])
        if r is None or r.start is None or r.end is None or r.state is not OpState.SUCCEEDED:
            continue
        start, end = _when(p["start"]), _when(p["end"])
        assert start is not None
        assert end is not None
        row = (
            (end - start).total_seconds(),
            (r.end - r.start).total_seconds(),
            (r.start - start).total_seconds(),
        )
        per.setdefault((p["task"], p.get("group", "")), []).append((*row, r.attempts))
    out = [
        Miss(
            task,
            group,
            statistics.median(x[0] for x in rows),
            statistics.median(x[1] for x in rows),
            len(rows),
            sum(x[3] > 1 for x in rows),
            statistics.median(x[2] for x in rows),
        )
        for (task, group), rows in per.items()
    ]
    return sorted(out, key=lambda m: (-abs(m.lost_s), m.task, m.group))


def report_data(state: Path, run_id: str) -> dict[str, Any]:
    """What the report says, as data (``--json``)."""
    row, ops = _stored(state, run_id)
    plan = _initial_plan(state, run_id)
    if plan is None:
        raise ControlError(f"run {run_id} has no stored plan to compare with (it was not planned)")
    ran = [r for r in ops.values() if r.start is not None and r.end is not None]
    ends = [r.end for r in ran if r.end is not None]
    fc = plan.get("forecast") or {}
    last: dict[str, datetime] = {}
    failed = {r.host for r in ops.values() if r.state is OpState.FAILED}
    for r in ran:
        if r.end is not None:
            last[r.host] = max(last.get(r.host, r.end), r.end)
    first_end: dict[str, datetime] = {}  # the end of the earliest window a host was planned in
    for p in plan["ops"]:
        end = _when(p["window_end"])
        if end is not None:
            first_end[p["host"]] = min(first_end.get(p["host"], end), end)
    done_first = sum(1 for h, t in last.items() if h not in failed and h in first_end and t <= first_end[h])
    starts = [r.start for r in ran if r.start is not None]
    planned_start = min((s for s in (_when(p["start"]) for p in plan["ops"]) if s is not None), default=None)
    p50 = _when((fc.get("finish") or {}).get("p50")) or _when(plan.get("makespan"))
    wave_end: dict[int, datetime] = {}
    for r in ran:
        if r.end is not None:
            wave_end[r.wave] = max(wave_end.get(r.wave, r.end), r.end)
    return {
        "run": run_id,
        "status": row.status.value,
        "forecast": fc,
        "planned_finish": plan.get("makespan"),
        "actual_finish": max(ends).isoformat() if ends else None,
        "planned_ops": len(plan["ops"]),
        "ran_ops": len(ran),
        "planned_ops_per_hour": _per_hour(len(plan["ops"]), planned_start, p50),
        "ops_per_hour": _per_hour(len(ran), min(starts, default=None), max(ends, default=None)),
        "waves": {str(w): t.isoformat() for w, t in sorted(wave_end.items())},
        "done_first_window": done_first,
        "misses": [m.__dict__ | {"why": m.why()} for m in _misses(plan["ops"], ops)],
        "workflow_json": row.workflow_json,
    }


def _per_hour(ops: int, start: datetime | None, end: datetime | None) -> float | None:
    """Operations per hour from the first start to the last end (None when there is no span)."""
    if start is None or end is None or end <= start:
        return None
    return round(ops / ((end - start).total_seconds() / 3600), 1)


def _verdict(actual: datetime, p50: datetime | None, p90: datetime | None) -> str:
    if p90 is not None and actual > p90:
        return f"later than the forecast p90 by {(actual - p90).total_seconds() / 60:.0f} min"
    if p50 is not None and actual <= p50:
        return "by the forecast p50"
    return "between the forecast p50 and p90"


def report_lines(state: Path, run_id: str, tz: str | None = None, as_json: bool = False) -> list[str]:
    """``sysflow report RUN``: the lines printed (or one JSON document)."""
    from sysflow.model.workflow import MaintenanceWorkflow

    data = report_data(state, run_id)
    workflow = MaintenanceWorkflow.model_validate_json(data.pop("workflow_json"))
    if as_json:
        return [json.dumps(data, indent=1)]
    z = display_zone(tz, workflow)
    fc: Mapping[str, Any] = data["forecast"]
    finish = fc.get("finish", {})
    p50, p90 = _when(finish.get("p50")), _when(finish.get("p90"))
    actual = _when(data["actual_finish"])
    lines = [f"run {run_id}: {data['status']}", f"forecast vs actual ({z.header()}):"]
    if actual is not None:
        shown = ", ".join(f"{k} {_fmt(z, _when(v))}" for k, v in finish.items())
        lines.append(
            f"  finish      forecast {shown or _fmt(z, _when(data['planned_finish']))}; actual {_fmt(z, actual)}"
            f" ({_verdict(actual, p50, p90)})"
        )
    rate = ""
    if data["planned_ops_per_hour"] is not None and data["ops_per_hour"] is not None:
        rate = (
            f"; {data['planned_ops_per_hour']:.0f} ops/hour forecast (p50), {data['ops_per_hour']:.0f} actual"
        )
    lines.append(f"  operations  {data['planned_ops']} planned, {data['ran_ops']} ran{rate}")
    waves: Mapping[str, Mapping[str, str | None]] = fc.get("waves", {})
    for w, end in data["waves"].items():
        q = waves.get(w, {})
        forecast = f"forecast p50 {_fmt(z, _when(q.get('p50')), day=False)}, p90 {_fmt(z, _when(q.get('p90')), day=False)}"
        lines.append(f"  wave {int(w) + 1:<6} {forecast}; actual {_fmt(z, _when(end), day=False)}")
    done = fc.get("done_first_window")
    if done:
        lines.append(
            f"  first window  forecast {done['p10']}-{done['p90']} hosts done (80 % interval); "
            f"actual {data['done_first_window']}"
        )
    misses = data["misses"][:MISSES]
    if misses:
        lines.append("largest misses (task x group):")
        lines.extend(Miss(**{k: v for k, v in m.items() if k != "why"}).line() for m in misses)
    return lines


def _fmt(z: DisplayZone, when: datetime | None, *, day: bool = True) -> str:
    return z.fmt(when, day=day) if when is not None else "-"
