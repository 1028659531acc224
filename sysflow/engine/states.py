"""Lifecycle states of runs and operations."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["OpState", "RunStatus"]


class RunStatus(StrEnum):
    """PENDING → RUNNING → (PAUSED) → COMPLETED | COMPLETED_WITH_FAILURES | FAILED | CANCELLED | ROLLED_BACK.

    ``COMPLETED``: the rollout went through and every host that ran succeeded.
    ``COMPLETED_WITH_FAILURES``: the rollout went through (failures stayed within the thresholds)
    but some hosts failed; finished, not a success.
    """

    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    COMPLETED_WITH_FAILURES = "completed_with_failures"
    FAILED = "failed"
    CANCELLED = "cancelled"
    ROLLED_BACK = "rolled_back"

    @property
    def finished(self) -> bool:
        """A final state: the run will not change any more."""
        return self in _FINISHED


_FINISHED = frozenset(
    {
        RunStatus.COMPLETED,
        RunStatus.COMPLETED_WITH_FAILURES,
        RunStatus.FAILED,
        RunStatus.CANCELLED,
        RunStatus.ROLLED_BACK,
    }
)


class OpState(StrEnum):
    """State of one operation (task × host)."""

    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    ROLLED_BACK = "rolled_back"
    UNKNOWN = "unknown"  # was running when the run stopped; must be re-checked, never blindly repeated

    @property
    def done(self) -> bool:
        return self in _DONE


_DONE = frozenset({OpState.SUCCEEDED, OpState.FAILED, OpState.SKIPPED, OpState.ROLLED_BACK})
