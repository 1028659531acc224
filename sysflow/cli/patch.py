"""``sysflow patch scan|install|report|windows``: patch baselines over the fleet.

``scan`` runs the read-only scan on the hosts PATTERN matches (any time: no window, no root),
keeps every host's scan in the patch store and prints each host's standing against the baseline;
``install`` scans, installs exactly the approved versions each host lacks (pinned, in waves, in the
windows of ``--windows FILE``, verified, rebooted per the baseline), scans again and prints the
report; ``report`` draws the compliance report from stored scans, for today or ``--as-of DATE``;
``windows`` is ``sysflow windows`` (the windows an install would use, blackouts removed and named).
All runs go through the same path as ``sysflow run`` (run store, host keys, leases, audit).
"""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from sysflow.cli.inputs import (
    AskBecomePassOpt,
    KeyOpt,
    KnownHostsOpt,
    PassphraseEnvOpt,
    SSHConfigOpt,
    StateOpt,
)
from sysflow.cli.windows import windows_command

if TYPE_CHECKING:
    from sysflow.cli.run import SSHOptions
    from sysflow.engine.result import RunResult
    from sysflow.model.inventory import Inventory
    from sysflow.model.workflow import MaintenanceWorkflow
    from sysflow.patch.baseline import Baseline
    from sysflow.patch.records import HostScan
    from sysflow.patch.report import ComplianceReport

__all__ = ["patch_app"]

patch_app = typer.Typer(help="Patch baselines: scan, install approved versions, compliance reports.")

BaselineOpt = Annotated[Path, typer.Option("--baseline", "-B", help="Patch baseline (YAML).")]
PatchStoreOpt = Annotated[
    Path, typer.Option("--patch-store", help="SQLite file of stored scans (created when missing).")
]
FormatOpt = Annotated[
    Literal["markdown", "json", "html"], typer.Option("--format", "-f", help="Report format.")
]
DEFAULT_PATCH_STORE = Path("sysflow-patch.db")


def _run(wf: MaintenanceWorkflow, inv: Inventory, ssh: SSHOptions, state: Path | None) -> RunResult:
    from sysflow.cli.commands import store_path
    from sysflow.cli.progress import ProgressMode
    from sysflow.cli.run import RunSetup, run_live

    setup = RunSetup(mode=ProgressMode.QUIET, out=sys.stderr, state=store_path(state), approve_all=True)
    return run_live(wf, inv, ssh, setup)


def _scan(
    pattern: str, inv: Inventory, ssh: SSHOptions, state: Path | None, baseline: Baseline, store: Path
) -> list[HostScan]:
    from sysflow.model.selection import limited_inventory
    from sysflow.patch.scan import SCAN_TASK, read_scan, scan_workflow
    from sysflow.patch.store import ScanStore

    hosts = inv.select(pattern)
    result = _run(
        scan_workflow(baseline.names, fields=baseline.needs_fields), limited_inventory(inv, hosts), ssh, state
    )
    scans = []
    for host in hosts:
        rec = next((r for r in result.ops_of(host) if r.task == SCAN_TASK), None)
        text = rec.stdout if rec is not None else ""
        at = rec.end if rec is not None and rec.end is not None else datetime.now(UTC)
        scan = read_scan(host, text, at, baseline.names)
        if rec is not None and rec.exit_status not in (0, None) and not scan.error:
            scan = read_scan(host, "", at)
        scans.append(scan)
    ScanStore(store).add(scans, result.run_id)
    return scans


def _inputs(inventory: Path, baseline: Path) -> tuple[Inventory, Baseline]:
    from sysflow.errors import InventoryError
    from sysflow.model.inventory import Inventory
    from sysflow.patch.baseline import Baseline

    inv = Inventory.load(inventory)
    if problems := inv.connection_problems():
        raise InventoryError(problems, source=str(inventory))
    return inv, Baseline.from_file(baseline)


def _ssh(
    inv: Inventory, ssh_config: Path | None, key: Path | None, known_hosts: Path | None,
    passphrase_env: str | None, ask: bool,
) -> SSHOptions:  # fmt: skip
    from sysflow.cli.become import ask_become_password
    from sysflow.cli.preflight import with_config_known_hosts
    from sysflow.cli.run import SSHOptions

    ssh = SSHOptions(ssh_config, key, known_hosts, passphrase_env, become_password=ask_become_password(ask))
    return with_config_known_hosts(ssh, inv, inv.hosts)


def _print(report: ComplianceReport, fmt: str, output: Path | None) -> None:
    text = {"json": report.to_json, "html": report.to_html}.get(fmt, report.to_markdown)()
    if output is not None:
        output.write_text(text)
        typer.echo(f"report written to {output}")
    else:
        typer.echo(text, nl=False)


@patch_app.command("scan")
def patch_scan(
    pattern: Annotated[str, typer.Argument(help="Hosts: an Ansible pattern.")],
    inventory: Annotated[Path, typer.Option("--inventory", "-i", help="Inventory (Ansible INI/YAML).")],
    baseline: BaselineOpt,
    patch_store: PatchStoreOpt = DEFAULT_PATCH_STORE,
    ssh_config: SSHConfigOpt = None,
    key: KeyOpt = None,
    passphrase_env: PassphraseEnvOpt = None,
    known_hosts: KnownHostsOpt = None,
    state: StateOpt = None,
    fmt: FormatOpt = "markdown",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the report here.")] = None,
) -> None:
    """Scan the hosts (read-only), store the scans, print their compliance with the baseline.

    Exit codes: 0 every host compliant, 1 a host non-compliant or not scanned.
    """
    from sysflow.cli.commands import guard
    from sysflow.patch.report import compliance_report

    with guard("patch scan"):
        inv, base = _inputs(inventory, baseline)
        ssh = _ssh(inv, ssh_config, key, known_hosts, passphrase_env, False)
        scans = _scan(pattern, inv, ssh, state, base, patch_store)
        report = compliance_report(base, scans, datetime.now(UTC).date())
        _print(report, fmt, output)
    raise typer.Exit(0 if report.all_compliant else 1)


@patch_app.command("install")
def patch_install(
    pattern: Annotated[str, typer.Argument(help="Hosts: an Ansible pattern.")],
    inventory: Annotated[Path, typer.Option("--inventory", "-i", help="Inventory (Ansible INI/YAML).")],
    baseline: BaselineOpt,
    patch_store: PatchStoreOpt = DEFAULT_PATCH_STORE,
    windows: Annotated[
        Path | None,
        typer.Option("--windows", help="Install only inside these windows (YAML windows: section)."),
    ] = None,
    serial: Annotated[str | None, typer.Option("--serial", help="Waves, e.g. '1,25%'.")] = None,
    ssh_config: SSHConfigOpt = None,
    key: KeyOpt = None,
    passphrase_env: PassphraseEnvOpt = None,
    known_hosts: KnownHostsOpt = None,
    ask_become_pass: AskBecomePassOpt = False,
    state: StateOpt = None,
    fmt: FormatOpt = "markdown",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the report here.")] = None,
) -> None:
    """Install the baseline's approved versions each host lacks (pinned), then scan and report.

    Exit codes: 0 every host compliant afterwards, 1 otherwise (a failed host is named).
    """
    from sysflow.cli.commands import guard
    from sysflow.patch.baseline import evaluate
    from sysflow.patch.install import install_inventory, install_workflow
    from sysflow.patch.report import compliance_report

    with guard("patch install"):
        inv, base = _inputs(inventory, baseline)
        ssh = _ssh(inv, ssh_config, key, known_hosts, passphrase_env, ask_become_pass)
        today = datetime.now(UTC).date()
        before = [evaluate(base, s, today) for s in _scan(pattern, inv, ssh, state, base, patch_store)]
        targets = install_inventory(inv, before)
        if targets.hosts:
            rollout = (
                {"strategy": "rolling", "serial": serial.split(","), "max_failures": "100%"}
                if serial
                else None
            )
            wf = install_workflow(base, rollout=rollout, windows=_windows(windows))
            result = _run(wf, targets, ssh, state)
            for host in result.failed_servers:
                typer.echo(f"{host}: install failed (sysflow logs {result.run_id} {host})", err=True)
        report = compliance_report(base, _scan(pattern, inv, ssh, state, base, patch_store), today)
        _print(report, fmt, output)
    raise typer.Exit(0 if report.all_compliant else 1)


def _windows(path: Path | None) -> dict[str, object] | None:
    return None if path is None else _windows_file_data(path)


@patch_app.command("report")
def patch_report(
    baseline: BaselineOpt,
    patch_store: PatchStoreOpt = DEFAULT_PATCH_STORE,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Judge the scans known at the end of this day (YYYY-MM-DD).")
    ] = None,
    cve: Annotated[
        str | None, typer.Option("--cve", help="Also list the hosts lacking a fix for this CVE.")
    ] = None,
    fmt: FormatOpt = "markdown",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the report here.")] = None,
) -> None:
    """The compliance report from stored scans (no host is contacted)."""
    from sysflow.cli.commands import EXIT_NOT_FOUND, exit_with, guard
    from sysflow.patch.baseline import Baseline
    from sysflow.patch.report import compliance_report
    from sysflow.patch.store import ScanStore

    with guard("patch report"):
        if not patch_store.exists():
            exit_with(EXIT_NOT_FOUND, f"patch report: no patch store {patch_store}")
        base = Baseline.from_file(baseline)
        day = date.fromisoformat(as_of) if as_of else datetime.now(UTC).date()
        end = datetime.combine(day + timedelta(days=1), time(), UTC) - timedelta(microseconds=1)
        report = compliance_report(base, ScanStore(patch_store).latest(end), day)
        _print(report, fmt, output)
        if cve:
            lacking = report.lacking(cve)
            typer.echo(f"{cve}: {len(lacking)} host(s) lacked a fix on {day}: {', '.join(lacking) or '-'}")


patch_app.command("windows")(windows_command)  # the same command as ``sysflow windows``


def _windows_file_data(path: Path) -> dict[str, object]:
    from sysflow.cli.exec import _windows_file

    return _windows_file(path)
