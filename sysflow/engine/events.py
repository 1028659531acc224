"""Typed, timestamped events: everything observable about a run goes through here.

Observers implement :class:`Observer` (one method) and subscribe to an :class:`EventBus`; the engine
never knows who listens. An observer that raises is logged and dropped from nothing else: a failing
notification must never fail a run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

__all__ = ["Event", "EventBus", "EventKind", "Observer", "RecordingObserver"]

log = logging.getLogger(__name__)


class EventKind(StrEnum):
    RUN_STARTED = "run_started"
    RUN_PAUSED = "run_paused"
    RUN_RESUMED = "run_resumed"
    RUN_FINISHED = "run_finished"
    PLAN_MADE = "plan_made"
    PLAN_REPLACED = "plan_replaced"
    WAVE_STARTED = "wave_started"
    WAVE_FINISHED = "wave_finished"
    GATE_EVALUATED = "gate_evaluated"
    APPROVAL_REQUESTED = "approval_requested"
    APPROVAL_GIVEN = "approval_given"
    OP_STARTED = "op_started"
    OP_FINISHED = "op_finished"
    OP_SKIPPED = "op_skipped"
    OP_PROGRESS = "op_progress"
    THRESHOLD_EXCEEDED = "threshold_exceeded"
    ROLLBACK_STARTED = "rollback_started"
    ROLLBACK_FINISHED = "rollback_finished"
    WINDOW_OPENED = "window_opened"
    WINDOW_CLOSED = "window_closed"
    VERIFICATION = "verification"
    LEASE_REFUSED = "lease_refused"
    STATE_CHECKED = "state_checked"


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened in a run. ``data`` holds kind-specific, JSON-friendly fields."""

    kind: EventKind
    run_id: str
    at: datetime
    host: str | None = None
    task: str | None = None
    wave: int | None = None
    message: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["kind"] = self.kind.value
        out["at"] = self.at.isoformat()
        out["data"] = dict(self.data)
        return out


@runtime_checkable
class Observer(Protocol):
    """Receives every event of the runs it is subscribed to."""

    def on_event(self, event: Event) -> None: ...


class EventBus:
    """Fan-out of events to observers, in subscription order."""

    def __init__(self) -> None:
        self._observers: list[Observer] = []

    def subscribe(self, observer: Observer) -> None:
        self._observers.append(observer)

    def unsubscribe(self, observer: Observer) -> None:
        if observer in self._observers:
            self._observers.remove(observer)

    @property
    def listening(self) -> bool:
        """Whether anyone subscribed (no observer: emitters may skip building the event)."""
        return bool(self._observers)

    def emit(self, event: Event) -> None:
        for obs in list(self._observers):
            try:
                obs.on_event(event)
            except Exception:  # an observer must never break the run
                log.exception("observer %r failed on %s", obs, event.kind)


class RecordingObserver:
    """Keeps every event in memory: for tests, reports and the CLI's JSON stream."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def on_event(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: EventKind) -> list[Event]:
        return [e for e in self.events if e.kind is kind]
