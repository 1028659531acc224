"""The stages that set a run up, each a small function of what the one before built.

``Engine.prepare`` calls them in order: compile (``planner.compile``) → calendar → limits → window
guard → initial plan → conditional, verification hooks and state checks → runner → ``Run`` →
record. They read the engine's settings only through their arguments, so each can be tested, and
replaced, on its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sysflow.actors.backends import DEFAULT_SHARD, LocalBackend, ShardSpec
from sysflow.actors.local import LocalTransport
from sysflow.clock import Clock
from sysflow.constraints.calendar import Calendar
from sysflow.constraints.capacity import Limits
from sysflow.engine.conditional import Conditional, RenderingTransport
from sysflow.engine.context import Hooks
from sysflow.engine.dispatch import BackendRunner
from sysflow.engine.events import EventBus
from sysflow.engine.state import StateMonitor
from sysflow.engine.windows import WindowGuard, WindowLike
from sysflow.errors import SysflowError
from sysflow.model.inventory import UNGROUPED, Inventory
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.planner.durations import DurationModel
from sysflow.planner.graph import Operation, OpGraph
from sysflow.planner.plan import Plan
from sysflow.transport import COMMAND_ID_VAR, Transport, command_id

if TYPE_CHECKING:
    from sysflow.engine.run import Run

__all__ = [
    "UNCAPPED",
    "build_calendar",
    "build_conditional",
    "build_guard",
    "build_limits",
    "build_state",
    "command_env",
    "default_hooks",
    "default_runner",
    "initial_plan",
    "new_run_id",
    "probing_transport",
]

UNCAPPED = 1 << 30  # the engine's own pools: admission (pools, limits, budgets) caps concurrency


def new_run_id(workflow: MaintenanceWorkflow, now: datetime) -> str:
    """``<workflow>-<UTC stamp>-<6 hex>``: sortable by start, unique across controllers."""
    return f"{workflow.name}-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def build_calendar(
    workflow: MaintenanceWorkflow, inventory: Inventory, now: datetime, horizon: timedelta
) -> Calendar:
    """The workflow's windows as concrete intervals, from a day back to ``horizon`` ahead."""
    return Calendar.build(
        workflow.windows,
        start=now - timedelta(days=1),
        end=now + horizon,
        known_groups={*inventory.groups, "all", UNGROUPED},  # as compile knows them
    )


def build_limits(workflow: MaintenanceWorkflow, inventory: Inventory, graph: OpGraph) -> Limits:
    """Pools, limits and budgets over the run's operations (the planner encodes the same)."""
    return Limits.from_ops(
        workflow.parallelism,
        graph.ops.values(),
        group_sizes={g: len(inventory.group_hosts(g)) for g in inventory.groups},
        known_groups=set(inventory.groups),
        known_tasks={t.id for t in workflow.tasks},
    )


def build_guard(
    workflow: MaintenanceWorkflow,
    calendar: Calendar,
    graph: OpGraph,
    clock: Clock,
    now: datetime,
    horizon: timedelta,
) -> WindowGuard:
    """Windows at run time: each host starts work only inside one of its windows."""
    return WindowGuard(
        clock,
        _windows_of(calendar, graph, now, now + horizon),
        split_chains=workflow.windows.allow_split_chains,
    )


def initial_plan(
    workflow: MaintenanceWorkflow,
    graph: OpGraph,
    calendar: Calendar,
    limits: Limits,
    durations: DurationModel,
    now: datetime,
) -> Plan | None:
    """The greedy plan the run starts from (None when the planner cannot place anything)."""
    from sysflow.planner.build import build_problem, solve_problem

    try:
        problem = build_problem(
            graph, calendar, limits, durations, now, split_chains=workflow.windows.allow_split_chains
        )
        return solve_problem(problem, solver="greedy")
    except SysflowError:
        return None


def build_conditional(
    workflow: MaintenanceWorkflow, inventory: Inventory, transport: Transport, clock: Clock
) -> Conditional | None:
    """Templates, conditions, registered results and branches, when the workflow uses any; and the
    masking of secret values in outputs, when the inventory holds secrets."""
    if not Conditional.wanted(workflow) and not inventory.has_secrets(workflow.secrets):
        return None
    names = inventory.secret_names()
    return Conditional(workflow, inventory.host_vars, transport, clock, secret_names=names)


def probing_transport(transport: Transport, conditional: Conditional | None) -> Transport:
    """What verification probes run over: the transport, rendering templates when conditional."""
    return RenderingTransport(transport, conditional) if conditional is not None else transport


def build_state(workflow: MaintenanceWorkflow, transport: Transport, clock: Clock) -> StateMonitor | None:
    """The workflow's state checks (before waves, at gates) and its change gate, when it has any."""
    if not workflow.state_checks and workflow.change is None:
        return None
    monitor = StateMonitor.from_workflow(workflow.state_checks, transport, clock)
    if workflow.change is not None:
        from sysflow.engine.change import ChangeTicketProvider, change_state_check

        monitor.checks.insert(
            0, (change_state_check(workflow.change), ChangeTicketProvider(workflow.change, clock))
        )
    return monitor


def attach_run_observers(
    run: Run, bus: EventBus, groups_of: Callable[[str], Sequence[str]] | None = None
) -> None:
    """Observers a run's workflow asks for, subscribed to ``bus`` for this run only (each leaves it
    once the run is over): with ``notifications:``, its routes (``groups_of`` answers their group
    filters); with ``change:``, the ticket gets the outcome at the end; with ``approval_webhook:``,
    each approval request goes out with signed answer URLs."""
    workflow = run.workflow
    if workflow.notifications:
        from sysflow.engine.notify import Notifier, RunNotifications

        bus.subscribe(RunNotifications(Notifier(workflow.notifications, groups_of=groups_of), run.id, bus))
    if workflow.change is not None:
        from sysflow.engine.change import ChangeTicketCloser

        bus.subscribe(ChangeTicketCloser(workflow.change, run_id=run.id, bus=bus))
    if workflow.approval_webhook is not None:
        from sysflow.engine.approval import ApprovalRequester

        waves = run.graph.waves
        bus.subscribe(
            ApprovalRequester(workflow.approval_webhook, run.id,
                              lambda w: len(waves[w]) if w < len(waves) else 0, bus=bus)
        )  # fmt: skip


def default_hooks(
    workflow: MaintenanceWorkflow, inventory: Inventory, transport: Transport, clock: Clock
) -> Hooks | None:
    """The workflow's verifications through ``sysflow.verify`` (None when it declares none)."""
    if not workflow.verifications:
        return None
    from sysflow.engine.verification import VerificationHooks

    return VerificationHooks(workflow, inventory, transport, clock)


def default_runner(rid: str, graph: OpGraph, transport: Transport, clock: Clock) -> BackendRunner:
    """HostPools in this process, one per network segment, over the engine's transport."""
    members: dict[str, list[str]] = {}
    placed: set[str] = set()
    for op in graph.ops.values():
        if not op.local and op.where not in placed:  # a delegate: in the pool of its first user
            members.setdefault(op.segment or DEFAULT_SHARD, []).append(op.where)
            placed.add(op.where)
    shards = [
        ShardSpec(name, tuple(hosts), _no_factory, max_in_flight=UNCAPPED, shared=transport)
        for name, hosts in members.items()
    ]
    return BackendRunner(
        LocalBackend(clock=clock),
        shards,
        clock=clock,
        local=LocalTransport(clock=clock),
        env_of=command_env(rid),  # every command carries its id: a resume finds it on the host
    )


def command_env(run_id: str) -> Callable[[Operation], Mapping[str, str]]:
    """The environment that marks each command of run ``run_id`` with its id (see ``command_id``)."""

    def env(op: Operation) -> Mapping[str, str]:
        return {COMMAND_ID_VAR: command_id(run_id, op.id)}

    return env


def _no_factory() -> Transport:  # pragma: no cover - shards with a shared transport never build one
    raise AssertionError("shared transport")


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
