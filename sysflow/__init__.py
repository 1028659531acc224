"""sysflow: agentless maintenance across fleets: windows, waves, verification, planning, SSH and Ray.

This module is the public facade: the names a user writes against. Everything else may change;
fakes and clocks for users' own tests live in :mod:`sysflow.testing`. Heavy dependencies
(OR-Tools, Ray, matplotlib, asyncssh) are imported only when used::

    import sysflow
    inventory = sysflow.Inventory.load("inventory.ini")
    workflow = sysflow.MaintenanceWorkflow.from_file("patching.yaml")
    result = sysflow.Engine(inventory, sysflow.SSHAuth.from_agent()).execute(workflow)
    print(result.status, result.failed_servers)

:data:`_LAZY` names every public object and its module; ``tests/test_public_api.py`` checks that
``__all__`` and the type-checking imports below name exactly the same objects.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sysflow.actors.auth import CredentialProvider, SSHAuth
    from sysflow.actors.backends import LocalBackend
    from sysflow.actors.hostkeys import HostKeyStore
    from sysflow.actors.ray_backend import RayBackend
    from sysflow.audit.log import AuditLog
    from sysflow.constraints.calendar import Calendar
    from sysflow.engine.engine import Engine
    from sysflow.engine.events import Event, EventKind, Observer
    from sysflow.engine.notify import Notifier
    from sysflow.engine.result import HostOutcome, OpRecord, RunResult
    from sysflow.engine.states import OpState, RunStatus
    from sysflow.errors import (
        AuditTampered,
        AuthenticationFailed,
        CommandTimeout,
        ConnectionFailed,
        ConnectTimeout,
        ConstraintError,
        ExecutionError,
        HostKeyMismatch,
        HostKeyUnknown,
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
    from sysflow.model.task import Task
    from sysflow.model.verification import ComparisonSpec, ProbeSpec, VerificationSpec
    from sysflow.model.workflow import (
        ExpiryPolicy,
        MaintenanceWorkflow,
        RolloutSpec,
        RolloutStrategy,
        Workflow,
    )
    from sysflow.planner.build import plan
    from sysflow.planner.durations import DurationModel
    from sysflow.planner.forecast import Forecast
    from sysflow.planner.plan import Plan
    from sysflow.schedule.model import ScheduleSpec
    from sysflow.schedule.scheduler import Scheduler
    from sysflow.transport import CommandResult, Transport
    from sysflow.verify.compare import Verdict
    from sysflow.verify.report import VerificationReport

_LAZY: dict[str, str] = {
    "AuditLog": "sysflow.audit.log",
    "AuditTampered": "sysflow.errors",
    "AuthenticationFailed": "sysflow.errors",
    "Calendar": "sysflow.constraints.calendar",
    "CommandResult": "sysflow.transport",
    "CommandTimeout": "sysflow.errors",
    "ComparisonSpec": "sysflow.model.verification",
    "ConnectTimeout": "sysflow.errors",
    "ConnectionFailed": "sysflow.errors",
    "ConstraintError": "sysflow.errors",
    "CredentialProvider": "sysflow.actors.auth",
    "DurationModel": "sysflow.planner.durations",
    "Engine": "sysflow.engine.engine",
    "Event": "sysflow.engine.events",
    "EventKind": "sysflow.engine.events",
    "ExecutionError": "sysflow.errors",
    "ExpiryPolicy": "sysflow.model.workflow",
    "Forecast": "sysflow.planner.forecast",
    "Group": "sysflow.model.inventory",
    "Host": "sysflow.model.inventory",
    "HostKeyMismatch": "sysflow.errors",
    "HostKeyStore": "sysflow.actors.hostkeys",
    "HostKeyUnknown": "sysflow.errors",
    "HostOutcome": "sysflow.engine.result",
    "HostUnreachable": "sysflow.errors",
    "InfeasiblePlan": "sysflow.errors",
    "Inventory": "sysflow.model.inventory",
    "InventoryError": "sysflow.errors",
    "LeaseConflict": "sysflow.errors",
    "LocalBackend": "sysflow.actors.backends",
    "MaintenanceWorkflow": "sysflow.model.workflow",
    "Notifier": "sysflow.engine.notify",
    "Observer": "sysflow.engine.events",
    "OpRecord": "sysflow.engine.result",
    "OpState": "sysflow.engine.states",
    "Plan": "sysflow.planner.plan",
    "PlanningError": "sysflow.errors",
    "ProbeSpec": "sysflow.model.verification",
    "Problem": "sysflow.errors",
    "RayBackend": "sysflow.actors.ray_backend",
    "RolloutSpec": "sysflow.model.workflow",
    "RolloutStrategy": "sysflow.model.workflow",
    "RunFailed": "sysflow.errors",
    "RunResult": "sysflow.engine.result",
    "RunStatus": "sysflow.engine.states",
    "SSHAuth": "sysflow.actors.auth",
    "ScheduleSpec": "sysflow.schedule.model",
    "Scheduler": "sysflow.schedule.scheduler",
    "StoreError": "sysflow.errors",
    "SysflowError": "sysflow.errors",
    "Task": "sysflow.model.task",
    "Transport": "sysflow.transport",
    "TransportError": "sysflow.errors",
    "Verdict": "sysflow.verify.compare",
    "VerificationError": "sysflow.errors",
    "VerificationReport": "sysflow.verify.report",
    "VerificationSpec": "sysflow.model.verification",
    "WindowClosed": "sysflow.errors",
    "Workflow": "sysflow.model.workflow",
    "WorkflowError": "sysflow.errors",
    "plan": "sysflow.planner.build",
}

__version__ = "0.1.0"

__all__ = [
    "AuditLog",
    "AuditTampered",
    "AuthenticationFailed",
    "Calendar",
    "CommandResult",
    "CommandTimeout",
    "ComparisonSpec",
    "ConnectTimeout",
    "ConnectionFailed",
    "ConstraintError",
    "CredentialProvider",
    "DurationModel",
    "Engine",
    "Event",
    "EventKind",
    "ExecutionError",
    "ExpiryPolicy",
    "Forecast",
    "Group",
    "Host",
    "HostKeyMismatch",
    "HostKeyStore",
    "HostKeyUnknown",
    "HostOutcome",
    "HostUnreachable",
    "InfeasiblePlan",
    "Inventory",
    "InventoryError",
    "LeaseConflict",
    "LocalBackend",
    "MaintenanceWorkflow",
    "Notifier",
    "Observer",
    "OpRecord",
    "OpState",
    "Plan",
    "PlanningError",
    "ProbeSpec",
    "Problem",
    "RayBackend",
    "RolloutSpec",
    "RolloutStrategy",
    "RunFailed",
    "RunResult",
    "RunStatus",
    "SSHAuth",
    "ScheduleSpec",
    "Scheduler",
    "StoreError",
    "SysflowError",
    "Task",
    "Transport",
    "TransportError",
    "Verdict",
    "VerificationError",
    "VerificationReport",
    "VerificationSpec",
    "WindowClosed",
    "Workflow",
    "WorkflowError",
    "__version__",
    "plan",
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
