"""When the rollout stops: failed hosts counted against the wave's threshold and the failure budget,
and the stop itself (its reason and failed wave stored and announced, rollback begun)."""

from __future__ import annotations

from sysflow.engine.context import RunContext
from sysflow.engine.events import EventKind
from sysflow.engine.rollback import Rollback
from sysflow.engine.thresholds import exceeded

__all__ = ["Stopping"]


class Stopping:
    """Stops the rollout once, for the first reason; counts failed hosts toward that."""

    def __init__(self, ctx: RunContext, rollback: Rollback) -> None:
        self._ctx = ctx
        self._rollback = rollback

    def stop(self, reason: str, wave: int | None = None) -> None:
        """Nothing new starts from here; with auto_rollback, a failed wave starts its rollback."""
        ctx, control = self._ctx, self._ctx.control
        if control.stop_reason:
            return
        control.stop_reason = reason
        control.failed_wave = wave
        if wave is not None and ctx.workflow.rollout.auto_rollback and not control.cancelled:
            self._rollback.begin(wave)
        ctx.recorder.set_position(wave or 0, failed_wave=wave, reason=reason)
        ctx.tracker.emit(EventKind.THRESHOLD_EXCEEDED, reason, wave=wave)

    def host_failed(self, host: str, wave: int, wave_size: int) -> None:
        """A host's chain failed: count it, and stop when the wave or the whole run failed too much."""
        ctx = self._ctx
        if host.startswith("@"):  # a run-once hook (cut-over, wave hook) failed: the wave failed
            self.stop(f"wave {wave + 1}: run-once hook {host} failed", wave)
            return
        ctx.tracker.host_failed(host, wave)
        rollout = ctx.workflow.rollout
        failures = ctx.tracker.failures(wave)
        if exceeded(failures, rollout.max_failures, wave_size):
            self.stop(
                f"wave {wave + 1}: {failures} of {wave_size} hosts failed (max_failures {rollout.max_failures})",
                wave,
            )
        total = ctx.tracker.failures()
        if exceeded(total, rollout.failure_budget, len(ctx.graph.hosts)):
            self.stop(
                f"failure budget exhausted: {total} hosts failed (budget {rollout.failure_budget})", wave
            )
