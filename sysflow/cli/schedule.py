"""``sysflow schedule add | list | show | pause | resume | remove | export`` and ``sysflow scheduler``.

Only typer is imported at module level: ``sysflow --help`` stays fast. Every command works on one
run store (``--store``/``--state``, default :func:`sysflow.engine.store.default_store_path`); errors print
one line each and exit 1 (invalid input: a bad ``--when``, workflow or inventory) or 3 (no such schedule).
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sysflow.cli.inputs import EXIT_INVALID, StateOpt

if TYPE_CHECKING:
    from sysflow.engine.store import RunStore
    from sysflow.schedule.model import Schedule
    from sysflow.schedule.scheduler import Scheduler
    from sysflow.schedule.schedules import Schedules

__all__ = ["schedule_app", "scheduler_command"]

EXIT_NOT_FOUND = 3
_UPCOMING = 3  # next occurrences shown by `schedule show`
_LOOKAHEAD = timedelta(days=400)

schedule_app = typer.Typer(
    name="schedule",
    help="Recurring maintenance: schedules that start runs in their windows.",
    no_args_is_help=True,
)

NameArg = Annotated[str, typer.Argument(help="Schedule name.")]


@contextmanager
def _store(state: Path | None) -> Iterator[RunStore]:
    """The run store; errors inside become their lines and the documented exit code (never 2, which
    is typer's usage errors): 3 for a schedule that does not exist, 1 for any other invalid input."""
    from sysflow.cli.commands import DEBUG
    from sysflow.engine.store import RunStore
    from sysflow.errors import StoreError, SysflowError

    try:
        with RunStore(state) as store:
            yield store
    except (SysflowError, ValueError, OSError) as exc:
        if DEBUG["on"]:
            raise
        problems = getattr(exc, "problems", None)
        for line in [str(p) for p in problems] if problems else [f"error: {_message(exc)}"]:
            typer.echo(line, err=True)
        missing = isinstance(exc, StoreError) and str(exc).startswith("no schedule named")
        raise typer.Exit(EXIT_NOT_FOUND if missing else EXIT_INVALID) from None


def _message(exc: BaseException) -> str:
    from pydantic import ValidationError

    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror or exc}"
    if isinstance(exc, ValidationError):  # one line, without pydantic's input dump and help link
        lines = []
        for e in exc.errors():
            field, msg = ".".join(str(p) for p in e["loc"]), str(e["msg"]).removeprefix("Value error, ")
            lines.append(f"--{field.replace('_', '-')}: {msg}" if field else msg)  # fields are options
        return "; ".join(lines)
    return str(exc)


@schedule_app.command("add")
def add(
    name: NameArg,
    workflow: Annotated[Path, typer.Argument(help="Workflow file (YAML/JSON); its content is stored.")],
    inventory: Annotated[
        Path, typer.Option("-i", "--inventory", help="Inventory file; its content is stored.")
    ],
    when: Annotated[
        str,
        typer.Option(
            "--when",
            help="'cron \"0 2 * * SUN\"' | 'first|second|third|fourth|last WEEKDAY window of GROUP' "
            "| 'every window of GROUP'.",
        ),
    ],
    timezone: Annotated[str, typer.Option(help="Time zone of a cron recurrence.")] = "UTC",
    missed: Annotated[str, typer.Option(help="skip | run_next_window | catch_up.")] = "skip",
    lease_wait: Annotated[float, typer.Option(help="Seconds to wait for hosts held by another run.")] = 0.0,
    tolerance: Annotated[
        float, typer.Option(help="Seconds after which an occurrence counts as missed.")
    ] = 900.0,
    replace: Annotated[bool, typer.Option(help="Replace a schedule of the same name.")] = False,
    state: StateOpt = None,
) -> None:
    """Add a schedule: a workflow and an inventory bound to a recurrence."""
    from sysflow.cli.inputs import load_inputs
    from sysflow.schedule.model import MissedPolicy, ScheduleSpec
    from sysflow.schedule.recurrence import Recurrence
    from sysflow.schedule.schedules import Schedules

    with _store(state) as store:
        if missed not in {p.value for p in MissedPolicy}:
            choices = ", ".join(p.value for p in MissedPolicy)
            raise ValueError(f"--missed must be one of {choices}, not {missed!r}")
        wf, inv = load_inputs(workflow, inventory, None)
        spec = ScheduleSpec(
            name=name,
            recurrence=Recurrence.parse(when, timezone=timezone),
            missed=MissedPolicy(missed),
            workflow_path=str(workflow.resolve()),
            inventory_path=str(inventory.resolve()),
            lease_wait=lease_wait,
            tolerance=tolerance,
        )
        s = Schedules(store).add(spec, wf, inv, now=datetime.now(UTC), replace=replace)
        typer.echo(f"added {s.name}: {s.spec.recurrence.describe()}, next {_next(s) or 'never'}")


@schedule_app.command("list")
def list_cmd(state: StateOpt = None) -> None:
    """List schedules: name, state, recurrence, missed-run policy, next occurrence."""
    from sysflow.schedule.schedules import Schedules

    with _store(state) as store:
        for s in Schedules(store).list():
            typer.echo(
                f"{s.name}\t{s.state.value}\t{s.spec.recurrence.describe()}\t{s.spec.missed.value}\t{_next(s) or '-'}"
            )


@schedule_app.command("show")
def show(name: NameArg, state: StateOpt = None) -> None:
    """One schedule: its definition, next occurrences, claims and history."""
    from sysflow.schedule.schedules import Schedules

    with _store(state) as store:
        schedules = Schedules(store)
        s = schedules.get(name)
        for line in _describe(s):
            typer.echo(line)
        typer.echo("history:")
        for h in schedules.history(name):
            run = f" run {h.run_id}" if h.run_id else ""
            detail = h.detail.replace("\n", "\n      ")
            typer.echo(f"  {h.at.isoformat()} [{h.occurrence.isoformat()}] {h.event}{run}: {detail}")


def _describe(s: Schedule) -> list[str]:
    now = datetime.now(UTC)
    return [
        f"schedule {s.name} ({s.state.value})",
        f"  when: {s.spec.recurrence.describe()}; missed runs: {s.spec.missed.value}",
        f"  workflow: {s.spec.workflow_path or '-'} (sha256 {s.workflow_digest[:12]})",
        f"  inventory: {s.spec.inventory_path or '-'} (sha256 {s.inventory_digest[:12]})",
        "  next: " + (", ".join(t.isoformat() for t in _upcoming(s, now)) or "-"),
    ]


def _upcoming(s: Schedule, now: datetime) -> list[datetime]:
    from sysflow.model.workflow import MaintenanceWorkflow
    from sysflow.schedule.recurrence import occurrences

    windows = MaintenanceWorkflow.from_json(s.workflow_json).windows
    return occurrences(s.spec.recurrence, windows, max(now, s.cursor), max(now, s.cursor) + _LOOKAHEAD)[
        :_UPCOMING
    ]


def _next(s: Schedule) -> str | None:
    found = _upcoming(s, datetime.now(UTC))
    return found[0].isoformat() if found else None


def _simple(action: Callable[[Schedules, str], object], verb: str) -> Callable[[str, Path], None]:
    def command(name: NameArg, state: StateOpt = None) -> None:
        from sysflow.schedule.schedules import Schedules

        with _store(state) as store:
            action(Schedules(store), name)
            typer.echo(f"{verb} {name}")

    return command


schedule_app.command("pause", help="Stop starting runs for a schedule (its runs in progress go on).")(
    _simple(lambda s, n: s.pause(n), "paused")
)
schedule_app.command("resume", help="Start runs for a paused schedule again (what passed is not made up).")(
    _simple(lambda s, n: s.resume(n, now=datetime.now(UTC)), "resumed")
)
schedule_app.command("remove", help="Remove a schedule (its history stays in the store).")(
    _simple(lambda s, n: s.remove(n), "removed")
)


@schedule_app.command("export")
def export(
    systemd: Annotated[Path, typer.Option("--systemd", help="Directory for .service and .timer units.")],
    command: Annotated[str | None, typer.Option(help="sysflow executable the units run.")] = None,
    state: StateOpt = None,
) -> None:
    """Write a systemd service and timer pair per schedule (an alternative to `sysflow scheduler`)."""
    from sysflow.schedule.schedules import Schedules
    from sysflow.schedule.systemd import export_systemd

    exe = command or shutil.which("sysflow")
    argv = [exe] if exe else [sys.executable, "-m", "sysflow.cli"]
    with _store(state) as store:
        for path in export_systemd(Schedules(store).list(), systemd, state=Path(store.path), command=argv):
            typer.echo(str(path))


def scheduler_command(
    state: StateOpt = None,
    audit: Annotated[
        Path | None, typer.Option(help="Audit log (default: audit.db beside the store).")
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="One pass, wait for its runs, exit (systemd).")
    ] = False,
    schedule: Annotated[list[str] | None, typer.Option("--schedule", help="Only these schedules.")] = None,
    poll: Annotated[float, typer.Option(help="Seconds between passes at most.")] = 60.0,
    forecast: Annotated[bool, typer.Option(help="Record a forecast before each run.")] = True,
) -> None:
    """Run the scheduler: start each schedule's runs when their windows open, with history."""
    from sysflow.audit.log import AuditLog
    from sysflow.schedule.scheduler import Scheduler
    from sysflow.schedule.schedules import Schedules

    if not poll > 0:  # also refuses nan
        typer.echo(f"error: --poll must be a number of seconds above 0, not {poll}", err=True)
        raise typer.Exit(EXIT_INVALID)
    with _store(state) as store:
        for name in schedule or ():
            Schedules(store).get(name)  # a misspelt --schedule is "not found", not a scheduler that idles
        with AuditLog(audit or Path(store.path).parent / "audit.db") as log:
            scheduler = Scheduler(store, audit=log, names=schedule or None, poll=poll, forecast=forecast)
            asyncio.run(_serve(scheduler, once=once))


async def _serve(scheduler: Scheduler, *, once: bool) -> None:
    """SIGTERM/SIGINT stop new starts; runs in progress are waited for (``systemctl stop`` is clean)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, scheduler.stop)
    try:
        await (scheduler.run_once() if once else scheduler.run())
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
