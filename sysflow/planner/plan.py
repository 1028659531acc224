"""``Plan``: the immutable result of planning, with wall-clock times and its JSON form.

A plan keeps the problem it solves and the solver's assignment (integer seconds from the horizon
start, ``problem.origin``), and derives everything an administrator or the engine reads: per
operation the host, task, wave, window and planned start and end (ISO 8601), hosts done per window,
deferred hosts and why, the lower bound and how far the plan is from it. JSON::

    {"solver", "status", "objective", "lower_bound", "excess_s", "ratio", "makespan",
     "hosts_done_per_window": [...],
     "ops": [{"host", "task", "op", "wave", "window_start", "window_end", "start", "end"}],
     "deferred": [{"host", "reason"}]}
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from sysflow.planner.bounds import Bound, Quality, lower_bound, quality
from sysflow.planner.problem import PlanningProblem, Window
from sysflow.planner.solution import Assignment, Score, hosts_done_per_window, score

__all__ = ["EPOCH", "Plan", "PlannedOp"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # origin of synthetic problems that have none


@dataclass(frozen=True, slots=True)
class PlannedOp:
    """One operation of the plan, in wall-clock time."""

    host: str
    task: str
    op: str
    wave: int
    window_start: datetime
    window_end: datetime
    start: datetime
    end: datetime
    group: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "group": self.group,
            "task": self.task,
            "op": self.op,
            "wave": self.wave,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
        }


@dataclass(frozen=True)
class Plan:
    """A planned assignment of a problem, with how it was made."""

    problem: PlanningProblem
    assignment: Assignment
    solver: str
    status: str
    seconds: float = 0.0
    quantile: float = 0.5
    notes: tuple[str, ...] = field(default=())
    forecast: Mapping[str, Any] | None = None  # the Monte Carlo forecast made with it (to_dict of
    # ``forecast.Distribution``), kept with the plan so a report sets it against what happened
    rule: str = ""  # the greedy dispatch rule that ordered its hosts ("": another solver's order)

    @property
    def origin(self) -> datetime:
        return self.problem.origin or EPOCH

    def at(self, seconds: int) -> datetime:
        """The wall-clock time of second ``seconds`` of the horizon."""
        return self.origin + timedelta(seconds=seconds)

    def seconds_of(self, when: datetime) -> int:
        """Second of the horizon at wall-clock ``when`` (rounded down)."""
        return int((when - self.origin).total_seconds() // 1)

    @cached_property
    def score(self) -> Score:
        return score(self.problem, self.assignment)

    @cached_property
    def bound(self) -> Bound:
        return lower_bound(self.problem)

    @cached_property
    def quality(self) -> Quality:
        return quality(self.problem, self.assignment, self.bound)

    @property
    def hosts_done_per_window(self) -> list[int]:
        return hosts_done_per_window(self.problem, self.assignment)

    @property
    def deferred(self) -> dict[str, str]:
        return dict(self.assignment.deferred)

    def window_of(self, host: str, op_index: int) -> Window:
        """The window in which the host's operation ``op_index`` runs."""
        c = self.problem.by_host[host]
        s = self.assignment.starts[host][op_index]
        for w in c.windows:
            if w.start <= s <= w.cutoff:
                return w
        raise ValueError(f"{host}: operation {op_index} is in no window")

    def ops(self) -> Iterator[PlannedOp]:
        """Every planned operation, ordered by start."""
        rows = []
        for c in self.problem.chains:
            starts = self.assignment.starts.get(c.host)
            if starts is None:
                continue
            for i, s in enumerate(starts):
                w = self.window_of(c.host, i)
                rows.append((s, c.host, i, c, w))
        for s, _, i, c, w in sorted(rows, key=lambda r: (r[0], r[1], r[2])):
            yield PlannedOp(
                c.host,
                c.tasks[i],
                c.ops[i],
                c.wave,
                self.at(w.start),
                self.at(w.end),
                self.at(s),
                self.at(s + c.durations[i]),
                c.group,
            )

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-ready data (see module docstring)."""
        q = self.quality
        return {
            "solver": self.solver,
            "status": self.status,
            "quantile": self.quantile,
            "seconds": round(self.seconds, 3),
            "origin": self.origin.isoformat(),
            "objective": {
                "hosts_done_by_window": list(self.score.done_by_window),
                "total_completion_s": self.score.total_completion,
            },
            "lower_bound": self.at(self.bound.makespan).isoformat(),
            "lower_bound_s": self.bound.makespan,
            "makespan": self.at(q.makespan).isoformat(),
            "makespan_s": q.makespan,
            "ratio": round(q.ratio, 4),
            "excess_s": q.excess_s,
            "hosts_done_per_window": self.hosts_done_per_window,
            "ops": [op.to_dict() for op in self.ops()],
            "deferred": [{"host": h, "reason": r} for h, r in sorted(self.assignment.deferred.items())],
            "notes": list(self.notes),
            **({"forecast": dict(self.forecast)} if self.forecast is not None else {}),
        }

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent)
