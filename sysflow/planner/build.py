"""The adapter from what users write to a :class:`PlanningProblem`, and the top-level ``plan()``.

``build_problem`` reads the compiled ``OpGraph``, the ``Calendar`` (each host's windows), the
``Limits`` (pools, rate limits, spacing and budgets, as concrete instances) and the
``DurationModel`` (at the quantile asked), and writes integer seconds from ``start``:

* every instance of ``Limits`` becomes one resource: pool instances hold for an operation's
  duration; rate instances for their period from each counted start; ``delay_between_servers`` is a
  rate of one host start per spacing; budget instances hold for the host's span. Fractional
  capacities (MB/s) are scaled by ``FRACTION_SCALE``, demands rounded up and capacities down, so
  the integer problem is never looser than the real one;
* window starts are rounded up, ends down, durations up; the cutoff becomes the last whole second
  before it (starts are allowed on ``[start, cutoff_at)``, as at run time);
* waves are the rollout's; the stage of a wave barrier is the fleet (``stage="fleet"``, what a
  rollout means), or each group (``"group"``); a ``sliding`` rollout has no barriers;
* wave hooks (run-once operations on the pseudo-hosts ``@waveN``) are not placed as operations;
  their time is: a hook that waits for the wave's hosts runs between the wave and the next one, a
  hook the hosts wait for runs before them, so the time between wave ``w`` and ``w + 1`` (the gate) is
  the longest path of ``w``'s after-hooks, plus the gate pause (verification bake), plus the longest
  path of ``w + 1``'s before-hooks; wave 0's before-hooks delay its hosts from ``start`` on (a
  release). Hook time is not bound to windows, hooks use no pool, and approvals count as no time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from sysflow.clock import utc
from sysflow.planner.durations import DurationModel
from sysflow.planner.graph import Operation, OpGraph
from sysflow.planner.plan import Plan
from sysflow.planner.problem import Chain, PlanningProblem, Resource, ResourceKind, Use, Window

if TYPE_CHECKING:
    from sysflow.constraints.calendar import Calendar
    from sysflow.constraints.capacity import Limits, OpNeeds
    from sysflow.model.inventory import Inventory
    from sysflow.model.workflow import MaintenanceWorkflow

__all__ = ["FRACTION_SCALE", "build_problem", "plan", "plan_pair"]

FRACTION_SCALE = 100  # fractional capacities are planned in hundredths
Stage = Literal["fleet", "group", "host"]
Solver = Literal["greedy", "cpsat"]


class _Resources:
    """Resources by instance key, created on first use, with their integer scale."""

    def __init__(self, limits: Any) -> None:
        self.limits = limits
        self.items: list[Resource] = []
        self.index: dict[str, int] = {}
        self.scale: dict[str, int] = {}

    def get(self, key: str, kind: ResourceKind) -> int:
        found = self.index.get(key)
        if found is not None:
            return found
        inst = self.limits.instance(key)
        cap = float(inst.capacity)
        scale = 1 if cap == int(cap) else FRACTION_SCALE
        period = math.ceil(float(getattr(inst, "per", 0.0))) if kind is ResourceKind.RATE else 0
        unit = getattr(inst, "unit", None)
        label = f"{key} ({unit})" if unit else key
        self.items.append(Resource(key, kind, max(1, math.floor(cap * scale)), max(period, 0), label))
        self.scale[key] = scale
        self.index[key] = len(self.items) - 1
        return self.index[key]

    def spacing(self, seconds: float) -> int:
        key = "delay_between_servers"
        if key not in self.index:
            self.items.append(Resource(key, ResourceKind.RATE, 1, max(1, math.ceil(seconds)), key))
            self.index[key] = len(self.items) - 1
        return self.index[key]

    def use(self, key: str, kind: ResourceKind, demand: float) -> Use:
        r = self.get(key, kind)
        return Use(r, math.ceil(demand * self.scale[key] - 1e-9))


def _windows(calendar: Any, groups: Sequence[str], origin: datetime, end: datetime) -> tuple[Window, ...]:
    out = []
    for w in calendar.host_windows(groups, origin, end):
        s = max(0, math.ceil((w.start - origin).total_seconds()))
        e = math.floor((w.end - origin).total_seconds())
        c = min(e, math.ceil((w.cutoff_at - origin).total_seconds()) - 1)  # the cutoff is exclusive
        if s <= c <= e:
            out.append(Window(s, c, e))
    return tuple(out)


def _gates(graph: OpGraph, hooks: Sequence[tuple[int, int]] = ()) -> tuple[int, ...]:
    """Seconds between wave ``w`` and ``w + 1``: after-hooks of ``w``, pause, before-hooks of ``w + 1``."""
    by_wave = {g.wave: math.ceil(g.pause) for g in graph.gates}
    n = len(graph.waves)
    if not hooks:
        hooks = [(0, 0)] * n
    return tuple(hooks[w][1] + by_wave.get(w, 0) + (hooks[w + 1][0] if w + 1 < n else 0) for w in range(n))


def _hook_seconds(graph: OpGraph, model: DurationModel, quantile: float) -> list[tuple[int, int]]:
    """Per wave: the longest path of its run-once hooks before its hosts, and of those after them."""
    from sysflow.planner.compile import hook_host

    out: list[tuple[int, int]] = []
    for w in range(len(graph.waves)):
        finish: dict[str, int] = {}
        after: set[str] = set()
        for op in graph.chain(hook_host(w)):  # in execution (topological) order
            preds = [q for q in graph.predecessors(op.id) if q in graph.ops]
            if any(not graph.ops[q].run_once or q in after for q in preds):
                after.add(op.id)
            same = [finish[q] for q in preds if q in finish and (q in after) == (op.id in after)]
            finish[op.id] = max(same, default=0) + _seconds(model, op, quantile)
        before_s = max((t for h, t in finish.items() if h not in after), default=0)
        after_s = max((t for h, t in finish.items() if h in after), default=0)
        out.append((before_s, after_s))
    return out


def build_problem(
    graph: OpGraph,
    calendar: Calendar,
    limits: Limits,
    durations: DurationModel | None,
    start: datetime,
    quantile: float = 0.5,
    *,
    end: datetime | None = None,
    stage: Stage = "fleet",
    split_chains: bool = False,
) -> PlanningProblem:
    """The planning problem of ``graph`` from ``start`` to ``end`` (default: the calendar's end)."""
    origin = utc(start)
    horizon_end = utc(end) if end is not None else utc(calendar.end)
    priors = {op.task: op.expected_duration for op in graph.ops.values()}
    model = (durations or DurationModel()).with_priors(priors)
    res = _Resources(limits)
    hooks = _hook_seconds(graph, model, quantile)
    windows: dict[tuple[str, ...], tuple[Window, ...]] = {}
    shapes = _Shapes(res, model, quantile)
    chains = []
    for host in graph.hosts:
        ops = graph.chain(host)
        if not ops:
            continue
        groups = ops[0].groups or (ops[0].group,)
        if groups not in windows:
            windows[groups] = _windows(calendar, groups, origin, horizon_end)
        chain = _chain(graph, host, ops, windows[groups], shapes, stage)
        if chain.wave == 0 and hooks and hooks[0][0]:
            chain = replace(chain, release=hooks[0][0])
        chains.append(chain)
    gates = _gates(graph, hooks)
    return PlanningProblem(
        tuple(chains), tuple(res.items), gates=gates, split_chains=split_chains, origin=origin
    )


_Shape = tuple[tuple[str, ...], tuple[int, ...], tuple[tuple[Use, ...], ...], tuple[Use, ...]]


class _Shapes:
    """Tasks, durations, uses and budgets of a host's chain, built once per distinct shape: hosts of
    a group run the same tasks with the same needs (``Limits`` interns them), so thousands of hosts
    share a handful of shapes."""

    def __init__(self, res: _Resources, model: DurationModel, quantile: float) -> None:
        self.res, self.model, self.quantile = res, model, quantile
        self.known: dict[tuple[tuple[str, str, int], ...], _Shape] = {}

    def of(self, ops: list[Operation]) -> _Shape:
        needs = [self.res.limits.needs(op) for op in ops]
        # by identity: interned needs live as long as the limits, and hashing them costs more
        key = tuple((op.task, op.group, id(n)) for op, n in zip(ops, needs, strict=True))
        found = self.known.get(key)
        if found is None:
            found = self.known[key] = self._build(ops, needs)
        return found

    def _build(self, ops: list[Operation], needs: list[OpNeeds]) -> _Shape:
        res = self.res
        uses: list[tuple[Use, ...]] = []
        for i, need in enumerate(needs):
            u = [res.use(k, ResourceKind.POOL, d) for k, d in need.usage]
            u += [res.use(k, ResourceKind.RATE, 1) for k in need.rates]
            if i == 0 and res.limits.spacing is not None and res.limits.spacing.seconds > 0:
                u.append(Use(res.spacing(res.limits.spacing.seconds), 1))
            uses.append(tuple(u))
        budgets = dict.fromkeys(k for need in needs for k in need.budgets)
        span = tuple(res.use(k, ResourceKind.BUDGET, 1) for k in budgets)
        durations = tuple(_seconds(self.model, op, self.quantile) for op in ops)
        return tuple(op.task for op in ops), durations, tuple(uses), span


def _chain(
    graph: OpGraph,
    host: str,
    ops: list[Operation],
    windows: tuple[Window, ...],
    shapes: _Shapes,
    stage: Stage,
) -> Chain:
    first = ops[0]
    tasks, durations, uses, span = shapes.of(ops)
    keys = {"fleet": "fleet", "group": first.group, "host": host}
    return Chain(
        host=host,
        group=first.group,
        datacenter=first.datacenter,
        wave=graph.host_wave.get(host, first.wave),
        stage=keys[stage],
        ops=tuple(op.id for op in ops),
        tasks=tasks,
        durations=durations,
        windows=windows,
        uses=uses,
        span_uses=span,
    )


def _seconds(model: DurationModel, op: Operation, quantile: float) -> int:
    return math.ceil(model.seconds(op.task, op.group, quantile) - 1e-9)


def _inputs(workflow: Any, inventory: Any, start: datetime, horizon: timedelta) -> tuple[Any, Any, Any]:
    from sysflow.constraints import Calendar, Limits
    from sysflow.planner.compile import compile_workflow

    graph = compile_workflow(workflow, inventory)
    calendar = Calendar.build(workflow.windows, start=start, end=start + horizon)
    limits = Limits.from_ops(workflow.parallelism, list(graph.ops.values()))
    return graph, calendar, limits


def plan_pair(
    workflow: MaintenanceWorkflow,
    inventory: Inventory,
    *,
    start: datetime,
    quantiles: Sequence[float] = (0.5,),
    horizon: timedelta = timedelta(days=14),
    durations: DurationModel | None = None,
    **solve: Any,
) -> list[Plan]:
    """One plan per quantile of the durations (e.g. p50 and p90), built from the same inputs."""
    graph, calendar, limits = _inputs(workflow, inventory, utc(start), horizon)
    rollout = getattr(workflow, "rollout", None)
    sliding = getattr(getattr(rollout, "mode", None), "value", "") == "sliding"
    stage: Stage = "host" if sliding else solve.pop("stage", "fleet")
    split = bool(getattr(workflow.windows, "allow_split_chains", False))
    model = durations or DurationModel()
    out = []
    for q in quantiles:
        problem = build_problem(
            graph, calendar, limits, model, utc(start), q, stage=stage, split_chains=split
        )
        out.append(_with_conditional_note(solve_problem(problem, quantile=q, **solve), workflow))
    return out


def _with_conditional_note(result: Plan, workflow: MaintenanceWorkflow) -> Plan:
    """Say when some tasks are decided at run time (``when``/``until``/``on_failure``)."""
    from dataclasses import replace

    from sysflow.model.conditional_checks import conditional_note
    from sysflow.model.workflow import MaintenanceWorkflow

    note = conditional_note(workflow) if isinstance(workflow, MaintenanceWorkflow) else None
    return replace(result, notes=(*result.notes, note)) if note else result


def plan(
    workflow: MaintenanceWorkflow,
    inventory: Inventory,
    *,
    solver: Solver = "greedy",
    start: datetime,
    time_limit: float = 10.0,
    horizon: timedelta = timedelta(days=14),
    durations: DurationModel | None = None,
    quantile: float = 0.5,
    num_workers: int = 2,
    random_seed: int = 0,
) -> Plan:
    """Compile ``workflow`` over ``inventory`` and plan it from ``start`` over ``horizon``."""
    return plan_pair(
        workflow,
        inventory,
        start=start,
        quantiles=(quantile,),
        horizon=horizon,
        durations=durations,
        solver=solver,
        time_limit=time_limit,
        num_workers=num_workers,
        random_seed=random_seed,
    )[0]


def solve_problem(
    problem: PlanningProblem,
    *,
    solver: Solver = "greedy",
    time_limit: float = 10.0,
    num_workers: int = 2,
    random_seed: int = 0,
    quantile: float = 0.5,
) -> Plan:
    """Schedule ``problem`` with ``solver`` and wrap the result as a :class:`Plan`."""
    from sysflow.planner.greedy import greedy

    t0 = time.perf_counter()
    g = greedy(problem)
    if solver == "greedy":
        seconds = time.perf_counter() - t0
        return Plan(problem, g.assignment, "greedy", "FEASIBLE", seconds, quantile, rule=g.rule.value)
    from sysflow.planner.cpsat import solve_cpsat

    r = solve_cpsat(
        problem, time_limit=time_limit, num_workers=num_workers, random_seed=random_seed, baseline=g
    )
    note = (f"CP-SAT said {r.solver_status}; kept the greedy plan",) if r.status == "GREEDY" else ()
    return Plan(problem, r.assignment, "cpsat", r.status, time.perf_counter() - t0, quantile, note)
