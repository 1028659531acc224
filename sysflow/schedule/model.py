"""What a schedule is: the user's spec (pydantic), its stored form, claims and history (frozen values).

A schedule stores the *content* of its workflow and inventory (their JSON, as the run store keeps
them for each run), plus the paths they came from and SHA-256 digests of that content. A schedule
therefore starts exactly what was reviewed when it was added, even if the files change later;
``sysflow schedule add`` again (same name, ``--replace``) picks up an edited file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import Field

from sysflow.model.base import FrozenModel
from sysflow.schedule.recurrence import Recurrence

__all__ = [
    "DEFAULT_TOLERANCE",
    "Claim",
    "ClaimState",
    "HistoryEntry",
    "MissedPolicy",
    "Schedule",
    "ScheduleSpec",
    "ScheduleState",
    "digest",
]

DEFAULT_TOLERANCE = 900.0  # seconds: an occurrence found later than this after its instant was missed


class MissedPolicy(StrEnum):
    """What the scheduler does with occurrences that passed while it was down.

    ``skip``: record them as missed, start nothing for them. ``run_next_window``: start one run (for
    the latest missed occurrence) when the schedule's next window opens. ``catch_up``: start one run
    (for the latest missed occurrence) at once.
    """

    SKIP = "skip"
    RUN_NEXT_WINDOW = "run_next_window"
    CATCH_UP = "catch_up"


class ScheduleState(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"


class ClaimState(StrEnum):
    """The life of one claimed occurrence; the claim row is unique per (schedule, occurrence)."""

    STARTING = "starting"
    RUNNING = "running"
    POSTPONED = "postponed"  # missed, waiting for the next window (run_next_window)
    FINISHED = "finished"
    DEFERRED = "deferred"  # its hosts were held by another live run
    MISSED = "missed"  # passed while the scheduler was down; nothing started
    FAILED = "failed"  # could not be started (bad input, planning error)


class ScheduleSpec(FrozenModel):
    """What a user writes to add a schedule."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="Unique schedule name.")
    recurrence: Recurrence = Field(description="When it fires.")
    missed: MissedPolicy = Field(MissedPolicy.SKIP, description="Policy for occurrences missed while down.")
    workflow_path: str = Field("", description="Where the workflow came from (shown; content is stored).")
    inventory_path: str = Field("", description="Where the inventory came from (shown; content is stored).")
    lease_wait: float = Field(0.0, ge=0, description="Seconds to wait for hosts held by another run.")
    tolerance: float = Field(
        DEFAULT_TOLERANCE, gt=0, description="Seconds after which an occurrence is missed."
    )


@dataclass(frozen=True, slots=True)
class Schedule:
    """A schedule as stored."""

    spec: ScheduleSpec
    workflow_json: str
    inventory_json: str
    state: ScheduleState
    cursor: datetime  # every occurrence up to here has been handled
    created: datetime

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def workflow_digest(self) -> str:
        return digest(self.workflow_json)

    @property
    def inventory_digest(self) -> str:
        return digest(self.inventory_json)


@dataclass(frozen=True, slots=True)
class Claim:
    """One occurrence taken by a scheduler."""

    schedule: str
    occurrence: datetime
    state: ClaimState
    due: datetime
    owner: str
    run_id: str | None


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One line of a schedule's history: forecast, started, finished, deferred, missed, ..."""

    schedule: str
    occurrence: datetime
    at: datetime
    event: str
    run_id: str | None
    detail: str


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
