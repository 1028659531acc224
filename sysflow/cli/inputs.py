"""Loading the inputs every command shares (workflow + inventory), and the one way of failing on them.

Kept apart from the command modules so that none of them imports the app that registers it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sysflow.actors.hostkeys import HostKeyPolicy

if TYPE_CHECKING:
    from sysflow.model.inventory import Inventory
    from sysflow.model.workflow import MaintenanceWorkflow

__all__ = [
    "EXIT_INVALID",
    "AskBecomePassOpt",
    "BecomeOpt",
    "BecomeUserOpt",
    "HostKeysOpt",
    "KeyOpt",
    "KnownHostsOpt",
    "PassphraseEnvOpt",
    "SSHConfigOpt",
    "StateOpt",
    "TzOpt",
    "VerboseOpt",
    "load_inputs",
]

EXIT_INVALID = 1

SSHConfigOpt = Annotated[Path | None, typer.Option("--ssh-config", help="OpenSSH client config.")]
KeyOpt = Annotated[Path | None, typer.Option("--key", help="Private key file (default: ssh-agent).")]
PassphraseEnvOpt = Annotated[
    str | None, typer.Option("--passphrase-env", help="Environment variable holding the key's passphrase.")
]
KnownHostsOpt = Annotated[Path | None, typer.Option("--known-hosts", help="known_hosts file.")]
HostKeysOpt = Annotated[
    HostKeyPolicy,
    typer.Option(
        "--host-keys",
        help="Host key checking: strict (the key must be in known_hosts), accept-new (trust a host"
        " not yet known: its key is appended to known_hosts and recorded in the audit log; a changed"
        " key still fails), off (no checking; prints a warning).",
    ),
]
BecomeOpt = Annotated[
    bool, typer.Option("--become", "-b", help="Run tasks through sudo (unless a task says become: false).")
]
BecomeUserOpt = Annotated[
    str | None, typer.Option("--become-user", help="User to become (default root; implies --become).")
]
AskBecomePassOpt = Annotated[
    bool, typer.Option("--ask-become-pass", "-K", help="Prompt for the sudo password (hidden; never stored).")
]
VerboseOpt = Annotated[
    int,
    typer.Option(
        "--verbose",
        "-v",
        count=True,
        help="-v: print each host's output as it arrives; -vv: each command as it starts too.",
    ),
]
TzOpt = Annotated[
    str | None,
    typer.Option("--tz", help="Show times in this IANA zone (default: the zone of the workflow's windows)."),
]
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
    if isinstance(exc, OSError) and exc.filename is not None:  # not "[Errno 21] Is a directory: 'd'"
        return [f"error: {exc.filename}: {exc.strerror or exc}"]
    return [f"error: {exc}"]


def load_inputs(
    workflow: Path, inventory: Path, ssh_config: Path | None
) -> tuple[MaintenanceWorkflow, Inventory]:
    """Load a workflow and an inventory; problems of both are raised together as a WorkflowError.

    Its ``source`` names the file(s) at fault (``hosts.ini``, or ``wf.yaml, hosts.ini``), for the
    summary line; connection variables that cannot be used (``ansible_port=22x99``) are problems of
    the inventory here, not failures of the run.
    """
    from sysflow.errors import InventoryError, Problem, WorkflowError
    from sysflow.model.inventory import Inventory
    from sysflow.model.workflow import MaintenanceWorkflow

    wf_problems: list[Problem] = []
    inv_problems: list[Problem] = []
    config_problems: list[Problem] = []
    wf: MaintenanceWorkflow | None = None
    inv: Inventory | None = None
    try:
        wf = MaintenanceWorkflow.from_file(workflow)
    except WorkflowError as exc:
        wf_problems.extend(exc.problems)
    except (OSError, ValueError) as exc:
        wf_problems.append(Problem(_os_message(exc), str(workflow)))
    try:
        from sysflow.sources import DynamicReader  # scripts, plugins and CMDBs of the inventory

        inv = Inventory.load(inventory, DynamicReader())
        inv_problems.extend(inv.connection_problems())
    except InventoryError as exc:
        inv_problems.extend(exc.problems)
    except (OSError, ValueError) as exc:
        inv_problems.append(Problem(_os_message(exc), str(inventory)))
    if inv is not None and ssh_config is not None and not inv_problems:
        try:
            for host in inv.hosts:
                inv.connection(host, ssh_config)
        except InventoryError as exc:
            config_problems.extend(exc.problems)
    if wf_problems or inv_problems or config_problems or wf is None or inv is None:
        extra = wf.problems() if wf is not None else []  # still show what the workflow alone gets wrong
        at_fault = [str(workflow)] if wf_problems or extra else []
        at_fault += [str(inventory)] if inv_problems else []
        at_fault += [str(ssh_config)] if config_problems else []
        problems = wf_problems + inv_problems + config_problems + extra
        raise WorkflowError(problems, source=", ".join(at_fault) or str(workflow))
    return wf, inv


def _os_message(exc: Exception) -> str:
    """An unreadable input as one line: ``cannot read: Permission denied`` rather than errno noise."""
    if isinstance(exc, OSError):
        return f"cannot read: {exc.strerror or exc}"
    return str(exc)
