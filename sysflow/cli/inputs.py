"""Loading the inputs every command shares (workflow + inventory), and the one way of failing on them.

Kept apart from the command modules so that none of them imports the app that registers it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from sysflow.model.inventory import Inventory
    from sysflow.model.workflow import MaintenanceWorkflow

__all__ = [
    "EXIT_INVALID",
    "KeyOpt",
    "KnownHostsOpt",
    "PassphraseEnvOpt",
    "SSHConfigOpt",
    "StateOpt",
    "load_inputs",
]

EXIT_INVALID = 1

SSHConfigOpt = Annotated[Path | None, typer.Option("--ssh-config", help="OpenSSH client config.")]
KeyOpt = Annotated[Path | None, typer.Option("--key", help="Private key file (default: ssh-agent).")]
PassphraseEnvOpt = Annotated[
    str | None, typer.Option("--passphrase-env", help="Environment variable holding the key's passphrase.")
]
KnownHostsOpt = Annotated[Path | None, typer.Option("--known-hosts", help="known_hosts file.")]
StateOpt = Annotated[
    Path | None,
    typer.Option(
        "--store",
        "--state",
        help="Run store (SQLite), one lease authority for every controller that uses it; default:"
        " $SYSFLOW_STORE, else /var/lib/sysflow/state.db as root, else"
        " ${XDG_STATE_HOME:-~/.local/state}/sysflow/state.db.",
    ),
]


def _fail(lines: list[str], summary: str) -> typer.Exit:
    for line in lines:
        typer.echo(line, err=True)
    typer.echo(summary, err=True)
    return typer.Exit(EXIT_INVALID)


def _problem_lines(exc: Exception) -> list[str]:
    problems = getattr(exc, "problems", None)
    if problems:
        return [str(p) for p in problems]
    return [f"error: {exc}"]


def load_inputs(
    workflow: Path, inventory: Path, ssh_config: Path | None
) -> tuple[MaintenanceWorkflow, Inventory]:
    """Load a workflow and an inventory; problems of both are raised together as a WorkflowError."""
    from sysflow.errors import InventoryError, Problem, WorkflowError
    from sysflow.model.inventory import Inventory
    from sysflow.model.workflow import MaintenanceWorkflow

    problems: list[Problem] = []
    wf: MaintenanceWorkflow | None = None
    inv: Inventory | None = None
    try:
        wf = MaintenanceWorkflow.from_file(workflow)
    except WorkflowError as exc:
        problems.extend(exc.problems)
    try:
        inv = Inventory.load(inventory)
        if ssh_config is not None:
            for host in inv.hosts:
                inv.connection(host, ssh_config)
    except InventoryError as exc:
        problems.extend(exc.problems)
    if problems or wf is None or inv is None:
        if wf is not None:  # the inventory failed: still show what the workflow alone gets wrong
            problems.extend(wf.problems())
        raise WorkflowError(problems)
    return wf, inv
