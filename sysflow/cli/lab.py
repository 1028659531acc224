"""``sysflow lab up/down/status``: start and stop a throwaway local OpenSSH fleet (sysflow.lab)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sysflow.cli.commands import EXIT_CONFLICT, guard

__all__ = ["lab_app"]

DEFAULT_DIR = Path("sysflow-lab")

lab_app = typer.Typer(
    name="lab",
    help="A throwaway local OpenSSH fleet on loopback aliases, to try `sysflow run` over real SSH.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DirOpt = Annotated[Path, typer.Option("--dir", help="Directory of the lab's keys, configs and state.")]


@lab_app.command("up")
def up(
    hosts: Annotated[
        int, typer.Option("--hosts", help="Number of hosts (web, db, cache; 2 datacenters).")
    ] = 8,
    directory: DirOpt = DEFAULT_DIR,
    port: Annotated[int, typer.Option("--port", help="SSH port on every alias (0: a free one).")] = 0,
    fail: Annotated[
        str | None,
        typer.Option("--fail", help="Mark this host lab_fail=yes (examples/lab-patching.yaml fails it)."),
    ] = None,
) -> None:
    """Start sshd on loopback aliases 127.77.1.x and write keys, known_hosts, ssh_config, inventory.

    Examples:

      sysflow lab up --hosts 8

      sysflow lab up --dir /tmp/lab --fail db02

    Exit codes: 0 up, 1 sshd missing or not starting, 4 a lab is already up in that directory.
    """
    from sysflow.lab import LabBusy, lab_up

    with guard("lab up"):
        try:
            lab = lab_up(directory, hosts, port, fail)
        except LabBusy as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(EXIT_CONFLICT) from None
    rel = _shown(lab.directory)
    pids = ", ".join(str(p) for p in lab.pids)
    typer.echo(f"lab up: {len(lab.hosts)} hosts on 127.77.1.1-{len(lab.hosts)} port {lab.port}, "
               f"user {lab.user}, sshd pid {pids}")  # fmt: skip
    for path in lab.files:
        typer.echo(f"  wrote {_shown(path)}")
    typer.echo("next:")
    typer.echo(
        f"  sysflow run examples/lab-patching.yaml -i {rel}/inventory.ini --ssh-config {rel}/ssh_config"
        " --approve-all"
    )
    typer.echo(f"  ssh -F {rel}/ssh_config {lab.hosts[0].name} uname -r")
    typer.echo(f"  sysflow lab down{'' if directory == DEFAULT_DIR else f' --dir {rel}'}")


@lab_app.command("down")
def down(directory: DirOpt = DEFAULT_DIR) -> None:
    """Stop exactly the lab's own sshd processes (PID and start time) and remove its runtime files.

    Examples:

      sysflow lab down

    Exit codes: 0 stopped, or nothing was running.
    """
    from sysflow.lab import lab_down

    with guard("lab down"):
        stopped = lab_down(directory)
    if stopped:
        typer.echo(f"lab down: stopped sshd pid {', '.join(str(p) for p in stopped)} ({_shown(directory)})")
    else:
        typer.echo(f"lab down: nothing running in {_shown(directory)}")


@lab_app.command("status")
def status(directory: DirOpt = DEFAULT_DIR) -> None:
    """Say whether a lab is up in the directory, with its sshd PIDs.

    Examples:

      sysflow lab status --dir /tmp/lab

    Exit codes: 0 up, 3 no lab running there.
    """
    from sysflow.lab import running_pids

    pids = running_pids(directory.resolve())
    if not pids:
        typer.echo(f"no lab running in {_shown(directory)}")
        raise typer.Exit(3)
    typer.echo(f"lab up in {_shown(directory)}: sshd pid {', '.join(str(p) for p in pids)}")


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is below it (shorter commands to copy)."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
