"""Feeds the audit log from the event stream: every operation and every decision."""

from __future__ import annotations

from sysflow.audit.log import AuditLog
from sysflow.engine.events import Event, EventKind

__all__ = ["AUDITED", "AuditObserver"]

AUDITED = frozenset(
    {
        EventKind.RUN_STARTED,
        EventKind.RUN_FINISHED,
        EventKind.OP_STARTED,
        EventKind.OP_FINISHED,
        EventKind.OP_SKIPPED,
        EventKind.GATE_EVALUATED,
        EventKind.THRESHOLD_EXCEEDED,
        EventKind.ROLLBACK_STARTED,
        EventKind.ROLLBACK_FINISHED,
        EventKind.APPROVAL_GIVEN,
        EventKind.PLAN_REPLACED,
        EventKind.LEASE_REFUSED,
        EventKind.RUN_PAUSED,
        EventKind.RUN_RESUMED,
        EventKind.WINDOW_CLOSED,
        EventKind.VERIFICATION,
        EventKind.STATE_CHECKED,
        EventKind.WINDOW_OPENED,
        EventKind.APPROVAL_REQUESTED,
    }
)


_BATCHED = frozenset({EventKind.OP_STARTED, EventKind.OP_FINISHED, EventKind.OP_SKIPPED})


class AuditObserver:
    """An event observer that appends the audited kinds to an :class:`AuditLog`."""

    def __init__(self, log: AuditLog, *, who: str | None = None) -> None:
        self.log = log
        self.who = who

    def on_event(self, event: Event) -> None:
        if event.kind not in AUDITED:
            return
        self.log.append(
            event.run_id,
            event.kind.value,
            at=event.at,
            host=event.host,
            task=event.task,
            detail=event.message,
            outcome=_outcome(event),
            who=self.who,
        )
        if event.kind not in _BATCHED:  # a decision is durable at once; operation records in batches
            self.log.flush()


def _outcome(event: Event) -> str:
    data = event.data
    for key in ("state", "status", "passed"):
        if key in data:
            value = data[key]
            return str(value).lower() if isinstance(value, bool) or value is None else str(value)
    if "exit_status" in data:
        return f"exit {data['exit_status']}"
    return ""
