"""sysflow: agentless maintenance across fleets: windows, waves, verification, planning, SSH and Ray.

This module is the public facade; everything else may change. Heavy dependencies (OR-Tools, Ray,
matplotlib, asyncssh) are imported only when used::

    import sysflow
    inventory = sysflow.Inventory.load("inventory.ini")
    workflow = sysflow.MaintenanceWorkflow.from_file("patching.yaml")
    result = sysflow.Engine(inventory, sysflow.SSHAuth.from_agent()).execute(workflow)
    print(result.status, result.failed_servers)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sysflow.actors.auth import CredentialProvider, SSHAuth
    from sysflow.actors.backends import LocalBackend
    from sysflow.actors.hostkeys import HostKeyStore
    from sysflow.actors.hostpool import HostPool
    from sysflow.actors.local import LocalTransport
    from sysflow.actors.ray_backend import RayBackend
    from sysflow.actors.ssh import SSHTransport
    from sysflow.audit.log import AuditLog, AuditRecord
    from sysflow.audit.observer import AuditObserver
    from sysflow.clock import Clock, ManualClock, RealClock
    from sysflow.constraints.admission import Admission, Denied, Grant
    from sysflow.constraints.calendar import Calendar, Window
    from sysflow.constraints.capacity import Limits
    from sysflow.engine.dispatch import BackendRunner
    from sysflow.engine.engine import Engine
    from sysflow.engine.events import Event, EventBus, EventKind, Observer, RecordingObserver
    from sysflow.engine.result import HostOutcome, OpRecord, RunResult
    from sysflow.engine.run import Run
    from sysflow.engine.state import StateProvider
    from sysflow.engine.states import OpState, RunStatus
    from sysflow.engine.store import RunStore
    from sysflow.errors import (
        AuditTampered,
        AuthenticationFailed,
        CommandTimeout,
        ConnectionFailed,
        ConnectTimeout,
        ConstraintError,
        ExecutionError,
        HostKeyMismatch,
        HostUnreachable,
        InfeasiblePlan,
        InventoryError,
        LeaseConflict,
        PlanningError,
        Problem,
        RunFailed,
        StoreError,
        SysflowError,
        TransportError,
        VerificationError,
        WindowClosed,
        WorkflowError,
    )
    from sysflow.model.inventory import Group, Host, Inventory
    from sysflow.model.ssh_config import ConnectionSettings
    from sysflow.model.verification import ComparisonSpec, ProbeSpec, VerificationSpec
    from sysflow.model.workflow import (
        ExpiryPolicy,
        MaintenanceWorkflow,
        RolloutSpec,
        RolloutStrategy,
        Task,
        Workflow,
    )
    from sysflow.notify.notifier import Notifier
    from sysflow.planner.build import plan
    from sysflow.planner.compile import compile_workflow
    from sysflow.planner.durations import DurationModel
    from sysflow.planner.forecast import Forecast
    from sysflow.planner.graph import Operation, OpGraph
    from sysflow.planner.plan import Plan
    from sysflow.schedule.model import ScheduleSpec
    from sysflow.schedule.scheduler import Scheduler
    from sysflow.schedule.schedules import Schedules
    from sysflow.sim.fleet import SimFleet
    from sysflow.sim.loop import VirtualClock, run_virtual
    from sysflow.sim.profile import SimProfile
    from sysflow.sim.transport import SimTransport
    from sysflow.transport import CommandResult, Transport
    from sysflow.verify.compare import Verdict
    from sysflow.verify.gate import Verifier
    from sysflow.verify.report import VerificationReport

_LAZY: dict[str, str] = {
    "Admission": "sysflow.constraints.admission",
    "AuditLog": "sysflow.audit.log",
    "AuditObserver": "sysflow.audit.observer",
    "AuditRecord": "sysflow.audit.log",
    "AuditTampered": "sysflow.errors",
    "AuthenticationFailed": "sysflow.errors",
    "BackendRunner": "sysflow.engine.dispatch",
    "Calendar": "sysflow.constraints.calendar",
    "Clock": "sysflow.clock",
    "CommandResult": "sysflow.transport",
    "CommandTimeout": "sysflow.errors",
    "ComparisonSpec": "sysflow.model.verification",
    "ConnectTimeout": "sysflow.errors",
    "ConnectionFailed": "sysflow.errors",
    "ConnectionSettings": "sysflow.model.ssh_config",
    "ConstraintError": "sysflow.errors",
    "CredentialProvider": "sysflow.actors.auth",
    "Denied": "sysflow.constraints.admission",
    "DurationModel": "sysflow.planner.durations",
    "Engine": "sysflow.engine.engine",
    "Event": "sysflow.engine.events",
    "EventBus": "sysflow.engine.events",
    "EventKind": "sysflow.engine.events",
    "ExecutionError": "sysflow.errors",
    "ExpiryPolicy": "sysflow.model.workflow",
    "Forecast": "sysflow.planner.forecast",
    "Grant": "sysflow.constraints.admission",
    "Group": "sysflow.model.inventory",
    "Host": "sysflow.model.inventory",
    "HostKeyMismatch": "sysflow.errors",
    "HostKeyStore": "sysflow.actors.hostkeys",
    "HostOutcome": "sysflow.engine.result",
    "HostPool": "sysflow.actors.hostpool",
    "HostUnreachable": "sysflow.errors",
    "InfeasiblePlan": "sysflow.errors",
    "Inventory": "sysflow.model.inventory",
    "InventoryError": "sysflow.errors",
    "LeaseConflict": "sysflow.errors",
    "Limits": "sysflow.constraints.capacity",
    "LocalBackend": "sysflow.actors.backends",
    "LocalTransport": "sysflow.actors.local",
    "MaintenanceWorkflow": "sysflow.model.workflow",
    "ManualClock": "sysflow.clock",
    "Notifier": "sysflow.notify.notifier",
    "Observer": "sysflow.engine.events",
    "OpGraph": "sysflow.planner.graph",
    "OpRecord": "sysflow.engine.result",
    "OpState": "sysflow.engine.states",
    "Operation": "sysflow.planner.graph",
    "Plan": "sysflow.planner.plan",
    "PlanningError": "sysflow.errors",
    "ProbeSpec": "sysflow.model.verification",
    "Problem": "sysflow.errors",
    "RayBackend": "sysflow.actors.ray_backend",
    "RealClock": "sysflow.clock",
    "RecordingObserver": "sysflow.engine.events",
    "RolloutSpec": "sysflow.model.workflow",
    "RolloutStrategy": "sysflow.model.workflow",
    "Run": "sysflow.engine.run",
    "RunFailed": "sysflow.errors",
    "RunResult": "sysflow.engine.result",
    "RunStatus": "sysflow.engine.states",
    "RunStore": "sysflow.engine.store",
    "SSHAuth": "sysflow.actors.auth",
    "SSHTransport": "sysflow.actors.ssh",
    "ScheduleSpec": "sysflow.schedule.model",
    "Scheduler": "sysflow.schedule.scheduler",
    "Schedules": "sysflow.schedule.schedules",
    "SimFleet": "sysflow.sim.fleet",
    "SimProfile": "sysflow.sim.profile",
    "SimTransport": "sysflow.sim.transport",
    "StateProvider": "sysflow.engine.state",
    "StoreError": "sysflow.errors",
    "SysflowError": "sysflow.errors",
    "Task": "sysflow.model.workflow",
    "Transport": "sysflow.transport",
    "TransportError": "sysflow.errors",
    "Verdict": "sysflow.verify.compare",
    "VerificationError": "sysflow.errors",
    "VerificationReport": "sysflow.verify.report",
    "VerificationSpec": "sysflow.model.verification",
    "Verifier": "sysflow.verify.gate",
    "VirtualClock": "sysflow.sim.loop",
    "Window": "sysflow.constraints.calendar",
    "WindowClosed": "sysflow.errors",
    "Workflow": "sysflow.model.workflow",
    "WorkflowError": "sysflow.errors",
    "compile_workflow": "sysflow.planner.compile",
    "plan": "sysflow.planner.build",
    "run_virtual": "sysflow.sim.loop",
}

__version__ = "0.1.0"

__all__ = [
    "Admission",
    "AuditLog",
    "AuditObserver",
    "AuditRecord",
    "AuditTampered",
    "AuthenticationFailed",
    "BackendRunner",
    "Calendar",
    "Clock",
    "CommandResult",
    "CommandTimeout",
    "ComparisonSpec",
    "ConnectTimeout",
    "ConnectionFailed",
    "ConnectionSettings",
    "ConstraintError",
    "CredentialProvider",
    "Denied",
    "DurationModel",
    "Engine",
    "Event",
    "EventBus",
    "EventKind",
    "ExecutionError",
    "ExpiryPolicy",
    "Forecast",
    "Grant",
    "Group",
    "Host",
    "HostKeyMismatch",
    "HostKeyStore",
    "HostOutcome",
    "HostPool",
    "HostUnreachable",
    "InfeasiblePlan",
    "Inventory",
    "InventoryError",
    "LeaseConflict",
    "Limits",
    "LocalBackend",
    "LocalTransport",
    "MaintenanceWorkflow",
    "ManualClock",
    "Notifier",
    "Observer",
    "OpGraph",
    "OpRecord",
    "OpState",
    "Operation",
    "Plan",
    "PlanningError",
    "ProbeSpec",
    "Problem",
    "RayBackend",
    "RealClock",
    "RecordingObserver",
    "RolloutSpec",
    "RolloutStrategy",
    "Run",
    "RunFailed",
    "RunResult",
    "RunStatus",
    "RunStore",
    "SSHAuth",
    "SSHTransport",
    "ScheduleSpec",
    "Scheduler",
    "Schedules",
    "SimFleet",
    "SimProfile",
    "SimTransport",
    "StateProvider",
    "StoreError",
    "SysflowError",
    "Task",
    "Transport",
    "TransportError",
    "Verdict",
    "VerificationError",
    "VerificationReport",
    "VerificationSpec",
    "Verifier",
    "VirtualClock",
    "Window",
    "WindowClosed",
    "Workflow",
    "WorkflowError",
    "__version__",
    "compile_workflow",
    "plan",
    "run_virtual",
]


def __getattr__(name: str) -> Any:
    """Import public names on first use, so ``import sysflow`` (and the CLI) start fast."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sysflow' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
