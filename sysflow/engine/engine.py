"""The ``Engine``: ``Engine(inventory, auth).execute(workflow)`` from the brief.

It compiles the workflow against the inventory, builds the run's calendar and limits (the same
objects the planner encodes), plans the order, and runs the waves through a transport (SSH by
default, the simulator's or a local one when given) or a backend of HostPool actors.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from sysflow.actors.local import LocalTransport
from sysflow.clock import Clock, RealClock
from sysflow.constraints.admission import Admission
from sysflow.engine.adaptive import Replanner
from sysflow.engine.conditional import Conditional
from sysflow.engine.dispatch import BackendRunner
from sysflow.engine.events import EventBus, EventKind, Observer
from sysflow.engine.executor import OpRunner
from sysflow.engine.heap import collector_for_runs, freeze_prepared
from sysflow.engine.leases import DEFAULT_LEASE_TTL, HostLeases
from sysflow.engine.recorder import RunRecorder
from sysflow.engine.result import RunResult
from sysflow.engine.run import Hooks, Restored, Run
from sysflow.engine.stages import (
    attach_run_observers,
    build_calendar,
    build_conditional,
    build_guard,
    build_limits,
    build_state,
    command_env,
    default_hooks,
    default_runner,
    initial_plan,
    new_run_id,
    probing_transport,
)
from sysflow.engine.state import StateMonitor
from sysflow.engine.states import RunStatus
from sysflow.engine.store import Owner, RunStore
from sysflow.errors import InventoryError, LeaseConflict, RunOwned, StoreError
from sysflow.model.inventory import Inventory, SecretLookup
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.planner.compile import compile_workflow
from sysflow.planner.durations import DurationModel
from sysflow.planner.graph import Operation, OpGraph
from sysflow.planner.plan import Plan
from sysflow.transport import (
    DEFAULT_SETTLE_TIMEOUT,
    OutputTap,
    Settled,
    SettlePolicy,
    Settling,
    Transport,
    command_id,
)

if TYPE_CHECKING:
    from sysflow.actors.auth import CredentialProvider
    from sysflow.actors.hostkeys import HostKeyStore

__all__ = ["DEFAULT_HORIZON", "Engine"]

DEFAULT_HORIZON = timedelta(days=35)  # how far ahead windows are expanded for a run


class _Actors(TypedDict):
    """What runs a prepared run's work: built over the engine's transport (see ``Engine._actors``)."""

    conditional: Conditional | None
    runner: OpRunner
    hooks: Hooks | None
    state: StateMonitor | None


class Engine:
    """Runs maintenance workflows over an inventory.

    ``transport`` replaces the default SSH transport (``SimTransport`` for simulation,
    ``LocalTransport`` for local runs); ``runner`` replaces the whole execution path (a backend of
    HostPool actors, see :class:`sysflow.engine.dispatch.BackendRunner`). ``hooks`` builds the
    verification hooks of a run (default: the workflow's verifications through ``sysflow.verify``).
    ``on_output`` is given to the SSH transport the engine builds: each command as it starts and its
    output line by line, unmasked (the CLI's ``-v`` masks what it prints).

    Secrets are never at rest: the run store keeps the inventory with each secret value replaced by
    ``{"$secret": "<name>"}`` (:meth:`Inventory.redacted_json`), and records mask secret values.
    :meth:`resume_async` takes the values from the inventory the engine was given, else from
    ``secret_lookup`` (name -> value), else from ``SYSFLOW_SECRET_<NAME>``; a secret found nowhere
    makes it fail, naming the variables, before anything runs.
    """

    def __init__(
        self,
        inventory: Inventory,
        auth: CredentialProvider | None = None,
        *,
        transport: Transport | None = None,
        runner: OpRunner | None = None,
        clock: Clock | None = None,
        observers: Iterable[Observer] = (),
        ssh_config: str | Path | None = None,
        known_hosts: HostKeyStore | str | Path | Sequence[str | Path] | None = None,
        horizon: timedelta = DEFAULT_HORIZON,
        hooks: Callable[[MaintenanceWorkflow, Inventory, Transport, Clock], Hooks | None] | None = None,
        store: RunStore | str | Path | None = None,
        lease_wait: float | None = 0.0,
        lease_ttl: float = DEFAULT_LEASE_TTL,
        durations: DurationModel | None = None,
        plan: bool = True,
        settle: SettlePolicy | str = SettlePolicy.WAIT,
        on_output: OutputTap | None = None,
    ) -> None:
        self.inventory = inventory
        self._on_output = on_output  # given to the SSH transport the engine builds (run -v)
        self.auth = auth
        self.clock = clock or RealClock()
        self.bus = EventBus()
        for obs in observers:
            self.bus.subscribe(obs)
        self.horizon = horizon
        self._transport = transport
        self._owns_transport = transport is None  # built here, so closed here when runs end
        self._driving = 0  # runs in progress that may use the engine's own transport
        self._runner = runner
        self._ssh_config = ssh_config
        self._known_hosts = known_hosts
        self._hooks = hooks if hooks is not None else default_hooks
        self.store = store if isinstance(store, RunStore) or store is None else RunStore(store)
        self.lease_wait = lease_wait
        self.lease_ttl = lease_ttl
        self.settle_policy = SettlePolicy(settle)  # what a resume does with a command still running
        self.durations = durations
        self.planning = plan
        self.runs: dict[str, Run] = {}
        self.secret_lookup: SecretLookup | None = None  # resume's source of secret values (default: env)
        self._built_runners: dict[str, BackendRunner] = {}

    # -- entry points -----------------------------------------------------------------------------

    def execute(self, workflow: MaintenanceWorkflow, **kw: Any) -> RunResult:
        """Run ``workflow`` to the end (blocking) and return its result."""
        return asyncio.run(self.run(workflow, **kw))

    async def run(self, workflow: MaintenanceWorkflow, *, run_id: str | None = None) -> RunResult:
        """Run ``workflow`` to the end and return its result.

        With a store, the run is recorded first and its hosts are leased for its lifetime; a host
        held by another live run makes it wait up to ``lease_wait`` seconds, then ``LeaseConflict``.
        """
        with collector_for_runs():  # preparing 10,000 hosts allocates in bulk: see sysflow.engine.heap
            return await self.drive(self.prepare(workflow, run_id=run_id))

    def resume(self, run_id: str) -> RunResult:
        """Continue an interrupted run from the store (blocking); see :meth:`resume_async`."""
        return asyncio.run(self.resume_async(run_id))

    async def resume_async(self, run_id: str) -> RunResult:
        """Continue an interrupted run: finished operations are kept, interrupted ones re-checked.

        The run is taken over first: a run whose controller is alive (same host and its process
        runs, or its heartbeat is fresh) is refused with ``RunOwned`` naming it. An operation that
        was running is settled before its check: the command, found on its host by its id, is
        waited for (``settle="wait"``, up to the task's timeout, then stopped) or stopped
        (``settle="stop"``). Then a check that says done makes it succeeded; otherwise it is run
        again only if the task is ``idempotent``, else it fails ("inspect the host")."""
        if self.store is None:
            raise StoreError("resume needs a run store (Engine(..., store=PATH))")
        recorder = RunRecorder(self.store, run_id, self.clock)
        recorder.claim(Owner.this_process(), ttl=self.lease_ttl)
        try:
            row = self.store.run(run_id)
            workflow = MaintenanceWorkflow.from_json(row.workflow_json)
            if not len(self.inventory):
                self.inventory = Inventory.model_validate_json(row.inventory_json)
            try:
                self.inventory.restore_secrets(self.secret_lookup)  # the store keeps references, never values
            except InventoryError:
                recorder.disown()  # nothing ran: the run stays free for a resume with the values
                raise
            restored = Restored(
                self.store.ops(run_id),
                self.store.gates(run_id),
                settle=_settler(run_id, self.settle_policy is SettlePolicy.WAIT, self._transport_of),
            )
            with collector_for_runs():
                run = self.prepare(workflow, run_id=run_id, restored=restored, recorder=recorder)
        except BaseException:
            recorder.disown()  # it never started here: free for the next resume at once
            raise
        return await self.drive(run)

    async def drive(self, run: Run) -> RunResult:
        """Execute a prepared run: lease its hosts (with a store), run it, keep learned durations."""
        self._driving += 1
        try:
            with collector_for_runs():
                freeze_prepared()
                if self.store is None:
                    return await run.execute()
                return await self._drive_owned(run)
        finally:
            await self._ended(run)

    async def _drive_owned(self, run: Run) -> RunResult:
        """Own the run and lease its hosts, run it; then return the leases and, unless the run was
        taken over, disown it and keep its learned durations."""
        if run.recorder.claim_token() is None:  # prepared elsewhere, or lost meanwhile
            run.recorder.claim(Owner.this_process(), ttl=self.lease_ttl)
        if isinstance(self._runner, BackendRunner) and self._runner._env_of is None:
            # a runner given to the engine (`sysflow run --backend`) marks commands too, so a
            # resume finds them; one runner shared by concurrent runs marks them for the first
            self._runner._env_of = command_env(run.id)
        leases = await self._leased(run)
        lost: RunOwned | None = None
        try:
            return await run.execute()
        except BaseExceptionGroup as group:  # a host chain found the run taken over: stop here
            lost = _taken_over(group)
            if lost is None:
                raise
            raise lost from None
        except RunOwned as exc:
            lost = exc
            raise
        finally:
            await leases.release()
            if lost is None:
                run.recorder.disown()
                if run.durations is not None:
                    run.recorder.save_durations(run.workflow.name, run.durations)

    async def _leased(self, run: Run) -> HostLeases:
        """The run's hosts, leased; a refusal fails the run (stored, announced) and disowns it."""
        leases = HostLeases(
            run.recorder,
            run.id,
            run.graph.hosts,
            clock=self._lease_clock(),
            ttl=self.lease_ttl,
            wait=self.lease_wait,
        )
        try:
            await leases.acquire()
        except LeaseConflict as exc:
            run.tracker.emit(EventKind.LEASE_REFUSED, str(exc), holder=exc.holder, hosts=list(exc.hosts))
            run.recorder.set_status(RunStatus.FAILED, reason=str(exc))
            run.recorder.disown()
            raise
        return leases

    async def _ended(self, run: Run) -> None:
        """Stop the runner built for the run; close the engine's own transport after its last run."""
        built = self._built_runners.pop(run.id, None)
        if built is not None:
            await built.stop()
        self._driving -= 1
        if self._owns_transport and self._transport is not None and not self._driving:
            transport, self._transport = self._transport, None
            await transport.close()

    def _transport_of(self, op: Operation) -> Transport:
        """Where ``op``'s command runs: a local transport for a local task, else the engine's."""
        return LocalTransport(clock=self.clock) if op.local else self.transport

    def _lease_clock(self) -> Clock | None:
        return None if isinstance(self.clock, RealClock) else self.clock

    def prepare(
        self,
        workflow: MaintenanceWorkflow,
        *,
        run_id: str | None = None,
        restored: Restored | None = None,
        recorder: RunRecorder | None = None,
    ) -> Run:
        """Compile and set up a run without starting it (``await run.execute()`` starts it).

        In stages (:mod:`sysflow.engine.stages`): compile → calendar → limits → guard → initial
        plan → conditional, hooks and state checks → runner → ``Run`` → record it (a new run only).
        """
        graph = compile_workflow(workflow, self.inventory)
        now = self.clock.now()
        calendar = build_calendar(workflow, self.inventory, now, self.horizon)
        limits = build_limits(workflow, self.inventory, graph)
        guard = build_guard(workflow, calendar, graph, self.clock, now, self.horizon)
        rid = run_id or new_run_id(workflow, now)
        durations = self._durations_for(workflow)
        # a resumed run keeps the order it had; re-planning starts again with the next run
        fresh = restored is None
        plan = (
            initial_plan(workflow, graph, calendar, limits, durations, now)
            if self.planning and fresh
            else None
        )
        run = Run(
            rid,
            workflow,
            graph,
            clock=self.clock,
            admission=Admission(limits, self.clock),
            guard=guard,
            bus=self.bus,
            recorder=recorder or RunRecorder(self.store, rid, self.clock),
            durations=durations,
            restored=restored,
            plan=plan,
            replanner=Replanner(plan) if plan is not None else None,
            **self._actors(workflow, rid, graph),
        )
        if fresh:
            self._record(run, plan, now)
        self.runs[rid] = run
        attach_run_observers(run, self.bus, self.inventory.host_groups)  # notifications, change, approval
        return run

    def _actors(self, workflow: MaintenanceWorkflow, rid: str, graph: OpGraph) -> _Actors:
        """The run's conditional, runner, verification hooks and state checks, over the transport."""
        transport = self.transport
        conditional = build_conditional(workflow, self.inventory, transport, self.clock)
        runner = self._runner or self._own_runner(rid, graph, transport)
        probing = probing_transport(transport, conditional)
        return {
            "conditional": conditional,
            "runner": runner,
            "hooks": self._hooks(workflow, self.inventory, probing, self.clock),
            "state": build_state(workflow, transport, self.clock),
        }

    def _own_runner(self, rid: str, graph: OpGraph, transport: Transport) -> BackendRunner:
        """HostPools in this process over the engine's transport; stopped when the run ends."""
        runner = default_runner(rid, graph, transport, self.clock)
        self._built_runners[rid] = runner  # stopped when the run ends (see drive)
        return runner

    def _record(self, run: Run, plan: Plan | None, now: datetime) -> None:
        """A new run in the store: its row and pending operations, then its first plan."""
        recorder = run.recorder
        if recorder.store is None:
            return
        workflow = run.workflow
        recorder.create(
            workflow.name,
            workflow.to_json(),
            self.inventory.redacted_json(workflow.secrets),  # secrets as {"$secret": name}
            run.tracker.records.values(),
            at=now,
            owner=Owner.this_process(),
        )
        if plan is not None:
            recorder.add_plan(_with_forecast(plan, run), "initial", at=now)

    def _durations_for(self, workflow: MaintenanceWorkflow) -> DurationModel:
        """The learned durations of this workflow (from the store) over the tasks' priors."""
        model = self.durations
        if model is None and self.store is not None:
            saved = self.store.load_durations(workflow.name)
            model = DurationModel.from_json(saved) if saved else None
        priors = {t.id: t.estimate for t in workflow.tasks}
        return (model or DurationModel()).with_priors(priors).for_run()

    @property
    def transport(self) -> Transport:
        """The transport runs use: the one given, else SSH over the inventory with ``auth``."""
        if self._transport is None:
            from sysflow.actors.ssh import SSHTransport

            self._transport = SSHTransport(
                _resolver(self.inventory, self._ssh_config),
                self.auth,
                known_hosts=self._known_hosts,
                clock=self.clock,
                on_output=self._on_output,
            )
        return self._transport


def _resolver(inventory: Inventory, ssh_config: str | Path | None) -> Callable[[str], Any]:
    """Host name -> connection settings (inventory, then OpenSSH client config), for SSH."""

    def resolve(name: str) -> Any:
        return inventory.connection(name, ssh_config=ssh_config)

    return resolve


def _settler(
    run_id: str, wait: bool, transport_of: Callable[[Operation], Transport]
) -> Callable[[Operation], Awaitable[Settled | None]]:
    """How a resumed run settles an interrupted operation's command on its host (None: the
    transport cannot tell, so the command may still be running)."""

    async def settle(op: Operation) -> Settled | None:
        transport = transport_of(op)
        if not isinstance(transport, Settling):
            return None
        bound = op.timeout if op.timeout is not None else DEFAULT_SETTLE_TIMEOUT
        return await transport.settle(op.where, command_id(run_id, op.id), wait=wait, timeout=bound)

    return settle


def _taken_over(group: BaseExceptionGroup[BaseException]) -> RunOwned | None:
    """The ``RunOwned`` in a run's exception group, if the run failed because it was taken over."""
    for exc in group.exceptions:
        if isinstance(exc, RunOwned):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            found = _taken_over(exc)
            if found is not None:
                return found
    return None


def _with_forecast(plan: Plan, run: Run) -> Plan:
    """The plan with the Monte Carlo forecast made from it, stored so ``sysflow report`` can set the
    forecast against what happened."""
    from dataclasses import replace

    from sysflow.planner.forecast import distribution, samples_for, task_retries

    model = run.durations or DurationModel()
    dist = distribution(plan, model, retries=task_retries(run.workflow), samples=samples_for(plan))
    return replace(plan, forecast=dist.to_dict())
