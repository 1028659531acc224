"""Virtual time for asyncio: an event loop whose clock jumps to the next timer when nothing can run.

:class:`VirtualTimeLoop` is a ``SelectorEventLoop`` whose ``time()`` is a virtual number of seconds
(starting at 0) and whose selector is wrapped: whenever the loop would block waiting for a timer,
the wrapper first polls real I/O without blocking (or for at most ``autojump_threshold`` real
seconds) and, if nothing is ready, moves virtual time straight to the next timer. This is trio's
``MockClock(autojump_threshold=0)`` for asyncio: code full of ``asyncio.sleep``, ``asyncio.timeout``
and ``wait_for`` runs at once and deterministically, and a 4-hour window passes in milliseconds.

What is supported, and what is not:

* Timers (``call_later``/``call_at``, ``sleep``, ``timeout``, ``wait_for``, ``Condition``/``Event``
  waits with timeouts): fully virtual.
* Real I/O (sockets, pipes, subprocesses, ``run_in_executor``, ``call_soon_threadsafe``) works: the
  real selector still runs and wakes the loop. But real I/O takes real time, and virtual time does
  not wait for it: with ``autojump_threshold=0`` a pending timer (a timeout around the I/O, a
  concurrent sleep) fires first. Give real I/O a real grace period with ``autojump_threshold``
  (e.g. 0.1 s, as trio recommends), or await it without a competing timer.
* When nothing is scheduled at all, the loop blocks on real I/O like any asyncio loop; with no
  real I/O either, only a thread can wake it, and after ``stall_limit`` real seconds (set by
  :func:`run_virtual` and the test fixture) it raises :class:`VirtualDeadlock` instead of hanging.

:class:`VirtualClock` implements :class:`sysflow.clock.Clock` on top of ``loop.time()``: wall time is
``start + loop.time()``. :func:`run_virtual` runs a coroutine on a fresh virtual loop.
"""

from __future__ import annotations

import asyncio
import selectors
import time
from collections.abc import Coroutine, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sysflow.clock import utc

__all__ = [
    "DEFAULT_STALL_LIMIT",
    "DEFAULT_START",
    "VirtualClock",
    "VirtualDeadlock",
    "VirtualTimeLoop",
    "VirtualTimeout",
    "current_virtual_clock",
    "run_virtual",
]

T = TypeVar("T")

VIRTUAL_RESOLUTION = 1e-6  # seconds: timers due within this of now run now
DEFAULT_START = datetime(2026, 1, 4, 0, 0, tzinfo=UTC)  # a Sunday, the same default as ManualClock
DEFAULT_STALL_LIMIT = 30.0  # real seconds run_virtual waits for a thread when nothing else can happen


class VirtualDeadlock(RuntimeError):
    """Every task waits on something that no timer, I/O or thread will ever bring."""


class VirtualTimeout(TimeoutError):
    """A virtual-time loop ran longer in real time than its ``wall_limit``.

    Checked by the loop itself between callbacks: an exception raised into a task (as pytest-timeout
    does) can be caught by the code under test, this one ends the loop's ``run_until_complete``.
    """


class _AutojumpSelector(selectors.BaseSelector):
    """Delegates to a real selector; a wait for a timer becomes a jump of the loop's virtual time."""

    deadline: float | None = None  # time.monotonic() after which select raises VirtualTimeout
    grace: float = 0.0  # real seconds the cleanup after a VirtualTimeout may take

    def __init__(self, real: selectors.BaseSelector, threshold: float, stall_limit: float | None) -> None:
        self._real = real
        self._threshold = threshold
        self._stall_limit = stall_limit
        self._loop: VirtualTimeLoop | None = None
        self._idle_fds = 0  # file objects registered by the loop itself (its self-pipe)
        self._fds = 0

    def bind(self, loop: VirtualTimeLoop) -> None:
        self._loop = loop
        self._idle_fds = self._fds

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        key = self._real.register(fileobj, events, data)
        self._fds += 1
        return key

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        key = self._real.unregister(fileobj)
        self._fds -= 1
        return key

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.get_key(fileobj)

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if self.deadline is not None and time.monotonic() > self.deadline:
            # the runner's cleanup (cancelling every task) must still be able to run the loop; should
            # a task refuse cancellation, the cleanup too ends after the same grace again
            self.deadline = time.monotonic() + self.grace
            raise VirtualTimeout(
                "the simulation ran past its wall-clock limit (VirtualTimeLoop wall_limit): "
                "a test or run on virtual time that should take seconds is spinning"
            )
        if timeout is None and self._stall_limit is not None and self._fds <= self._idle_fds:
            return self._wait_or_deadlock(self._stall_limit)
        if timeout is not None and timeout <= 0 and self._fds <= self._idle_fds:
            # The loop polls between callbacks; with only its self-pipe registered a poll can bring
            # no callback (a thread's call_soon_threadsafe has queued its own), so skip the syscall.
            return []
        if timeout is None or timeout <= 0 or self._loop is None:
            return self._real.select(timeout)
        if self._threshold == 0 and self._fds <= self._idle_fds:
            # Nothing but the loop's self-pipe to poll: a thread's call_soon_threadsafe has already
            # queued its callback, which runs after the jump exactly as it would after a poll.
            self._loop._jump(timeout)
            return []
        events = self._real.select(min(self._threshold, timeout))
        if not events:
            self._loop._jump(timeout)
        return events

    def _wait_or_deadlock(self, limit: float) -> list[tuple[selectors.SelectorKey, int]]:
        """No timer, no real I/O: only another thread can wake the loop; give it ``limit`` seconds."""
        events = self._real.select(limit)
        if not events:
            raise VirtualDeadlock(
                f"every task is waiting, no timer is scheduled and no I/O is pending "
                f"(nothing woke the loop for {limit:g} real seconds): the simulation cannot progress"
            )
        return events


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop on virtual time: idle waits for timers take no real time.

    ``start`` is the wall-clock instant of virtual time 0 (used by :class:`VirtualClock`);
    ``autojump_threshold`` is how long (real seconds) to wait for real I/O before jumping;
    ``stall_limit``, when set, is how long (real seconds) the loop waits with no timer and no
    I/O at all (only a thread could wake it) before raising :class:`VirtualDeadlock`;
    ``wall_limit``, when set, is how many real seconds the loop may run before raising
    :class:`VirtualTimeout`.
    """

    def __init__(
        self,
        start: datetime | None = None,
        *,
        autojump_threshold: float = 0.0,
        stall_limit: float | None = None,
        wall_limit: float | None = None,
    ) -> None:
        if autojump_threshold < 0:
            raise ValueError(f"autojump_threshold must be >= 0, not {autojump_threshold}")
        self._virtual_now = 0.0
        self.start = utc(start) if start is not None else DEFAULT_START
        self.autojump_threshold = autojump_threshold
        selector = _AutojumpSelector(selectors.DefaultSelector(), autojump_threshold, stall_limit)
        if wall_limit is not None:
            selector.deadline = time.monotonic() + wall_limit
            selector.grace = max(1.0, wall_limit / 10)
        super().__init__(selector)
        # asyncio treats a timer as due when ``when < time() + resolution``; the monotonic clock's
        # 1 ns is below one float ulp once virtual time passes ~10^7 s (months), so a timer due
        # "now" would never run and the loop would spin. A microsecond stays representable for
        # decades of virtual time.
        self._clock_resolution = VIRTUAL_RESOLUTION
        selector.bind(self)
        self._clock = VirtualClock(self)

    def time(self) -> float:
        """Virtual seconds since the loop was created."""
        return self._virtual_now

    @property
    def clock(self) -> VirtualClock:
        """The :class:`VirtualClock` reading this loop's time."""
        return self._clock

    def advance(self, seconds: float) -> None:
        """Move virtual time forward by hand (timers now due run on the next iteration)."""
        if seconds < 0:
            raise ValueError("virtual time cannot go backwards")
        self._virtual_now += seconds

    def _jump(self, timeout: float) -> None:
        """Move to the earliest timer, exactly (not ``now + timeout``, which rounds)."""
        scheduled: list[asyncio.TimerHandle] | None = getattr(self, "_scheduled", None)
        target = scheduled[0].when() if scheduled else self._virtual_now + timeout
        self._virtual_now = max(self._virtual_now, target)


class VirtualClock:
    """The :class:`~sysflow.clock.Clock` of a :class:`VirtualTimeLoop`: ``now() = start + loop.time()``."""

    def __init__(self, loop: VirtualTimeLoop, start: datetime | None = None) -> None:
        self._loop = loop
        self._start = utc(start) if start is not None else loop.start
        # now() is read many times per loop iteration (about 12 per operation): the datetime of
        # the last virtual time read is kept, and rebuilt only when virtual time has moved.
        self._now_at = 0.0
        self._now = self._start

    @property
    def start(self) -> datetime:
        """The wall-clock instant of virtual time 0."""
        return self._start

    @property
    def loop(self) -> VirtualTimeLoop:
        return self._loop

    def now(self) -> datetime:
        t = self._loop.time()
        if t != self._now_at:
            self._now_at = t
            self._now = self._start + timedelta(seconds=t)
        return self._now

    def monotonic(self) -> float:
        return self._loop.time()

    def at(self, seconds: float) -> datetime:
        """The wall-clock instant of virtual time ``seconds``."""
        return self._start + timedelta(seconds=seconds)

    def elapsed(self, when: datetime) -> float:
        """Virtual seconds of a wall-clock instant (the inverse of :meth:`at`)."""
        return (utc(when) - self._start).total_seconds()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    async def sleep_until(self, when: float) -> None:
        """Sleep until virtual time ``when`` exactly (``sleep(when - now)`` may round)."""
        loop = self._loop
        future: asyncio.Future[None] = loop.create_future()
        handle = loop.call_at(when, _wake, future)
        try:
            await future
        finally:
            handle.cancel()


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def current_virtual_clock() -> VirtualClock:
    """The clock of the running virtual loop; ``RuntimeError`` when the running loop is not virtual."""
    loop = asyncio.get_running_loop()
    if not isinstance(loop, VirtualTimeLoop):
        raise RuntimeError(
            f"the running event loop is a {type(loop).__name__}, not a VirtualTimeLoop "
            "(use sysflow.sim.run_virtual, or the virtual loop factory in tests)"
        )
    return loop.clock


def run_virtual(
    main: Coroutine[Any, Any, T],
    *,
    start: datetime | None = None,
    autojump_threshold: float = 0.0,
    stall_limit: float | None = DEFAULT_STALL_LIMIT,
    wall_limit: float | None = None,
    debug: bool | None = None,
) -> T:
    """Run ``main`` to completion on a fresh :class:`VirtualTimeLoop` and return its result.

    Inside, :func:`current_virtual_clock` gives the clock (wall time starts at ``start``). A
    simulation in which nothing can ever happen again raises :class:`VirtualDeadlock` after
    ``stall_limit`` real seconds instead of hanging; one still running after ``wall_limit`` real
    seconds raises :class:`VirtualTimeout`.
    """

    def factory() -> VirtualTimeLoop:
        return VirtualTimeLoop(
            start, autojump_threshold=autojump_threshold, stall_limit=stall_limit, wall_limit=wall_limit
        )

    with asyncio.Runner(debug=debug, loop_factory=factory) as runner:
        return runner.run(main)
