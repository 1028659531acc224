"""``SimTransport``: the simulator behind the same ``Transport`` seam as SSH.

A command "runs" by sleeping its sampled duration on the clock (a virtual clock makes that
instant), then answering from the host's simulated state. The transport raises what the SSH
transport raises, at the virtual instant SSH would: ``HostUnreachable`` / ``ConnectTimeout`` when
connecting fails, ``ConnectionFailed`` when the host drops away mid-command, ``CommandTimeout`` when
``timeout`` passes first. Every command is appended to :attr:`SimTransport.trace` (host, command,
start, end, exit status or error), which :mod:`sysflow.sim.replay` writes and replays.

``env``, ``stdin`` and ``cwd`` are accepted and ignored: rules see only the command text.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from datetime import datetime

from sysflow.clock import Clock
from sysflow.errors import (
    AuthenticationFailed,
    CommandTimeout,
    ConnectionFailed,
    ConnectTimeout,
    HostKeyMismatch,
    HostUnreachable,
    TransportError,
)
from sysflow.sim.fleet import ConnectFault, Fault, Outcome, SimFleet
from sysflow.sim.loop import VirtualClock, current_virtual_clock
from sysflow.sim.replay import Trace, TraceRecord
from sysflow.transport import CommandResult, Settled, cap_output

__all__ = ["SimTransport", "TransportState"]

_CONNECT_ERRORS: Mapping[str, type[ConnectionFailed]] = {
    "AuthenticationFailed": AuthenticationFailed,
    "ConnectTimeout": ConnectTimeout,
    "ConnectionFailed": ConnectionFailed,
    "HostKeyMismatch": HostKeyMismatch,
    "HostUnreachable": HostUnreachable,
}


class TransportState(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"


class SimTransport:
    """Runs commands on a :class:`SimFleet`, on ``clock`` (default: the running virtual loop's)."""

    def __init__(self, fleet: SimFleet, clock: Clock | None = None, *, record: bool = True) -> None:
        self.fleet = fleet
        self._clock = clock
        self._record = record
        self._offset: float | None = None
        self.open_connections = 0  # commands running now (each holds a simulated session)
        self.trace: list[TraceRecord] = []
        self.state = TransportState.OPEN

    @property
    def clock(self) -> Clock:
        if self._clock is None:
            self._clock = current_virtual_clock()
        return self._clock

    def _elapsed(self, clock: Clock) -> float:
        """Seconds since the fleet's start, from the clock's monotonic time (no datetime rounding)."""
        if self._offset is None:
            if isinstance(clock, VirtualClock):
                self._offset = self.fleet.seconds(clock.start)
            else:
                self._offset = self.fleet.seconds(clock.now()) - clock.monotonic()
        return clock.monotonic() + self._offset

    async def run(
        self,
        host: str,
        command: str,
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        stdin: str | bytes | None = None,
        cwd: str | None = None,
    ) -> CommandResult:
        if self.state is TransportState.CLOSED:
            raise TransportError("the simulated transport is closed", host=host)
        clock = self.clock
        start = clock.now()
        t = self._elapsed(clock)
        fault = self.fleet.connect_fault(host, t)
        if fault is not None:
            await self._fail_connect(host, command, t, fault)
        out = self.fleet.begin(host, command, t)
        stop, ending = self._ending(out, timeout)
        self.open_connections += 1
        try:
            await self._sleep_until(clock, stop, t)
        finally:
            self.open_connections -= 1
        if ending is _Ending.TIMEOUT:
            so, se = _partial(out)
            self._note(host, command, t, stop, None, "CommandTimeout", out, so, se)
            raise CommandTimeout(
                f"command timed out after {timeout:g}s",
                host=host,
                timeout=timeout,
                stdout=cap_output(so).text,
                stderr=cap_output(se).text,
            )
        if ending is _Ending.LOST:
            self._note(host, command, t, stop, None, out.lost_error, out)
            raise _CONNECT_ERRORS.get(out.lost_error, ConnectionFailed)(out.lost_reason, host=host)
        reply = self.fleet.finish(out, stop)
        end = clock.now()
        self._note(host, command, t, stop, reply.exit_status, None, out, reply.stdout, reply.stderr)
        return _result(host, command, reply.exit_status, reply.stdout, reply.stderr, start, end)

    async def settle(
        self, host: str, command_id: str, *, wait: bool = True, timeout: float | None = None
    ) -> Settled:
        """A simulated command lives only as long as the controller that awaits it: after a crash
        nothing of it runs, so there is nothing to wait for or stop."""
        return Settled(host, command_id, found=False, running=False)

    async def disconnect(self, host: str) -> None:
        """Nothing to drop: every simulated command connects anew (and meets the host's faults)."""

    async def close(self) -> None:
        self.state = TransportState.CLOSED

    async def __aenter__(self) -> SimTransport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def recorded_trace(self) -> Trace:
        """The commands run so far as a :class:`~sysflow.sim.replay.Trace`."""
        return Trace(self.fleet.start, tuple(sorted(self.trace, key=lambda r: (r.start, r.host))))

    # -- internals -----------------------------------------------------------------------------

    def _ending(self, out: Outcome, timeout: float | None) -> tuple[float, _Ending]:
        """When the command stops and why: it finishes, loses its connection, or times out."""
        stop, ending = out.start + out.duration, _Ending.DONE
        if out.lost_at is not None and out.lost_at < stop:
            stop, ending = out.lost_at, _Ending.LOST
        if timeout is not None and out.start + timeout < stop:
            stop, ending = out.start + timeout, _Ending.TIMEOUT
        if math.isinf(stop):
            stop, ending = out.start + self.fleet.profile.hang_limit, _Ending.LOST
            out.lost_reason = "no response from the host (simulated hang)"
        return stop, ending

    async def _sleep_until(self, clock: Clock, stop: float, t: float) -> None:
        """Sleep to fleet time ``stop``, exactly on a virtual clock of the fleet's start."""
        if isinstance(clock, VirtualClock) and self._offset == 0.0:
            await clock.sleep_until(stop)
        else:
            await clock.sleep(stop - t)

    async def _fail_connect(self, host: str, command: str, t: float, fault: ConnectFault) -> None:
        if fault.delay > 0:
            await self._sleep_until(self.clock, t + fault.delay, t)
        timed_out = fault.fault in (Fault.TIMEOUT, Fault.PARTITIONED)
        self._note(
            host, command, t, t + fault.delay, None, "ConnectTimeout" if timed_out else "HostUnreachable"
        )
        if timed_out:
            raise ConnectTimeout(f"connect timed out after {fault.delay:g}s: {fault.reason}", host=host)
        raise HostUnreachable(fault.reason, host=host)

    def _note(
        self,
        host: str,
        command: str,
        start: float,
        end: float,
        exit_status: int | None,
        error: str | None,
        out: Outcome | None = None,
        stdout: str = "",
        stderr: str = "",
    ) -> None:
        if self._record:
            rule = out.rule.name if out is not None else None
            self.trace.append(
                TraceRecord(host, command, start, end, exit_status, stdout, stderr, error, rule)
            )


class _Ending(enum.Enum):
    DONE = "done"
    LOST = "lost"
    TIMEOUT = "timeout"


_EMPTY = cap_output("")


def _partial(out: Outcome) -> tuple[str, str]:
    """What a timed-out command printed before it was stopped: known only when it replays a recorded
    command that timed out too (a synthetic command prints at its end, so nothing yet)."""
    rec = out.recorded
    if rec is not None and rec.error == "CommandTimeout":
        return rec.stdout, rec.stderr
    return "", ""


def _result(
    host: str, command: str, exit_status: int | None, stdout: str, stderr: str, start: datetime, end: datetime
) -> CommandResult:
    so = cap_output(stdout) if stdout else _EMPTY
    se = cap_output(stderr) if stderr else _EMPTY
    return CommandResult(
        host=host,
        command=command,
        exit_status=exit_status,
        stdout=so.text,
        stderr=se.text,
        start=start,
        end=end,
        stdout_bytes=so.total_bytes,
        stderr_bytes=se.total_bytes,
        truncated=so.truncated or se.truncated,
        stdout_sha256=so.sha256,
    )
