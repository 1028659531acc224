"""The ``sysflow`` command line. Commands import what they need lazily so ``--help`` stays fast.

Exit codes (every command):

* 0: success (the run completed and every host succeeded; the audit log is intact);
* 1: the run failed, was cancelled or rolled back, or completed with failed hosts (status
  ``completed_with_failures``: failures within the thresholds); or invalid input (every problem
  printed, one per line, never a traceback);
* 2: usage errors (typer's own: unknown option, missing argument);
* 3: not found (no such run, run store, audit log or Ray job);
* 4: conflict (hosts leased by another run, or the run already finished);
* 130: interrupted (Ctrl-C).

``--debug`` (before the command) shows tracebacks. Command bodies live in ``sysflow.cli.run``,
``sysflow.cli.control``, ``.audit``, ``.demo`` and ``.jobs``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sysflow.cli.audit import audit_app
from sysflow.cli.commands import DEBUG, register
from sysflow.cli.exec import sysflow_exec
from sysflow.cli.init import init_command
from sysflow.cli.inputs import EXIT_INVALID, TzOpt, _fail, _problem_lines, load_inputs
from sysflow.cli.inventory import inventory_app
from sysflow.cli.lab import lab_app
from sysflow.cli.patch import patch_app
from sysflow.cli.ping import ping
from sysflow.cli.schedule import schedule_app, scheduler_command
from sysflow.cli.serve import register_service
from sysflow.cli.steer import register_steering
from sysflow.cli.windows import windows_command

if TYPE_CHECKING:
    from sysflow.cli.plan import PlanOptions
    from sysflow.model.inventory import Inventory
    from sysflow.model.workflow import MaintenanceWorkflow
    from sysflow.planner.graph import OpGraph


def _plain_flags() -> None:
    """Show boolean flags as flags in ``--help`` (``--dry-run``), not as options taking a value.

    typer 0.29's rich help prints a type column for every option, ``<bool>`` for a flag (``--help``
    included), which reads as if ``--dry-run`` wanted an argument. A flag takes none: show no type.
    Applies to every command of every sub-app (they share typer's option class).
    """
    from typer._click import Context
    from typer.core import TyperOption

    original = TyperOption.display_type_rich
    if getattr(original, "plain_flags", False):
        return

    def display_type_rich(self: TyperOption, ctx: Context) -> str | None:
        if self.is_flag and self.metavar is None:
            return None
        return original(self, ctx)

    display_type_rich.plain_flags = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_plain_flags()

app = typer.Typer(
    name="sysflow",
    help="Agentless fleet maintenance: plan into windows, roll out in waves, verify, roll back.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
) -> None:
    """sysflow: plan, run and verify maintenance across a fleet over SSH.

    Exit codes: 0 ok, 1 run failed or invalid input, 2 usage, 3 not found, 4 conflict, 130 interrupted.
    """
    DEBUG["on"] = debug


def summary_lines(wf: MaintenanceWorkflow, graph: OpGraph, inventory: Inventory) -> list[str]:
    """The human summary ``sysflow validate`` prints for a valid workflow."""
    groups = sorted({g for op in graph for g in op.groups})
    sizes = ", ".join(str(len(w)) for w in graph.waves)
    hooks = sum(1 for op in graph if op.run_once)
    return [
        f"workflow    {wf.name}: {len(wf.tasks)} tasks, rollout {wf.rollout.strategy.value}",
        f"hosts       {len(graph.hosts)} of {len(inventory.hosts)} in the inventory",
        f"groups      {len(groups)}: {', '.join(groups)}",
        f"operations  {len(graph)}" + (f" ({hooks} run-once)" if hooks else ""),
        f"waves       {len(graph.waves)} (hosts per wave: {sizes}); {len(graph.gates)} gates",
    ]


@app.command()
def validate(
    workflow: Annotated[Path, typer.Argument(help="Workflow file (YAML or JSON).")],
    inventory: Annotated[Path, typer.Option("--inventory", "-i", help="Inventory (Ansible INI/YAML).")],
    ssh_config: Annotated[
        Path | None, typer.Option("--ssh-config", help="OpenSSH client config to resolve hosts with.")
    ] = None,
) -> None:
    """Check a workflow against an inventory: print a summary, or every problem (exit 1)."""
    from sysflow.errors import SysflowError
    from sysflow.planner.compile import compile_workflow

    try:
        wf, inv = load_inputs(workflow, inventory, ssh_config)
        graph = compile_workflow(wf, inv)
    except SysflowError as exc:
        lines = _problem_lines(exc)
        at_fault = getattr(exc, "source", None) or workflow  # the file(s) at fault, not always the workflow
        raise _fail(lines, f"{at_fault}: invalid, {len(lines)} problem(s)") from None
    except (OSError, ValueError) as exc:  # anything else the inputs can cause, still without a traceback
        raise _fail([f"error: {exc}"], f"{workflow}: invalid") from None
    typer.echo(f"{workflow}: valid")
    for line in summary_lines(wf, graph, inv):
        typer.echo(f"  {line}")


@app.command()
def schema() -> None:
    """Print the JSON Schema of workflow files (for editors and CI)."""
    import json

    from sysflow.model.workflow import MaintenanceWorkflow

    typer.echo(json.dumps(MaintenanceWorkflow.model_json_schema(), indent=2))


def _plan_options(
    solver: str, time_limit: float, start: str | None, what: str, tz: str | None = None
) -> PlanOptions:
    """The planner options ``plan`` and ``forecast`` share, checked: a bad value is one line."""
    from sysflow.cli.plan import PlanOptions, parse_start
    from sysflow.cli.timefmt import parse_tz

    if solver not in ("greedy", "cpsat"):
        raise _fail([f"error: --solver must be greedy or cpsat, not {solver!r}"], f"{what}: invalid")
    try:
        parse_start(start)
    except ValueError as exc:
        raise _fail([f"error: {exc}"], f"{what}: invalid") from None
    try:
        parse_tz(tz or "UTC")
    except ValueError as exc:
        raise _fail([], f"error: {exc}") from None
    return PlanOptions(solver=solver, time_limit=time_limit, start=start, tz=tz)  # type: ignore[arg-type]


def _cannot(exc: Exception, workflow: Path, verb: str) -> str:
    """The summary line of a failed plan or forecast: names the file that is wrong when it is known."""
    source = getattr(exc, "source", None)
    return f"{source}: invalid, cannot {verb}" if source else f"{workflow}: cannot {verb}"


SolverOpt = Annotated[str, typer.Option(help="greedy or cpsat.")]
TimeLimitOpt = Annotated[float, typer.Option("--time-limit", help="CP-SAT seconds.")]
StartOpt = Annotated[str | None, typer.Option(help="Plan from this ISO 8601 time (default: now).")]


@app.command("plan")
def plan_cmd(
    workflow: Annotated[Path, typer.Argument(help="Workflow file (YAML or JSON).")],
    inventory: Annotated[Path, typer.Option("--inventory", "-i", help="Inventory (Ansible INI/YAML).")],
    solver: SolverOpt = "greedy",
    time_limit: TimeLimitOpt = 10.0,
    start: StartOpt = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the plan as JSON.")] = None,
    gantt: Annotated[Path | None, typer.Option(help="Write a Gantt chart (.png or .html).")] = None,
    tz: TzOpt = None,
    show: Annotated[
        bool, typer.Option("--show", help="Also print each host's rendered command per wave and window.")
    ] = False,
    show_all: Annotated[
        bool, typer.Option("--all", help="With --show: every host (default: 10 per task).")
    ] = False,
) -> None:
    """Plan a workflow into its maintenance windows and print what fits."""
    from sysflow.cli.plan import plan_command
    from sysflow.errors import SysflowError

    options = _plan_options(solver, time_limit, start, "plan", tz)
    try:
        plan_command(
            workflow,
            inventory,
            options,
            json_out=json_out,
            gantt=gantt,
            echo=typer.echo,
            show=show,
            show_all=show_all,
        )
    except (SysflowError, OSError, ValueError) as exc:
        raise _fail(_problem_lines(exc), _cannot(exc, workflow, "plan")) from None


@app.command("forecast")
def forecast_cmd(
    workflow: Annotated[Path, typer.Argument(help="Workflow file (YAML or JSON).")],
    inventory: Annotated[Path, typer.Option("--inventory", "-i", help="Inventory (Ansible INI/YAML).")],
    solver: SolverOpt = "greedy",
    time_limit: TimeLimitOpt = 10.0,
    start: StartOpt = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the forecast as JSON.")] = None,
    tz: TzOpt = None,
) -> None:
    """Print per window and group how many hosts fit at p50 and p90, and what binds."""
    from sysflow.cli.plan import forecast_command
    from sysflow.errors import SysflowError

    options = _plan_options(solver, time_limit, start, "forecast", tz)
    try:
        forecast_command(workflow, inventory, options, json_out=json_out, echo=typer.echo)
    except (SysflowError, OSError, ValueError) as exc:
        raise _fail(_problem_lines(exc), _cannot(exc, workflow, "forecast")) from None


register(app)
register_steering(app)
app.add_typer(audit_app, name="audit")
app.command("windows")(windows_command)
app.add_typer(schedule_app, name="schedule")
app.add_typer(lab_app, name="lab")
app.add_typer(inventory_app, name="inventory")
app.add_typer(patch_app, name="patch")
app.command("scheduler")(scheduler_command)
app.command("exec")(sysflow_exec)
app.command("ping")(ping)
app.command("init")(init_command)
register_service(app)


def main() -> None:
    """Entry point of the ``sysflow`` console script (and ``python -m sysflow``).

    The last line of defence of "never a traceback": output that cannot be written (stdout on a full
    disk, a closed terminal) and any error no command turned into its line end here as one line on
    stderr and exit 1; ``sysflow --debug ...`` shows the traceback instead.
    """
    try:
        app()
    except Exception as exc:  # every command's own errors were handled already: what is left is here
        if DEBUG["on"]:
            raise
        _last_line(exc)
        raise SystemExit(EXIT_INVALID) from None


def _last_line(exc: Exception) -> None:
    import os
    import sys

    if isinstance(exc, OSError) and exc.filename is None:  # writing the output failed
        line = f"error: cannot write the output: {exc.strerror or exc}"
        with contextlib.suppress(OSError, ValueError):  # nothing more is written to it, not even at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    else:
        line = f"error: {type(exc).__name__}: {exc} (a bug in sysflow: `sysflow --debug ...` shows where)"
    with contextlib.suppress(OSError, ValueError):
        print(line, file=sys.stderr, flush=True)
