"""The ``Engine``: ``Engine(inventory, auth).execute(workflow)`` from the brief.

It compiles the workflow against the inventory, builds the run's calendar and limits (the same
objects the planner encodes), plans the order, and runs the waves through a transport (SSH by
default, the simulator's or a local one when given) or a backend of HostPool actors.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sysflow.actors.backends import DEFAULT_SHARD, LocalBackend, ShardSpec
from sysflow.actors.local import LocalTransport
from sysflow.clock import Clock, RealClock
from sysflow.constraints.admission import Admission
from sysflow.constraints.calendar import Calendar
from sysflow.constraints.capacity import Limits
from sysflow.engine.adaptive import Replanner
from sysflow.engine.conditional import Conditional, RenderingTransport
from sysflow.engine.dispatch import BackendRunner
from sysflow.engine.events import EventBus, EventKind, Observer
from sysflow.engine.executor import OpRunner
from sysflow.engine.leases import DEFAULT_LEASE_TTL, HostLeases
from sysflow.engine.recorder import RunRecorder
from sysflow.engine.result import RunResult
from sysflow.engine.run import Hooks, Restored, Run
from sysflow.engine.state import StateMonitor
from sysflow.engine.states import RunStatus
from sysflow.engine.store import Owner, RunStore
from sysflow.engine.windows import WindowGuard, WindowLike
from sysflow.errors import InventoryError, LeaseConflict, RunOwned, StoreError, SysflowError
from sysflow.model.inventory import Inventory, SecretLookup
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.planner.compile import compile_workflow
from sysflow.planner.durations import DurationModel
from sysflow.planner.graph import Operation, OpGraph
from sysflow.transport import (
    COMMAND_ID_VAR,
    DEFAULT_SETTLE_TIMEOUT,
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


class Engine:
    """Runs maintenance workflows over an inventory.

    ``transport`` replaces the default SSH transport (``SimTransport`` for simulation,
    ``LocalTransport`` for local runs); ``runner`` replaces the whole execution path (a backend of
    HostPool actors, see :class:`sysflow.engine.dispatch.BackendRunner`). ``hooks`` builds the
    verification hooks of a run (default: the workflow's verifications through ``sysflow.verify``).

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
    ) -> None:
        self.inventory = inventory
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
        self._hooks = hooks if hooks is not None else _default_hooks
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
                self.store.ops(run_id), self.store.gates(run_id), settle=self._settler(run_id)
            )
            run = self.prepare(workflow, run_id=run_id, restored=restored, recorder=recorder)
        except BaseException:
            recorder.disown()  # it never started here: free for the next resume at once
            raise
        return await self.drive(run)

    def _settler(self, run_id: str) -> Callable[[Operation], Awaitable[Settled | None]]:
        """How a resumed run settles an interrupted operation's command on its host (None: the
        transport cannot tell, so the command may still be running)."""
        wait = self.settle_policy is SettlePolicy.WAIT

        async def settle(op: Operation) -> Settled | None:
            transport: Transport = LocalTransport(clock=self.clock) if op.local else self.transport
            if not isinstance(transport, Settling):
                return None
            bound = op.timeout if op.timeout is not None else DEFAULT_SETTLE_TIMEOUT
            return await transport.settle(op.host, command_id(run_id, op.id), wait=wait, timeout=bound)

        return settle

    async def drive(self, run: Run) -> RunResult:
        """Execute a prepared run: lease its hosts (with a store), run it, keep learned durations."""
        self._driving += 1
        try:
            if self.store is None:
                return await run.execute()
            leases = HostLeases(
                run.recorder,
                run.id,
                run.graph.hosts,
                clock=self._lease_clock(),
                ttl=self.lease_ttl,
                wait=self.lease_wait,
            )
            if run.recorder.claim_token() is None:  # prepared elsewhere, or lost meanwhile
                run.recorder.claim(Owner.this_process(), ttl=self.lease_ttl)
            if isinstance(self._runner, BackendRunner) and self._runner._env_of is None:
                # a runner given to the engine (`sysflow run --backend`) marks commands too, so a
                # resume finds them; one runner shared by concurrent runs marks them for the first
                self._runner._env_of = _command_env(run.id)
            try:
                await leases.acquire()
            except LeaseConflict as exc:
                run.tracker.emit(EventKind.LEASE_REFUSED, str(exc), holder=exc.holder, hosts=list(exc.hosts))
                run.recorder.set_status(RunStatus.FAILED, reason=str(exc))
                run.recorder.disown()
                raise
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
                        run.recorder.save_durations(run.workflow.name, run.durations.to_json())
        finally:
            built = self._built_runners.pop(run.id, None)
            if built is not None:
                await built.stop()
            self._driving -= 1
            if self._owns_transport and self._transport is not None and not self._driving:
                transport, self._transport = self._transport, None
                await transport.close()

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
        """Compile and set up a run without starting it (``await run.execute()`` starts it)."""
        graph = compile_workflow(workflow, self.inventory)
        now = self.clock.now()
        calendar = Calendar.build(
            workflow.windows,
            start=now - timedelta(days=1),
            end=now + self.horizon,
            known_groups=self.inventory.groups,
        )
        limits = Limits.from_ops(
            workflow.parallelism,
            graph.ops.values(),
            group_sizes={g: len(self.inventory.group_hosts(g)) for g in self.inventory.groups},
            known_groups=set(self.inventory.groups),
            known_tasks={t.id for t in workflow.tasks},
        )
        guard = WindowGuard(
            self.clock,
            _windows_of(calendar, graph, now, now + self.horizon),
            split_chains=workflow.windows.allow_split_chains,
        )
        rid = run_id or f"{workflow.name}-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
        recorder = recorder or RunRecorder(self.store, rid, self.clock)
        durations = self._durations_for(workflow)
        # a resumed run keeps the order it had; re-planning starts again with the next run
        initial = (
            self._initial_plan(workflow, graph, calendar, limits, durations, now)
            if self.planning and restored is None
            else None
        )
        transport = self.transport
        conditional = self._conditional(workflow, transport)
        probing = RenderingTransport(transport, conditional) if conditional is not None else transport
        run = Run(
            rid,
            workflow,
            graph,
            runner=self._runner or self._default_runner(rid, graph, transport),
            clock=self.clock,
            admission=Admission(limits, self.clock),
            guard=guard,
            bus=self.bus,
            hooks=self._hooks(workflow, self.inventory, probing, self.clock),
            recorder=recorder,
            durations=durations,
            restored=restored,
            plan=initial,
            replanner=Replanner(initial) if initial is not None else None,
            conditional=conditional,
            state=StateMonitor.from_workflow(workflow.state_checks, transport, self.clock)
            if workflow.state_checks
            else None,
        )
        if recorder.store is not None and restored is None:
            recorder.create(
                workflow.name,
                workflow.to_json(),
                self.inventory.redacted_json(workflow.secrets),  # secrets as {"$secret": name}
                run.tracker.records.values(),
                at=now,
                owner=Owner.this_process(),
            )
        if recorder.store is not None and initial is not None and restored is None:
            recorder.add_plan(initial.to_json(indent=None), "initial", at=now)
        self.runs[rid] = run
        return run

    def _default_runner(self, rid: str, graph: OpGraph, transport: Transport) -> BackendRunner:
        """HostPools in this process, one per network segment, over the engine's transport."""
        members: dict[str, list[str]] = {}
        for op in graph.ops.values():
            if not op.local:
                members.setdefault(op.segment or DEFAULT_SHARD, []).append(op.host)
        shards = [
            ShardSpec(
                name, tuple(dict.fromkeys(hosts)), _no_factory, max_in_flight=UNCAPPED, shared=transport
            )
            for name, hosts in members.items()
        ]
        runner = BackendRunner(
            LocalBackend(clock=self.clock),
            shards,
            clock=self.clock,
            local=LocalTransport(clock=self.clock),
            env_of=_command_env(rid),  # every command carries its id: a resume finds it on the host
        )
        self._built_runners[rid] = runner  # stopped when the run ends (see drive)
        return runner

    def _conditional(self, workflow: MaintenanceWorkflow, transport: Transport) -> Conditional | None:
        """Templates, conditions, registered results and branches, when the workflow uses any; and the
        masking of secret values in outputs, when the inventory holds secrets."""
        if not Conditional.wanted(workflow) and not self.inventory.has_secrets(workflow.secrets):
            return None
        names = self.inventory.secret_names()
        return Conditional(workflow, self.inventory.host_vars, transport, self.clock, secret_names=names)

    def _initial_plan(
        self,
        workflow: MaintenanceWorkflow,
        graph: OpGraph,
        calendar: Calendar,
        limits: Limits,
        durations: DurationModel,
        now: datetime,
    ) -> Any:
        """The greedy plan the run starts from (None when the planner cannot place anything)."""
        from sysflow.planner.build import build_problem, solve_problem

        try:
            problem = build_problem(
                graph, calendar, limits, durations, now, split_chains=workflow.windows.allow_split_chains
            )
            return solve_problem(problem, solver="greedy")
        except SysflowError:
            return None

    def _durations_for(self, workflow: MaintenanceWorkflow) -> DurationModel:
        """The learned durations of this workflow (from the store) over the tasks' priors."""
        model = self.durations
        if model is None and self.store is not None:
            saved = self.store.load_durations(workflow.name)
            model = DurationModel.from_json(saved) if saved else None
        priors = {t.id: t.estimate for t in workflow.tasks}
        return (model or DurationModel()).with_priors(priors)

    @property
    def transport(self) -> Transport:
        """The transport runs use: the one given, else SSH over the inventory with ``auth``."""
        if self._transport is None:
            from sysflow.actors.ssh import SSHTransport

            self._transport = SSHTransport(
                self._resolver(), self.auth, known_hosts=self._known_hosts, clock=self.clock
            )
        return self._transport

    def _resolver(self) -> Callable[[str], Any]:
        inventory, ssh_config = self.inventory, self._ssh_config

        def resolve(name: str) -> Any:
            return inventory.connection(name, ssh_config=ssh_config)

        return resolve


UNCAPPED = 1 << 30  # the engine's own pools: admission (pools, limits, budgets) caps concurrency


def _no_factory() -> Transport:  # pragma: no cover - shards with a shared transport never build one
    raise AssertionError("shared transport")


def _command_env(run_id: str) -> Callable[[Operation], Mapping[str, str]]:
    """The environment that marks each command of run ``run_id`` with its id (see ``command_id``)."""

    def env(op: Operation) -> Mapping[str, str]:
        return {COMMAND_ID_VAR: command_id(run_id, op.id)}

    return env


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


def _windows_of(
    calendar: Calendar, graph: OpGraph, start: datetime, end: datetime
) -> Callable[[str], Sequence[WindowLike] | None]:
    """Per-host windows, computed once per distinct set of windowed groups."""
    cache: dict[tuple[str, ...], Sequence[WindowLike]] = {}
    groups_of = {op.host: op.groups for op in graph.ops.values()}

    def windows(host: str) -> Sequence[WindowLike] | None:
        groups = groups_of.get(host, ())
        key = calendar.host_key(groups)
        if key not in cache:
            cache[key] = calendar.host_windows(groups, start, end)
        return cache[key]

    return windows


def _default_hooks(
    workflow: MaintenanceWorkflow, inventory: Inventory, transport: Transport, clock: Clock
) -> Hooks | None:
    if not workflow.verifications:
        return None
    from sysflow.engine.verification import VerificationHooks

    return VerificationHooks(workflow, inventory, transport, clock)
