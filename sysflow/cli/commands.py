"""The operating commands: run, sim, demo, resume, status, logs, report, submit (steering: ``steer``).

Each is a thin typer wrapper: options in, one call into ``sysflow.cli.run``, ``.control``,
``.audit``, ``.demo`` or ``.jobs``, and an exit code out. Errors become one clear
line on stderr (:func:`guard`); ``sysflow --debug ...`` shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from sysflow.actors.hostkeys import HostKeyPolicy
from sysflow.cli.inputs import (
    AskBecomePassOpt,
    BecomeOpt,
    BecomeUserOpt,
    HostKeysOpt,
    KeyOpt,
    KnownHostsOpt,
    PassphraseEnvOpt,
    SSHConfigOpt,
    StateOpt,
    TzOpt,
    VerboseOpt,
    load_inputs,
)
from sysflow.cli.targeting import (
    ExtraVarsOpt,
    ForceOpt,
    ForksOpt,
    LimitOpt,
    SkipTagsOpt,
    StartAtOpt,
    TagsOpt,
)

if TYPE_CHECKING:
    from sysflow.cli.run import RunSetup

__all__ = ["EXIT_USAGE", "exit_with", "guard", "register"]

EXIT_INVALID = 1
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4
EXIT_INTERRUPTED = 130
DEBUG = {"on": False}  # set by the root ``--debug`` option (sysflow.cli), read by guard()
DEFAULT_DEMO_OUT = Path("sysflow-demo")

WorkflowArg = Annotated[Path, typer.Argument(help="Workflow file (YAML or JSON).")]
InventoryOpt = Annotated[Path, typer.Option("--inventory", "-i", help="Inventory (Ansible INI/YAML).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Stream events as JSON Lines on stdout.")]
AuditOpt = Annotated[Path | None, typer.Option("--audit", help="Append to this audit log (SQLite).")]
RunArg = Annotated[str, typer.Argument(help="Run id (see `sysflow status`).")]
EXIT_USAGE = 2


def exit_with(code: int, line: str | None = None) -> NoReturn:
    """Print ``line`` (if any) on stderr and leave with ``code``."""
    if line:
        typer.echo(line, err=True)
    raise typer.Exit(code)


def _code_of(exc: BaseException) -> int:
    from sysflow.cli.control import ControlError
    from sysflow.cli.jobs import RayJobError
    from sysflow.errors import LeaseConflict, RunOwned

    if isinstance(exc, RayJobError):
        return EXIT_NOT_FOUND if exc.missing else EXIT_INVALID
    if isinstance(exc, ControlError):
        return EXIT_NOT_FOUND if exc.missing else EXIT_CONFLICT
    if isinstance(exc, FileNotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(exc, LeaseConflict | RunOwned):  # hosts held, or the run owned by a live controller
        return EXIT_CONFLICT
    return EXIT_INVALID


def _message(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return f"error: no such file: {exc.filename}"
    return f"error: {exc}"


@contextlib.contextmanager
def guard(what: str) -> Iterator[None]:
    """Errors as one line and an exit code (tracebacks only with ``--debug``)."""
    from sysflow.errors import SysflowError

    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except KeyboardInterrupt:
        exit_with(EXIT_INTERRUPTED, f"{what}: interrupted")
    except (SysflowError, OSError, ValueError) as exc:
        if DEBUG["on"]:
            raise
        problems = getattr(exc, "problems", None)
        lines = [str(p) for p in problems] if problems else [_message(exc)]
        for line in lines[:-1]:
            typer.echo(line, err=True)
        exit_with(_code_of(exc), lines[-1] if len(lines) == 1 else f"{lines[-1]}\n{what}: failed")


def _load_inputs(workflow: Path, inventory: Path, ssh_config: Path | None) -> tuple[Any, Any]:
    return load_inputs(workflow, inventory, ssh_config)


def _setup(json_lines: bool, audit: Path | None, state: Path | None, approve_all: bool) -> RunSetup:
    from sysflow.cli.progress import choose_mode
    from sysflow.cli.run import RunSetup

    mode = choose_mode(json_lines=json_lines, is_terminal=sys.stdout.isatty())
    return RunSetup(mode=mode, out=sys.stdout, audit=audit, state=state, approve_all=approve_all)


def _tz(tz: str | None) -> str | None:
    """``--tz``, checked: an unknown zone is one line and exit 1."""
    from sysflow.cli.timefmt import parse_tz

    if tz:
        try:
            parse_tz(tz)
        except ValueError as exc:
            exit_with(EXIT_INVALID, f"error: {exc}")
    return tz


def _quoted(value: Path | str) -> str:
    import shlex

    return shlex.quote(str(value))


def store_path(state: Path | None) -> Path:
    """``--store`` (alias ``--state``), else the default store of this machine and user."""
    from sysflow.engine.store import default_store_path

    return state if state is not None else default_store_path()


def _echo_for(json_lines: bool) -> Callable[[str], None]:
    """Summary lines go to stderr when stdout carries JSON Lines."""
    return (lambda line: typer.echo(line, err=True)) if json_lines else typer.echo


# -- run, sim, demo, resume -----------------------------------------------------------------------


def run(
    workflow: WorkflowArg,
    inventory: InventoryOpt,
    ssh_config: SSHConfigOpt = None,
    key: KeyOpt = None,
    passphrase_env: PassphraseEnvOpt = None,
    known_hosts: KnownHostsOpt = None,
    audit: AuditOpt = None,
    state: StateOpt = None,
    json_lines: JsonOpt = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and plan; run nothing.")] = False,
    approve_all: Annotated[bool, typer.Option("--approve-all", help="Approve every gate.")] = False,
    backend: Annotated[
        str,
        typer.Option(
            "--backend",
            help="Where the HostPools run: local (this process), local=N (worker processes), "
            "ray or ray=ADDRESS (one actor per network segment, on a node offering segment:<name>).",
        ),
    ] = "local",
    limit: LimitOpt = None,
    tags: TagsOpt = None,
    skip_tags: SkipTagsOpt = None,
    start_at_task: StartAtOpt = None,
    extra_vars: ExtraVarsOpt = None,
    forks: ForksOpt = None,
    force: ForceOpt = False,
    become: BecomeOpt = False,
    become_user: BecomeUserOpt = None,
    ask_become_pass: AskBecomePassOpt = False,
    tz: TzOpt = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="Preview: per wave and window, each host's rendered command; run nothing."
        ),
    ] = False,
    show_all: Annotated[
        bool, typer.Option("--all", help="With --check: list every host (default: 10 per task).")
    ] = False,
    diff: Annotated[
        bool, typer.Option("--diff", help="With --check: ask each host what would change (read-only).")
    ] = False,
    host_keys: HostKeysOpt = HostKeyPolicy.STRICT,
    verbose: VerboseOpt = 0,
    no_preflight: Annotated[
        bool,
        typer.Option("--no-preflight", help="Skip the pre-flight check of every host before the first wave."),
    ] = False,
) -> None:
    """Run a workflow over SSH with live progress.

    Examples:

      sysflow run examples/patching.yaml -i examples/inventory.ini --key ~/.ssh/id_ed25519

      sysflow run wf.yaml -i hosts.ini --audit audit.db --json > events.jsonl

      sysflow run wf.yaml -i hosts.ini --dry-run

      sysflow run wf.yaml -i hosts.ini --backend ray=127.0.0.1:6379

      sysflow run wf.yaml -i hosts.ini --limit @failed:RUN_ID --tags patch -e pkg=openssl --forks 5

      sysflow run wf.yaml -i hosts.ini --become --ask-become-pass

      sysflow run wf.yaml -i hosts.ini --check

      sysflow run wf.yaml -i hosts.ini --check --diff -K

      sysflow run wf.yaml -i hosts.ini --limit web01 -vv

      sysflow run wf.yaml -i hosts.ini --host-keys accept-new --audit audit.db

    Exit codes: 0 every host succeeded, 1 the run failed or invalid input, 4 hosts leased by another run.
    """
    from sysflow.cli.become import ask_become_password, with_become_flags
    from sysflow.cli.preflight import check_key_file
    from sysflow.cli.run import SSHOptions, run_command
    from sysflow.cli.targeting import Targeting, narrow

    with guard(f"{workflow}"):
        check_key_file(key)
        wf, inv = _load_inputs(workflow, inventory, ssh_config)
        wf = with_become_flags(wf, become, become_user)
        aim = Targeting(
            limit, tags or (), skip_tags or (), start_at_task, extra_vars or (), forks, force, state
        )
        wf, inv = narrow(wf, inv, aim)
        for warning in aim.warnings:
            typer.echo(warning, err=True)
        if dry_run:
            from sysflow.cli.targeting import checked_lines

            for line in checked_lines(workflow, wf, inv):  # what validate says, of the narrowed inputs
                typer.echo(line)
            typer.echo("dry run: nothing was run")
            return
        if check and not diff:
            from sysflow.cli.preview import preview_lines

            for line in preview_lines(wf, inv, show_all=show_all):
                typer.echo(line)
            return
        secret = ask_become_password(ask_become_pass)
        ssh = SSHOptions(ssh_config, key, known_hosts, passphrase_env, backend, secret)
        ssh = replace(ssh, host_keys=host_keys.value, preflight=not no_preflight, verbose=verbose)
        setup = _setup(json_lines, audit, store_path(state), approve_all)
        if check:  # with --diff: ask the hosts
            from sysflow.cli.checkmode import check_command

            raise typer.Exit(check_command(wf, inv, ssh, setup, typer.echo))
        again = [
            ("--ssh-config", ssh_config), ("--key", key), ("--passphrase-env", passphrase_env),
            ("--known-hosts", known_hosts), ("--audit", audit), ("--become-user", become_user),
            *(("--tags", t) for t in tags or ()), *(("--skip-tags", t) for t in skip_tags or ()),
            ("--backend", None if backend == "local" else backend),
        ]  # fmt: skip
        flags = [("--become", become), ("-K", ask_become_pass), ("--approve-all", approve_all)]
        rerun = f"sysflow run {_quoted(workflow)} -i {_quoted(inventory)}" + "".join(
            [f" {o} {_quoted(v)}" for o, v in again if v is not None] + [f" {o}" for o, on in flags if on]
        )  # -e is left out: extra vars may carry what should not be echoed
        setup = replace(setup, rerun=rerun, tz=_tz(tz))
        code = run_command(wf, inv, ssh, setup, _echo_for(json_lines))
    raise typer.Exit(code)


def sim(
    workflow: WorkflowArg,
    inventory: Annotated[
        Path | None, typer.Option("--inventory", "-i", help="Inventory (default: generate --hosts hosts).")
    ] = None,
    profile: Annotated[Path | None, typer.Option("--profile", help="Simulation profile (YAML).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the simulated fleet.")] = 1,
    hosts: Annotated[
        int, typer.Option("--hosts", help="Without -i: simulate the demo fleet of this many hosts.")
    ] = 1000,
    start: Annotated[str | None, typer.Option(help="Virtual start time, ISO 8601 (default: now).")] = None,
    audit: AuditOpt = None,
    state: Annotated[
        Path | None, typer.Option("--store", "--state", help="Run store (default: none).")
    ] = None,
    json_lines: JsonOpt = False,
    approve: Annotated[bool, typer.Option("--approve/--no-approve", help="Approve every gate.")] = True,
    tz: TzOpt = None,
) -> None:
    """Run a workflow with the real engine on a simulated fleet, on virtual time.

    Examples:

      sysflow sim examples/patching.yaml -i examples/inventory.ini

      sysflow sim examples/demo/patching.yaml --hosts 5000 --seed 7 --audit sim-audit.db

      sysflow sim wf.yaml -i hosts.ini --profile faults.yaml --json | jq .kind

    Exit codes: 0 every simulated host succeeded, 1 the run failed or invalid input.
    """
    from sysflow.cli.demo import demo_inventory
    from sysflow.cli.run import SimOptions, sim_command, sim_start
    from sysflow.model.workflow import MaintenanceWorkflow

    with guard(f"{workflow}"):
        if inventory is not None:
            wf, inv = _load_inputs(workflow, inventory, None)
        else:
            wf, inv = MaintenanceWorkflow.from_file(workflow), demo_inventory(hosts)
        options = SimOptions(profile=profile, seed=seed, start=sim_start(start))
        setup = replace(_setup(json_lines, audit, state, approve), tz=_tz(tz))
        code = sim_command(wf, inv, options, setup, _echo_for(json_lines))
    raise typer.Exit(code)


def demo(
    out: Annotated[Path, typer.Option("--out", help="Directory for the chart, report and audit log.")] = (
        DEFAULT_DEMO_OUT
    ),
    hosts: Annotated[int, typer.Option("--hosts", help="Simulated fleet size.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the simulated fleet.")] = 1,
    json_lines: JsonOpt = False,
) -> None:
    """The main job, simulated: forecast, Gantt chart, a 1,000-host run on virtual time, report.

    Examples:

      sysflow demo

      sysflow demo --out /tmp/demo --hosts 3000

    Exit codes: 0 the simulated run succeeded and its audit log verifies, 1 otherwise.
    """
    from sysflow.cli.demo import DemoOptions, demo_command

    with guard("demo"):
        opts = DemoOptions(out, hosts, seed, json_lines, sys.stdout.isatty())
        code = demo_command(opts, _echo_for(json_lines))
    raise typer.Exit(code)


def resume(
    run_id: RunArg,
    state: StateOpt = None,
    ssh_config: SSHConfigOpt = None,
    key: KeyOpt = None,
    passphrase_env: PassphraseEnvOpt = None,
    known_hosts: KnownHostsOpt = None,
    audit: AuditOpt = None,
    json_lines: JsonOpt = False,
    ask_become_pass: AskBecomePassOpt = False,
) -> None:
    """Continue a run: a paused live one (sysflow pause) is asked to go on; an interrupted one (its
    process gone) continues here, finished operations kept, interrupted ones re-checked.

    Examples:

      sysflow resume os_patching-20261129T010000-3f2a1b

      sysflow resume RUN --store /srv/sysflow/state.db --key ~/.ssh/maint

    Exit codes: 0 ok, 1 the run failed, 3 no such run, 4 already finished, running and not paused,
    owned by a live controller (named on the one line printed) or hosts leased by another run.
    """
    from sysflow.cli.become import ask_become_password
    from sysflow.cli.control import ControlError, controlled_elsewhere, operator_name, resume_run, run_views
    from sysflow.cli.run import SSHOptions, resume_command

    state = store_path(state)
    with guard(f"resume {run_id}"):
        view = run_views(state, run_id)[0]  # a missing store or run is "not found" before anything starts
        if view.finished:
            raise ControlError(f"run {run_id} already {view.status}")
        if controlled_elsewhere(state, run_id):  # its own process runs it: ask that process to continue
            typer.echo(resume_run(state, run_id, operator_name()))
            raise typer.Exit(0)
        secret = ask_become_password(ask_become_pass)
        ssh = SSHOptions(ssh_config, key, known_hosts, passphrase_env, become_password=secret)
        code = resume_command(run_id, ssh, _setup(json_lines, audit, state, False), _echo_for(json_lines))
    raise typer.Exit(code)


# -- status, approve, cancel ----------------------------------------------------------------------


def status(
    run_id: Annotated[str | None, typer.Argument(help="Run id (default: every run).")] = None,
    state: StateOpt = None,
    failed: Annotated[bool, typer.Option("--failed", help="With RUN: only the failed hosts.")] = False,
    host: Annotated[
        str | None, typer.Option("--host", help="With RUN: this host's operations (a unique prefix will do).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON.")] = False,
    address: Annotated[
        str | None, typer.Option("--address", help="Ray dashboard (http://HEAD:8265): list its jobs.")
    ] = None,
    token_file: Annotated[Path | None, typer.Option("--token-file", help="Ray auth token file.")] = None,
    tz: TzOpt = None,
) -> None:
    """Show runs in the run store; with RUN, its hosts per wave (outcome, failed task, reason).

    Examples:

      sysflow status

      sysflow status os_patching-20261129T010000-3f2a1b

      sysflow status os_patching-20261129T010000-3f2a1b --failed

      sysflow status os_patching-20261129T010000-3f2a1b --host web01

      sysflow status RUN --json | jq '.hosts[] | select(.outcome == "failed")'

      sysflow status --address http://head:8265

    Exit codes: 0 ok, 2 --failed or --host without RUN, 3 no such run, host, store or job.
    """
    if run_id is None and (failed or host is not None):
        exit_with(EXIT_USAGE, "status: --failed and --host need a RUN: sysflow status RUN --failed")
    with guard("status"):
        if address is not None:
            from sysflow.cli.jobs import RayTarget, job_lines

            lines = job_lines(RayTarget.from_options(address, token_file), run_id)
        elif run_id is None:
            from sysflow.cli.control import run_views, status_lines, views_json

            views = run_views(store_path(state))
            lines = [views_json(views)] if as_json else status_lines(views)
        else:
            from sysflow.cli.control import run_status_lines

            lines = run_status_lines(store_path(state), run_id, failed=failed, host=host, as_json=as_json)
            if tz and not as_json:  # opt-in: the table's layout is what scripts and tests read
                from sysflow.cli.views import run_times_line

                lines.append(run_times_line(store_path(state), run_id, _tz(tz)))
        for line in lines:
            typer.echo(line)


def logs(
    run_id: RunArg,
    host: Annotated[str | None, typer.Argument(help="Only this host (a unique prefix will do).")] = None,
    task: Annotated[str | None, typer.Argument(help="Only this task.")] = None,
    state: StateOpt = None,
    failed: Annotated[bool, typer.Option("--failed", help="Only operations that failed.")] = False,
    lines: Annotated[
        int, typer.Option("--lines", "-n", help="Last lines of each stream per operation (0: all stored).")
    ] = 50,
) -> None:
    """Print the stored stdout and stderr of a run's operations (masked as stored).

    Each operation that ran is printed under `== host task (state, exit N) ==`, with its command.

    Examples:

      sysflow logs os_patching-20261129T010000-3f2a1b web01

      sysflow logs RUN web01.example.com verify_web --lines 0

      sysflow logs RUN --failed

    Exit codes: 0 ok, 3 no such run, host, task or store.
    """
    from sysflow.cli.control import run_log_lines

    with guard(f"logs {run_id}"):
        found = run_log_lines(store_path(state), run_id, host=host, task=task, failed=failed, lines=lines)
        for line in found:
            typer.echo(line)


def report(
    run_id: RunArg,
    state: StateOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON.")] = False,
    tz: TzOpt = None,
) -> None:
    """The forecast made before a run against what happened: finish, waves, first window, misses.

    Examples:

      sysflow report os_patching-20261129T010000-3f2a1b

      sysflow report RUN --json | jq .misses

    Exit codes: 0 ok, 1 the run has no stored plan, 3 no such run or store.
    """
    from sysflow.cli.report import report_lines

    with guard(f"report {run_id}"):
        for line in report_lines(store_path(state), run_id, _tz(tz), as_json):
            typer.echo(line)


# -- submit ---------------------------------------------------------------------------------------


def submit(
    workflow: WorkflowArg,
    inventory: InventoryOpt,
    address: Annotated[str, typer.Option("--address", help="Ray dashboard, e.g. http://HEAD:8265.")],
    use_sim: Annotated[bool, typer.Option("--sim", help="Run on the simulator in the job.")] = False,
    profile: Annotated[
        Path | None, typer.Option("--profile", help="Simulation profile (with --sim).")
    ] = None,
    audit: Annotated[str | None, typer.Option("--audit", help="Audit log path as the job sees it.")] = None,
    token_file: Annotated[Path | None, typer.Option("--token-file", help="Ray auth token file.")] = None,
    follow: Annotated[bool, typer.Option("--follow/--no-follow", help="Stream logs until the end.")] = True,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to follow the job.")] = 3600.0,
) -> None:
    """Submit a run to a Ray cluster as a job, stream its logs, report its final status.

    The token comes from --token-file, $RAY_AUTH_TOKEN, $RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token and
    is sent, never printed.

    Examples:

      sysflow submit examples/patching.yaml -i examples/inventory.ini --address http://head:8265

      sysflow submit wf.yaml -i hosts.ini --address http://127.0.0.1:8265 --sim --audit /tmp/a.db

    Exit codes: 0 the job succeeded, 1 it failed or invalid input, 3 no such job.
    """
    from sysflow.cli.jobs import JobSpec, RayTarget, submit_and_follow

    with guard(f"submit {workflow}"):
        _load_inputs(workflow, inventory, None)
        spec = JobSpec(workflow, inventory, sim=use_sim, profile=profile, audit=audit)
        ok = submit_and_follow(
            RayTarget.from_options(address, token_file),
            spec,
            echo=typer.echo,
            follow_logs=follow,
            timeout=timeout,
        )
    raise typer.Exit(0 if ok else EXIT_INVALID)


def register(app: typer.Typer) -> None:
    """Add the operating commands to the root ``sysflow`` app."""
    for command in (run, sim, demo, resume, status, report, logs, submit):
        app.command(command.__name__)(command)
