"""What ``sysflow run``, ``sim`` and ``resume`` do: build an engine, attach observers, run, report.

``sysflow.cli`` parses the options and calls these; they return the process exit code. A run on
the simulator (``sim``, ``demo``, a submitted Ray job) drives the real engine on virtual time
(:func:`sysflow.sim.run_virtual`), so a four-hour window passes in seconds.

A live ``sysflow run`` with a run store also polls the store for control requests that other
processes wrote (``sysflow approve`` and ``sysflow cancel``, see :mod:`sysflow.cli.control`), and
applies them to its run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING

from sysflow.cli.timefmt import DisplayZone, display_zone
from sysflow.engine.events import Event, EventKind, Observer

if TYPE_CHECKING:
    from sysflow.actors.auth import Secret, SSHAuth
    from sysflow.actors.hostkeys import HostKeyStore
    from sysflow.cli.progress import Progress, ProgressContext, ProgressMode
    from sysflow.engine.dispatch import BackendRunner
    from sysflow.engine.engine import Engine
    from sysflow.engine.result import RunResult
    from sysflow.engine.run import Run
    from sysflow.model.inventory import Inventory
    from sysflow.model.workflow import MaintenanceWorkflow
    from sysflow.planner.plan import Plan
    from sysflow.transport import OutputTap

Echo = Callable[[str], None]

__all__ = [
    "EXIT_CONFLICT",
    "EXIT_FAILED",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "AutoApprover",
    "RunSetup",
    "exit_code",
    "progress_context",
    "result_lines",
    "run_command",
    "run_live",
    "sim_command",
]

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1  # the run failed or completed with failed hosts, or the input is invalid
EXIT_USAGE = 2  # typer's own usage errors
EXIT_NOT_FOUND = 3  # no such run, file or job
EXIT_CONFLICT = 4  # the hosts are leased by another run, or the run is in no state for this
CONTROL_POLL_INTERVAL = 2.0  # seconds between reads of the store for approvals and cancels
SIM_HORIZON = timedelta(days=14)  # how far ahead the forecast of a simulated run looks


@dataclass(frozen=True)
class RunSetup:
    """Where a run's progress, audit and state go."""

    mode: ProgressMode
    out: IO[str] = field(default_factory=lambda: sys.stdout)
    audit: Path | None = None
    state: Path | None = None
    approve_all: bool = False
    who: str | None = None
    rerun: str | None = None  # the command that re-runs this workflow (`sysflow run WF -i INV`)
    tz: str | None = None  # --tz: the zone summaries show times in (default: the windows' zone)


class AutoApprover:
    """Approves every gate as soon as it asks (``--approve-all``, the demo, submitted sim runs)."""

    def __init__(self) -> None:
        self.run: Run | None = None
        self.approved: list[int] = []

    def on_event(self, event: Event) -> None:
        if event.kind is EventKind.APPROVAL_REQUESTED and self.run is not None and event.wave is not None:
            self.approved.append(event.wave + 1)
            self.run.approve(event.wave + 1)


# -- building blocks ----------------------------------------------------------------------------


def progress_context(
    inventory: Inventory, plan: Plan | None = None, total_ops: int = 0, zone: DisplayZone | None = None
) -> ProgressContext:
    """Datacenters of the hosts, sizes, the display zone, and (with a plan) the forecast and windows
    for the ETA."""
    from sysflow.cli.progress import ProgressContext, planned_ends, window_end_finder

    dcs = {h.name: h.datacenter or "-" for h in inventory}
    if plan is None:
        return ProgressContext(total_ops=total_ops, total_hosts=len(dcs), datacenter_of=dcs, zone=zone)
    return ProgressContext(
        total_ops=total_ops,
        total_hosts=len(dcs),
        datacenter_of=dcs,
        planned_ends=planned_ends(plan),
        window_end=window_end_finder(plan),
        zone=zone,
    )


@contextlib.contextmanager
def observers(setup: RunSetup, context: ProgressContext) -> Iterator[tuple[list[Observer], Progress]]:
    """Progress (entered), the audit observer and the auto-approver, closed at the end."""
    from sysflow.cli.progress import progress_for

    progress = progress_for(setup.mode, out=setup.out, context=context)
    found: list[Observer] = [progress]
    log = None
    if setup.audit is not None:
        from sysflow.audit.log import AuditLog
        from sysflow.audit.observer import AuditObserver

        log = AuditLog(setup.audit, who=setup.who)
        found.append(AuditObserver(log))
    try:
        with progress:
            yield found, progress
    finally:
        if log is not None:
            log.close()


def exit_code(result: RunResult) -> int:
    """0 only when the run completed and every host succeeded; 1 otherwise: failed, cancelled, rolled
    back, and ``completed_with_failures`` (the rollout went through, but some hosts failed)."""
    return EXIT_OK if result.ok else EXIT_FAILED


def result_lines(
    result: RunResult, store: Path | None = None, rerun: str | None = None, zone: DisplayZone | None = None
) -> list[str]:
    """The closing summary: status, host counts, each failed host with its reason and the tail of its
    output, the failures grouped by reason, verification; every count is the result's (failed hosts
    are ``result.failed_servers``: failed and rolled-back hosts). With the run's ``store``, the
    commands that show more; with ``rerun`` (the command line), how to re-run the failed hosts. Times
    are in ``zone`` (default UTC); with the run's plan, the forecast is set against the actual."""
    from sysflow.cli.actuals import forecast_vs_actual
    from sysflow.cli.views import failure_recap, host_views, tidy

    zone = zone or display_zone("UTC")

    counts = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(result.summary()["hosts"].items()))
    lines = [f"run {result.run_id}: {result.status.value} ({counts})"]
    lines.extend(_module_line(result))
    if result.reason:
        lines.append(f"  reason: {tidy(result.reason)}")
    report = result.verification_results
    if result.failed_servers:
        views = host_views(
            result.ops,
            outcomes=result.hosts,
            run_reason=result.reason,
            verification_failed=report.failed_hosts if report is not None else (),
        )
        lines.extend(failure_recap(views))
    if report is not None:
        c = report.counts
        lines.append(
            f"  verification: {report.outcome.value}; hosts passed {len(report.passed_hosts)}, "
            f"failed {len(report.failed_hosts)}, inconclusive {len(report.inconclusive_hosts)}; "
            f"checks {c.total}: {c.passed} passed, {c.failed} failed, {c.inconclusive} inconclusive"
        )
    lines.append(f"  time: {zone.fmt(result.started)} to {zone.fmt(result.ended)}")
    if result.plan is not None:
        lines.extend(forecast_vs_actual(result, result.plan, zone))
    if result.failed_servers and store is not None:
        lines.append(f"  more: sysflow status {result.run_id} --failed{_store_option(store)}; "
                     f"sysflow logs {result.run_id} HOST{_store_option(store)}")  # fmt: skip
        if rerun is not None:
            lines.append(
                f"  re-run the failed hosts: {rerun} --limit @failed:{result.run_id}{_store_option(store)}"
            )
    return lines


def _module_line(result: RunResult) -> list[str]:
    """How many module operations changed their host, and how many found it as asked (Ansible's
    changed/ok); nothing when no module ran."""
    from sysflow.cli.views import plural
    from sysflow.engine.states import OpState

    verdicts = [(r.host, r.changed) for r in result.ops.values() if r.state is OpState.SUCCEEDED]
    changed = [host for host, verdict in verdicts if verdict]
    unchanged = sum(1 for _, verdict in verdicts if verdict is False)
    if not changed and not unchanged:
        return []
    if not changed:
        return [f"  modules: nothing changed, {unchanged} ok"]
    hosts = plural(len(set(changed)), "host")
    return [f"  modules: {plural(len(changed), 'operation')} changed on {hosts}, {unchanged} ok"]


def _store_option(store: Path) -> str:
    """`` --store PATH`` unless ``store`` is the one the commands find by themselves."""
    import shlex

    from sysflow.engine.store import default_store_path

    return "" if store == default_store_path() else f" --store {shlex.quote(str(store))}"


def prepare(
    engine: Engine, workflow: MaintenanceWorkflow, approver: AutoApprover | None, progress: Progress
) -> Run:
    """Prepare the run; the approver steers it, the progress view learns its operation count."""
    run = engine.prepare(workflow)
    if approver is not None:
        approver.run = run
    progress.state.context = replace(progress.state.context, total_ops=len(run.graph))
    return run


# -- sysflow sim --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimOptions:
    """What ``sysflow sim`` simulates."""

    profile: Path | None = None
    seed: int = 1
    start: datetime | None = None
    forecast: bool = True


async def _simulate(
    workflow: MaintenanceWorkflow,
    inventory: Inventory,
    sim: SimOptions,
    setup: RunSetup,
    plan: Plan | None,
) -> RunResult:
    from sysflow.engine.engine import Engine
    from sysflow.sim import SimFleet, SimProfile, SimTransport, current_virtual_clock

    clock = current_virtual_clock()
    profile = SimProfile.load(sim.profile) if sim.profile is not None else None
    transport = SimTransport(SimFleet(inventory, profile, seed=sim.seed, start=clock.start), clock)
    approver = AutoApprover() if setup.approve_all else None
    context = progress_context(inventory, plan, zone=display_zone(setup.tz, workflow))
    with observers(setup, context) as (found, progress):
        engine = Engine(
            inventory,
            transport=transport,
            clock=clock,
            observers=[*found, *([approver] if approver else [])],
            store=setup.state,
        )
        try:
            return await engine.drive(prepare(engine, workflow, approver, progress))
        finally:
            if engine.store is not None:
                engine.store.close()


def sim_start(text: str | None) -> datetime:
    """``--start`` (ISO 8601, naive = UTC), or now to the minute."""
    from sysflow.cli.plan import parse_start

    return parse_start(text).astimezone(UTC)


def simulate(
    workflow: MaintenanceWorkflow,
    inventory: Inventory,
    sim: SimOptions,
    setup: RunSetup,
    plan: Plan | None = None,
) -> RunResult:
    """Run ``workflow`` on a simulated fleet of ``inventory`` on virtual time (blocking)."""
    from sysflow.sim import run_virtual

    start = sim.start or sim_start(None)
    return run_virtual(_simulate(workflow, inventory, sim, setup, plan), start=start)


def sim_command(
    workflow: MaintenanceWorkflow, inventory: Inventory, sim: SimOptions, setup: RunSetup, echo: Echo
) -> int:
    """``sysflow sim``: the real engine on the simulator; summary and exit code."""
    plan = forecast_plan(workflow, inventory, sim.start or sim_start(None)) if sim.forecast else None
    result = simulate(workflow, inventory, sim, setup, plan)
    for line in result_lines(result, setup.state, zone=display_zone(setup.tz, workflow)):
        echo(line)
    return exit_code(result)


def forecast_plan(workflow: MaintenanceWorkflow, inventory: Inventory, start: datetime) -> Plan:
    """The p50 plan the progress view's ETA follows (greedy, fast)."""
    from sysflow.planner.build import plan

    return plan(workflow, inventory, start=start, horizon=SIM_HORIZON)


def forecast_or_none(workflow: MaintenanceWorkflow, inventory: Inventory, start: datetime) -> Plan | None:
    """The forecast plan for the ETA; a workflow the planner cannot plan still runs (no ETA shown)."""
    from sysflow.errors import SysflowError

    try:
        return forecast_plan(workflow, inventory, start)
    except SysflowError as exc:
        log.warning("no forecast for the progress view: %s", exc)
        return None


# -- sysflow run --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SSHOptions:
    """How ``sysflow run`` and ``resume`` reach the hosts."""

    ssh_config: Path | None = None
    key: Path | None = None
    known_hosts: Path | None = None
    passphrase_env: str | None = None
    backend: str = "local"  # where the HostPools live: local, local=N, ray, ray=ADDRESS
    become_password: Secret | None = field(default=None, repr=False)  # --ask-become-pass, memory only
    host_keys: str = "strict"  # --host-keys: strict, accept-new or off
    preflight: bool = True  # check every host before the first wave (--no-preflight: don't)
    verbose: int = 0  # -v: stream each host's output as it arrives; -vv: each command too


def make_auth(ssh: SSHOptions) -> SSHAuth:
    """A key file (passphrase from an environment variable), else the ssh-agent."""
    from sysflow.actors.auth import SSHAuth

    if ssh.key is not None:
        return SSHAuth.from_keyfile(ssh.key, ssh.passphrase_env)
    return SSHAuth.from_agent()


def ssh_engine(
    inventory: Inventory,
    ssh: SSHOptions,
    setup: RunSetup,
    found: Sequence[Observer],
    runner: BackendRunner | None = None,
    on_output: OutputTap | None = None,
    keys: HostKeyStore | Path | None = None,
) -> Engine:
    from sysflow.cli.become import with_become_passwords
    from sysflow.cli.preflight import known_hosts_for
    from sysflow.engine.engine import Engine

    engines: list[Engine] = []  # the engine's inventory is the stored one on resume: read it late
    auth = with_become_passwords(
        make_auth(ssh), ssh.become_password, lambda: engines[0].inventory if engines else inventory
    )
    engine = Engine(
        inventory,
        auth,
        observers=found,
        ssh_config=ssh.ssh_config,
        known_hosts=keys if keys is not None else known_hosts_for(ssh),
        store=setup.state,
        runner=runner,
        on_output=on_output,
    )
    engines.append(engine)
    return engine


async def started_runner(
    workflow: MaintenanceWorkflow, inventory: Inventory, ssh: SSHOptions
) -> BackendRunner | None:
    """The runner ``--backend`` asks for, started (so a segment without a node fails before any wave);
    None for the default in-process pools, which the engine builds itself."""
    from sysflow.cli.backend import SSHShardFactory, parse_backend, runner_for
    from sysflow.planner.compile import compile_workflow

    choice = parse_backend(ssh.backend)
    if choice.in_process:
        return None
    graph = compile_workflow(workflow, inventory)
    hosts = [h for h in [*graph.hosts, *graph.delegates] if h in inventory.hosts]
    factory = SSHShardFactory(inventory, ssh.ssh_config, ssh.key, ssh.known_hosts, ssh.passphrase_env)
    runner = runner_for(choice, inventory, hosts, factory)
    await runner.start()
    return runner


def _side_echo(setup: RunSetup) -> Callable[[str], None]:
    """Lines beside the progress: on its stream, or on stderr when stdout carries JSON Lines."""
    from sysflow.cli.progress import ProgressMode

    out = sys.stderr if setup.mode is ProgressMode.JSON else setup.out
    return lambda line: print(line, file=out, flush=True)


def verbose_tap(
    workflow: MaintenanceWorkflow, inventory: Inventory, ssh: SSHOptions, setup: RunSetup, remote: bool
) -> OutputTap | None:
    """What ``-v``/``-vv`` print as output arrives (to stderr when stdout carries JSON Lines)."""
    from sysflow.cli.verbose import output_printer, run_masker

    if ssh.verbose <= 0:
        return None
    echo = _side_echo(setup)
    if remote:  # the HostPools' transports live in other processes: nothing streams back here
        echo(f"-v: output is not streamed with --backend {ssh.backend} (sysflow logs RUN shows it)")
        return None
    return output_printer(ssh.verbose, run_masker(workflow, inventory, ssh.become_password), echo)


async def _run_live(
    workflow: MaintenanceWorkflow, inventory: Inventory, ssh: SSHOptions, setup: RunSetup
) -> RunResult:
    from sysflow.actors.hostkeys import HostKeyStore
    from sysflow.cli.preflight import known_hosts_for, record_accepted

    approver = AutoApprover() if setup.approve_all else None
    plan = forecast_or_none(workflow, inventory, datetime.now(UTC))
    runner = await started_runner(workflow, inventory, ssh)
    context = progress_context(inventory, plan, zone=display_zone(setup.tz, workflow))
    tap = verbose_tap(workflow, inventory, ssh, setup, runner is not None)
    keys = known_hosts_for(ssh)
    with observers(setup, context) as (found, progress):
        watchers = [*found, *([approver] if approver else [])]
        engine = ssh_engine(inventory, ssh, setup, watchers, runner, on_output=tap, keys=keys)
        run = prepare(engine, workflow, approver, progress)
        poller = asyncio.create_task(poll_controls(run, setup.state)) if setup.state else None
        try:
            result = await engine.drive(run)
        finally:
            if runner is not None:
                await runner.stop()
            if poller is not None:
                poller.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poller
            if engine.store is not None:
                engine.store.close()
    if isinstance(keys, HostKeyStore):  # keys accepted during the run (no pre-flight took them first)
        record_accepted(keys, setup.audit, _side_echo(setup), run_id=result.run_id)
    return result


def run_live(
    workflow: MaintenanceWorkflow, inventory: Inventory, ssh: SSHOptions, setup: RunSetup
) -> RunResult:
    """Run ``workflow`` over SSH (blocking); ``sysflow run`` and ``sysflow exec`` report it their way."""
    return asyncio.run(_run_live(workflow, inventory, ssh, setup))


def run_command(
    workflow: MaintenanceWorkflow, inventory: Inventory, ssh: SSHOptions, setup: RunSetup, echo: Echo
) -> int:
    """``sysflow run`` over SSH: pre-flight, progress, audit, summary, exit code."""
    from sysflow.cli.backend import parse_backend
    from sysflow.cli.preflight import refuse_unless_ready, with_config_known_hosts

    parse_backend(ssh.backend)  # a bad --backend is one line before any host is contacted
    ssh = with_config_known_hosts(ssh, inventory, inventory.hosts)
    refused = refuse_unless_ready(workflow, inventory, ssh, setup.audit, echo)
    if refused is not None:
        return refused
    result = run_live(workflow, inventory, ssh, setup)
    for line in result_lines(result, setup.state, setup.rerun, display_zone(setup.tz, workflow)):
        echo(line)
    return exit_code(result)


def resume_command(run_id: str, ssh: SSHOptions, setup: RunSetup, echo: Echo) -> int:
    """``sysflow resume RUN``: continue an interrupted run from the store over SSH."""
    from sysflow.model.inventory import Inventory

    if ssh.known_hosts is None and setup.state is not None:  # the ssh config's UserKnownHostsFile, as run
        from sysflow.cli.preflight import with_config_known_hosts
        from sysflow.engine.store import RunStore

        with RunStore(setup.state) as store:
            stored = Inventory.model_validate_json(store.run(run_id).inventory_json)
        ssh = with_config_known_hosts(ssh, stored, stored.hosts)

    async def resume() -> RunResult:
        with observers(setup, progress_context(Inventory())) as (found, _):
            engine = ssh_engine(Inventory(), ssh, setup, found)
            try:
                return await engine.resume_async(run_id)
            finally:
                if engine.store is not None:
                    engine.store.close()

    result = asyncio.run(resume())
    for line in result_lines(result, setup.state):
        echo(line)
    return exit_code(result)


async def poll_controls(run: Run, state: Path | None, interval: float = CONTROL_POLL_INTERVAL) -> None:
    """Apply approvals, pauses, resumes and cancels other processes wrote to the store, until cancelled."""
    from sysflow.cli.control import apply_control, pending_controls

    if state is None:
        return
    seen: set[tuple[int, str]] = set()
    while True:
        for wave, kind in pending_controls(state, run.id, seen):
            seen.add((wave, kind))
            apply_control(run, state, wave, kind)
        await asyncio.sleep(interval)
