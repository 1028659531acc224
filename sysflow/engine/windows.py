"""Maintenance windows at run time: nothing starts outside its host's window or after the cutoff.

Both edges are exclusive: an operation may start at ``t`` when ``start <= t < cutoff_at`` (and so
``t < end``), on the real clock and the virtual one alike; at the cutoff or the end nothing new
starts (with ``cutoff: 0`` the cutoff is the end). A host's remaining chain starts only when it is
predicted to finish inside the window it starts in (unless the workflow allows chains to split
across windows); otherwise it waits for the next window.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sysflow.clock import Clock

__all__ = ["ALWAYS", "OpenWindow", "WindowGuard", "WindowLike"]


class WindowLike(Protocol):
    """A concrete window: ``start`` ≤ starts < ``cutoff_at`` ≤ ``end`` (tz-aware)."""

    @property
    def start(self) -> datetime: ...

    @property
    def end(self) -> datetime: ...

    @property
    def cutoff_at(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class OpenWindow:
    """A window as the engine uses it."""

    start: datetime
    end: datetime
    cutoff_at: datetime

    def may_start(self, now: datetime) -> bool:
        """May something new start at ``now``? Before the cutoff (exclusive), hence before the end."""
        return self.start <= now < self.cutoff_at and now < self.end

    def admits(self, now: datetime, predicted: float) -> bool:
        """May something predicted to take ``predicted`` seconds start at ``now``?"""
        return self.may_start(now) and now + timedelta(seconds=predicted) <= self.end

    def contains(self, now: datetime) -> bool:
        return self.start <= now < self.end


_FAR = datetime(9999, 1, 1, tzinfo=UTC)
ALWAYS = OpenWindow(datetime(1970, 1, 1, tzinfo=UTC), _FAR, _FAR)


class WindowGuard:
    """Answers "may this host start now?" and waits for the next window that fits."""

    def __init__(
        self,
        clock: Clock,
        windows_of: Callable[[str], Sequence[WindowLike] | None],
        *,
        split_chains: bool = False,
    ) -> None:
        self._clock = clock
        self._windows_of = windows_of
        self.split_chains = split_chains

    def windows(self, host: str) -> list[OpenWindow]:
        ws = self._windows_of(host)
        if ws is None:
            return [ALWAYS]
        return [OpenWindow(w.start, w.end, w.cutoff_at) for w in ws]

    def admitting(self, host: str, predicted: float, now: datetime | None = None) -> OpenWindow | None:
        """The window ``host`` may start a chain of ``predicted`` seconds in at ``now``, if any."""
        t = now or self._clock.now()
        need = 0.0 if self.split_chains else predicted
        return next((w for w in self.windows(host) if w.admits(t, need)), None)

    def next_fitting(self, host: str, predicted: float, now: datetime | None = None) -> OpenWindow | None:
        """The first window from ``now`` on whose length fits ``predicted`` seconds, if any."""
        t = now or self._clock.now()
        need = 0.0 if self.split_chains else predicted
        for w in self.windows(host):
            begin = max(w.start, t)
            if w.may_start(begin) and begin + timedelta(seconds=need) <= w.end:
                return w
        return None

    async def wait(self, host: str, predicted: float) -> OpenWindow | None:
        """Sleep until ``host`` may start; None when no window in the horizon fits (deferred)."""
        while True:
            now = self._clock.now()
            w = self.admitting(host, predicted, now)
            if w is not None:
                return w
            nxt = self.next_fitting(host, predicted, now)
            if nxt is None:
                return None
            await self._clock.sleep(max((nxt.start - now).total_seconds(), 0.001))
