"""Roles and the actions each may take: the whole authorization model of the service in one table."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Action", "Role", "allowed"]


class Role(StrEnum):
    """What a token may do: watch (viewer), steer runs (operator), approve gates (approver), all (admin)."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    APPROVER = "approver"
    ADMIN = "admin"


class Action(StrEnum):
    """Every protected thing the API does."""

    READ = "read"  # runs, events, schedules, audit, library, metrics
    START = "start"  # start a run
    STEER = "steer"  # pause, resume, cancel a run; pause and resume schedules
    APPROVE = "approve"  # approve or reject a gate
    STORE = "store"  # store a workflow or an inventory
    VERIFY = "verify"  # verify the audit log


_GRANTS: dict[Role, frozenset[Action]] = {
    Role.VIEWER: frozenset({Action.READ}),
    Role.OPERATOR: frozenset({Action.READ, Action.START, Action.STEER, Action.STORE}),
    Role.APPROVER: frozenset({Action.READ, Action.APPROVE}),
    Role.ADMIN: frozenset(Action),
}


def allowed(role: Role, action: Action) -> bool:
    """Whether ``role`` may take ``action``."""
    return action in _GRANTS[role]
