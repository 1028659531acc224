"""Time, behind one seam: every component asks a :class:`Clock`, never the system directly.

The real clock reads the system; :class:`ManualClock` is moved by tests; the simulator
(``sysflow.sim``) supplies a clock backed by a virtual-time event loop, so the same engine code
runs a 4-hour window in milliseconds.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ManualClock", "RealClock", "utc"]


def utc(dt: datetime) -> datetime:
    """Return ``dt`` as an aware UTC datetime; naive values are taken to be UTC."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


@runtime_checkable
class Clock(Protocol):
    """Wall time (tz-aware UTC), monotonic seconds, and sleeping on the same time base."""

    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class RealClock:
    """The system clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """A clock that moves only when told: ``advance()`` or ``set()``; ``sleep`` advances it.

    Sleeping on a manual clock moves time forward at once (it never blocks), which is what a
    single-threaded test of time-dependent logic wants.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._start = utc(start or datetime(2026, 1, 4, 0, 0, tzinfo=UTC))
        self._elapsed = 0.0

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._elapsed)

    def monotonic(self) -> float:
        return self._elapsed

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._elapsed += seconds

    def set(self, when: datetime) -> None:
        self.advance((utc(when) - self.now()).total_seconds())

    async def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)
