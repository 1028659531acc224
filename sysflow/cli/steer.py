"""Steering a run from another shell: ``sysflow approve``, ``pause`` and ``cancel``.

Each writes a control the run's own process reads from the store (``sysflow.cli.control``),
recorded with the operator's name; errors become one line on stderr (``guard``).
"""

from __future__ import annotations

from typing import Annotated

import typer

from sysflow.cli.commands import RunArg, guard, store_path
from sysflow.cli.control import approve_run, cancel_run, operator_name, pause_run, run_views
from sysflow.cli.inputs import StateOpt

__all__ = ["approve", "cancel", "pause", "register_steering"]


def approve(
    run_id: RunArg,
    wave: Annotated[int, typer.Option("--wave", help="The wave (1-based) whose gate to approve.")] = 0,
    state: StateOpt = None,
) -> None:
    """Approve the manual gate before a wave of a running (or interrupted) run.

    Examples:

      sysflow approve os_patching-20261129T010000-3f2a1b --wave 2

    Exit codes: 0 approved, 1 bad --wave, 3 no such run, 4 the run already finished.
    """
    with guard(f"approve {run_id}"):
        target = wave or (run_views(store_path(state), run_id)[0].wave + 1)
        typer.echo(approve_run(store_path(state), run_id, target, operator_name()))


def pause(run_id: RunArg, state: StateOpt = None) -> None:
    """Pause a live run: running operations finish, nothing new starts until `sysflow resume RUN`.

    Examples:

      sysflow pause os_patching-20261129T010000-3f2a1b

    Exit codes: 0 pause requested, 3 no such run, 4 finished, already paused or its process gone.
    """
    with guard(f"pause {run_id}"):
        typer.echo(pause_run(store_path(state), run_id, operator_name()))


def cancel(run_id: RunArg, state: StateOpt = None) -> None:
    """Cancel a run: nothing new starts, running operations finish.

    Examples:

      sysflow cancel os_patching-20261129T010000-3f2a1b

    Exit codes: 0 cancelled (or requested), 3 no such run, 4 the run already finished.
    """
    with guard(f"cancel {run_id}"):
        typer.echo(cancel_run(store_path(state), run_id, operator_name()))


def register_steering(app: typer.Typer) -> None:
    """Add approve, pause and cancel to the root ``sysflow`` app."""
    for command in (approve, pause, cancel):
        app.command(command.__name__)(command)
