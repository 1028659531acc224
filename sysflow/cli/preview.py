"""``sysflow run --check`` (and ``plan --show``): what a run would do, without connecting anywhere.

Per wave and window (times in the window's zone): each task's command rendered per host with the
run's own template rendering (secrets masked), the predicted start and end; then what the gate
after the wave runs; then one summary line. Hosts per task and wave are capped at
``HOSTS_PER_TASK`` unless ``show_all`` (``--all``): a 1,000-host wave stays readable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sysflow.cli.views import plural

if TYPE_CHECKING:
    from sysflow.cli.timefmt import DisplayZone
    from sysflow.model.inventory import Inventory
    from sysflow.model.workflow import MaintenanceWorkflow
    from sysflow.planner.graph import Gate, Operation, OpGraph
    from sysflow.planner.plan import Plan, PlannedOp

__all__ = ["HOSTS_PER_TASK", "preview_lines"]

HOSTS_PER_TASK = 10  # hosts listed per task per wave without --all
AT_RUN_TIME = "(rendered at run time: needs {what})"


def preview_lines(
    workflow: MaintenanceWorkflow,
    inventory: Inventory,
    *,
    show_all: bool = False,
    start: datetime | None = None,
    tz: str | None = None,
    plan: Plan | None = None,
) -> list[str]:
    """The preview of a run of ``workflow`` on ``inventory`` starting at ``start`` (default now), or
    of ``plan`` when given (``plan --show`` passes the one it printed)."""
    from sysflow.cli.run import forecast_plan
    from sysflow.cli.timefmt import display_zone
    from sysflow.planner.compile import compile_workflow

    graph = compile_workflow(workflow, inventory)
    plan = plan or forecast_plan(workflow, inventory, start or datetime.now(UTC))
    zone = display_zone(tz, workflow)
    planned = list(plan.ops())
    renderer = _Renderer(workflow, inventory)
    lines = [f"preview of {workflow.name}: nothing is connected to or run ({zone.header()})"]
    for wave in sorted({p.wave for p in planned}):
        in_wave = [p for p in planned if p.wave == wave]
        lines += _wave_lines(wave, in_wave, graph, renderer, zone, show_all)
        gate = next((g for g in graph.gates if g.wave == wave), None)
        if gate is not None:
            lines += _gate_lines(gate, workflow, renderer)
    lines += _unplanned_lines(plan.deferred)
    finish = max((p.end for p in planned), default=None)
    hosts = len({p.host for p in planned})
    waves = len({p.wave for p in planned})
    end = zone.fmt(finish) if finish is not None else "nothing planned"
    lines.append(
        f"{plural(hosts, 'host')}, {plural(len(planned), 'operation')}, {plural(waves, 'wave')}; predicted finish {end}"
    )
    return lines


def _span(zone: DisplayZone, start: datetime, end: datetime) -> str:
    """``02:00–02:12 Europe/Amsterdam`` (the date too when the span starts another day)."""
    a, b = zone.local(start), zone.local(end)
    first = f"{a:%Y-%m-%d %H:%M}"
    last = f"{b:%H:%M}" if a.date() == b.date() else f"{b:%Y-%m-%d %H:%M}"
    return f"{first}\u2013{last} {zone.name}"


def _wave_lines(
    wave: int,
    planned: list[PlannedOp],
    graph: OpGraph,
    renderer: _Renderer,
    zone: DisplayZone,
    show_all: bool,
) -> list[str]:
    hosts = sorted({p.host for p in planned})
    lines = [f"wave {wave + 1}: {plural(len(hosts), 'host')}"]
    windows: dict[tuple[datetime, datetime], list[PlannedOp]] = {}
    for p in planned:
        windows.setdefault((p.window_start, p.window_end), []).append(p)
    for (w_start, w_end), ops in sorted(windows.items()):
        lines.append(f"  window {_span(zone, w_start, w_end)}")
        tasks: dict[str, list[PlannedOp]] = {}
        for p in ops:
            tasks.setdefault(p.task, []).append(p)
        for task, rows in tasks.items():
            lines.append(f"    task {task} ({plural(len(rows), 'host')})")
            shown = rows if show_all else rows[:HOSTS_PER_TASK]
            width = max(len(r.host) for r in shown)
            for r in shown:
                command = renderer.command(graph.ops[r.op])
                when = f"{zone.local(r.start):%H:%M}\u2013{zone.local(r.end):%H:%M}"
                lines.append(f"      {r.host.ljust(width)}  {when}  {command}")
            if len(rows) > len(shown):
                lines.append(
                    f"      ... and {plural(len(rows) - len(shown), 'more host')} (--all lists every host)"
                )
    return lines


def _gate_lines(gate: Gate, workflow: MaintenanceWorkflow, renderer: _Renderer) -> list[str]:
    tasks = {t.id: t for t in workflow.tasks}
    lines = [f"  gate after wave {gate.wave + 1}:"]
    for task_id in gate.verification_tasks:
        task = tasks.get(task_id)
        lines.append(
            f"    verification task {task_id}: {renderer.plain(task.run) if task is not None else '?'}"
        )
    for name in gate.verifications:
        spec = workflow.verifications.get(name)
        for probe, p in spec.commands.items() if spec is not None else ():
            lines.append(f"    verification {name}.{probe}: {renderer.plain(p.command)}")
    for check in workflow.rollout.analysis:
        if check.command is None:
            lines.append(f"    analysis {check.name}: PromQL {check.query} at {check.prometheus}")
            continue
        where = check.host or "the controller"
        lines.append(f"    analysis {check.name} on {where}: {renderer.plain(check.command)}")
    if gate.cutover_task:
        lines.append(f"    cut-over task {gate.cutover_task}")
    if gate.pause:
        lines.append(f"    pause {gate.pause:g} s")
    if gate.approval:
        lines.append(f"    manual approval (sysflow approve RUN --wave {gate.wave + 2})")
    return lines if len(lines) > 1 else [*lines, "    nothing to check"]


def _unplanned_lines(deferred: Mapping[str, str]) -> list[str]:
    if not deferred:
        return []
    lines = [f"not planned: {plural(len(deferred), 'host')}"]
    for host, why in list(deferred.items())[:HOSTS_PER_TASK]:
        lines.append(f"  {host}: {why}")
    return lines


class _Renderer:
    """Renders an operation's command as the run would (host, vars), facts and results unknown."""

    def __init__(self, workflow: MaintenanceWorkflow, inventory: Inventory) -> None:
        self._inventory = inventory
        self._secrets = frozenset(workflow.secrets) | frozenset(inventory.secret_names())

    def _context(self, op: Operation) -> dict[str, Any]:
        from sysflow.planner.graph import template_host

        host = template_host(op)
        values = {} if op.host.startswith("@") else self._inventory.host_vars(op.host)
        return {"host": host, "vars": values, "facts": {}, "results": {}}

    def command(self, op: Operation) -> str:
        from sysflow.model.templates import TemplateError, render

        try:
            shown = render(op.command, self._context(op), secrets=self._secrets).redacted
        except TemplateError:
            return f"{op.command}  {AT_RUN_TIME.format(what=_needs(op.command))}"
        return f"[become {op.become}] {shown}" if op.become else shown

    def plain(self, command: str) -> str:
        from sysflow.model.templates import is_template

        return command if not is_template(command) else f"{command}  (a template, rendered per host)"


def _needs(command: str) -> str:
    roots: Iterable[str] = ("facts", "results")
    found = [r for r in roots if f"{r}." in command or f"{r}[" in command]
    return " and ".join(found) or "values known only when it runs"
