"""``sysflow exec PATTERN -i INV -- COMMAND``: an ad-hoc command on the matched hosts, like
``ansible PATTERN -m shell -a COMMAND``.

It builds a one-task workflow in memory and runs it through the same path as ``sysflow run``
(Run → BackendRunner → HostPool → Transport), so host keys, leases, the run store and the audit
log apply; every host runs even when others fail; windows are off unless ``--in-window FILE``.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sysflow.cli.inputs import (
    AskBecomePassOpt,
    BecomeOpt,
    BecomeUserOpt,
    KeyOpt,
    KnownHostsOpt,
    PassphraseEnvOpt,
    SSHConfigOpt,
    StateOpt,
    VerboseOpt,
)
from sysflow.cli.targeting import ExtraVarsOpt, ForksOpt, Targeting

if TYPE_CHECKING:
    from sysflow.engine.result import OpRecord, RunResult
    from sysflow.model.inventory import Inventory
    from sysflow.model.workflow import MaintenanceWorkflow

__all__ = ["adhoc_workflow", "exec_lines", "sysflow_exec"]

TASK_ID = "adhoc"
DEFAULT_LINES = 20  # stdout lines shown per host; the store keeps more (sysflow logs RUN HOST)


def adhoc_workflow(
    pattern: str, command: str, *, timeout: float | None = None, windows: Path | None = None
) -> MaintenanceWorkflow:
    """One task, ``command`` on the hosts of ``pattern``, one wave in which failures stop nothing."""
    from sysflow.model.workflow import MaintenanceWorkflow

    wf = MaintenanceWorkflow("exec", description=f"sysflow exec {pattern}")
    wf.add_task(TASK_ID, command, timeout=timeout, description="ad-hoc command (sysflow exec)")
    wf.set_progressive_execution({"strategy": "waves", "max_failures": "100%"})
    if windows is not None:
        wf.set_maintenance_window(_windows_file(windows))
    return wf


def _windows_file(path: Path) -> dict[str, object]:
    """A ``windows:`` section (the workflow's form) read from its own YAML file."""
    import yaml

    from sysflow.errors import Problem, WorkflowError
    from sysflow.model.loader import read_bounded

    data = yaml.safe_load(read_bounded(path, "windows file"))
    if not isinstance(data, dict):
        raise WorkflowError(
            [Problem("a windows file is a mapping (the workflow's windows: section)", str(path))]
        )
    section = data.get("windows", data)
    return dict(section) if isinstance(section, dict) else {}


def exec_lines(result: RunResult, inventory: Inventory, lines: int = DEFAULT_LINES) -> list[str]:
    """Per host, Ansible's ad-hoc form: ``web01 | OK | rc=0`` then its stdout (failures: stderr too)."""
    records = {r.host: r for r in result.ops.values() if r.task == TASK_ID}
    out: list[str] = []
    counts = {"ok": 0, "failed": 0}
    for host in (h.name for h in inventory):
        record = records.get(host)
        ok = record is not None and record.exit_status == 0 and not record.error
        counts["ok" if ok else "failed"] += 1
        out.extend(_host_lines(host, record, lines, result.run_id))
    out.append(f"exec {result.run_id}: {counts['ok']} ok, {counts['failed']} failed")
    return out


def _host_lines(host: str, record: OpRecord | None, lines: int, run_id: str) -> list[str]:
    from sysflow.cli.views import printable, tail

    if record is None or (record.start is None and not record.error):
        reason = record.reason if record is not None and record.reason else "not run"
        return [f"{host} | SKIPPED | {printable(reason)}"]
    if record.exit_status is None:
        return [f"{host} | UNREACHABLE | {printable(record.error or record.state.value)}"]
    status = "OK" if record.exit_status == 0 and not record.error else "FAILED"
    head = f"{host} | {status} | rc={record.exit_status}"
    shown, before = _head(record.stdout, lines)
    body = [*shown, *([f"  ... {before} more lines: sysflow logs {run_id} {host}"] if before else [])]
    if status == "FAILED":
        err, _ = tail(record.stderr, lines)
        body += [f"stderr: {line}" for line in err]
    return [head, *body]


def _echo(json_lines: bool) -> Callable[[str], None]:
    """Per-host lines go to stderr when stdout carries JSON Lines."""
    return (lambda line: typer.echo(line, err=True)) if json_lines else typer.echo


def _head(text: str, lines: int) -> tuple[list[str], int]:
    """The first ``lines`` lines of ``text`` and how many follow."""
    from sysflow.cli.views import tail

    found, _ = tail(text, 0)
    return found[:lines], max(0, len(found) - lines)


def sysflow_exec(
    pattern: Annotated[str, typer.Argument(help="Hosts: an Ansible pattern, @FILE or @failed:RUN.")],
    command: Annotated[list[str], typer.Argument(help="The command (after --), run by the login shell.")],
    inventory: Annotated[Path, typer.Option("--inventory", "-i", help="Inventory (Ansible INI/YAML).")],
    ssh_config: SSHConfigOpt = None,
    key: KeyOpt = None,
    passphrase_env: PassphraseEnvOpt = None,
    known_hosts: KnownHostsOpt = None,
    become: BecomeOpt = False,
    become_user: BecomeUserOpt = None,
    ask_become_pass: AskBecomePassOpt = False,
    audit: Annotated[Path | None, typer.Option("--audit", help="Append to this audit log (SQLite).")] = None,
    state: StateOpt = None,
    forks: ForksOpt = None,
    extra_vars: ExtraVarsOpt = None,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Stop the command after N s.")] = None,
    in_window: Annotated[
        Path | None,
        typer.Option("--in-window", help="Start only inside these windows (a YAML windows: section)."),
    ] = None,
    lines: Annotated[int, typer.Option("--lines", help="Stdout lines shown per host.")] = DEFAULT_LINES,
    verbose: VerboseOpt = 0,
    json_lines: Annotated[
        bool, typer.Option("--json", help="Stream events as JSON Lines on stdout.")
    ] = False,
) -> None:
    """Run an ad-hoc command on the hosts PATTERN matches, through the same engine as `run`.

    Examples:

      sysflow exec 'web*:!web03' -i hosts.ini -- uptime

      sysflow exec @failed:RUN_ID -i hosts.ini --forks 5 -b -- systemctl restart nginx

    The command is a template like a task's `run` ({{ vars.x }}, {{ host.name }}; -e sets vars).
    Exit codes: 0 every host succeeded, 1 a host failed or invalid input, 3 no such file or run,
    4 hosts leased by another run.
    """
    from sysflow.cli.become import ask_become_password, with_become_flags
    from sysflow.cli.commands import guard, store_path
    from sysflow.cli.preflight import with_config_known_hosts
    from sysflow.cli.progress import ProgressMode
    from sysflow.cli.run import RunSetup, SSHOptions, run_live
    from sysflow.cli.targeting import narrow
    from sysflow.errors import InventoryError
    from sysflow.model.inventory import Inventory

    with guard("exec"):
        text = " ".join(command)
        inv = Inventory.load(inventory)
        if problems := inv.connection_problems():
            raise InventoryError(problems, source=str(inventory))
        wf = with_become_flags(
            adhoc_workflow(pattern, text, timeout=timeout, windows=in_window), become, become_user
        )
        aim = Targeting(
            limit=pattern, extra_vars=extra_vars or (), forks=forks, store=state, limit_name="pattern"
        )
        wf, inv = narrow(wf, inv, aim)
        mode = ProgressMode.JSON if json_lines else ProgressMode.QUIET
        setup = RunSetup(mode=mode, out=sys.stdout, audit=audit, state=store_path(state), approve_all=True)
        secret = ask_become_password(ask_become_pass)
        ssh = SSHOptions(
            ssh_config, key, known_hosts, passphrase_env, become_password=secret, verbose=verbose
        )
        ssh = with_config_known_hosts(ssh, inv, inv.hosts)
        result = run_live(wf, inv, ssh, setup)
        echo = _echo(json_lines)
        for line in exec_lines(result, inv, lines):
            echo(line)
        if result.failed_servers:
            store = f" --store {shlex.quote(str(state))}" if state is not None else ""
            echo(f"  re-run the failed hosts: sysflow exec @failed:{result.run_id} -i "
                 f"{shlex.quote(str(inventory))}{store} -- {shlex.quote(text)}")  # fmt: skip
    raise typer.Exit(0 if result.ok else 1)
