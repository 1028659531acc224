"""sysflow: agentless maintenance across fleets: windows, waves, verification, planning, SSH and Ray.

This module is the public facade; everything else may change. Heavy dependencies (OR-Tools, Ray,
matplotlib) are imported only when used.
"""

from __future__ import annotations

from sysflow.clock import Clock, ManualClock, RealClock
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

__version__ = "0.1.0"

__all__ = [
    "AuditTampered",
    "AuthenticationFailed",
    "Clock",
    "CommandTimeout",
    "ConnectTimeout",
    "ConnectionFailed",
    "ConstraintError",
    "ExecutionError",
    "Group",
    "Host",
    "HostKeyMismatch",
    "HostUnreachable",
    "InfeasiblePlan",
    "Inventory",
    "InventoryError",
    "LeaseConflict",
    "ManualClock",
    "PlanningError",
    "Problem",
    "RealClock",
    "RunFailed",
    "StoreError",
    "SysflowError",
    "TransportError",
    "VerificationError",
    "WindowClosed",
    "WorkflowError",
    "__version__",
]
