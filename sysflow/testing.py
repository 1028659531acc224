"""Fakes and clocks for tests of code that uses sysflow (and for sysflow's own tests).

They stand where a real part would (a fleet, the wall clock) and go through the same seams as the
real thing: every fake here is a :class:`~sysflow.transport.Transport` the engine and the HostPool
use exactly as they use SSH.

* :class:`ScriptedTransport`: hosts do what the command says (``ok``, ``exit:N``, ``flaky:K``,
  ``raise:KIND``, ``sleep:S``, ``big``, ``signal``); records calls and proves no host ran two at once.
* :class:`ReplayTransport`: answers commands with recorded outputs (per host or by default), for
  probes, parsers and verification gates.
* :class:`SimTransport`, :class:`SimFleet`, :class:`SimProfile`: the simulated fleet.
* :class:`ManualClock`, :class:`VirtualClock` and :func:`run_virtual`: time you control; the
  simulator's event loop jumps idle time, so a 4-hour window passes in seconds.
* :class:`RecordingObserver`: keeps every event of a run in memory.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sysflow.clock import ManualClock, RealClock
from sysflow.engine.events import RecordingObserver
from sysflow.errors import (
    AuthenticationFailed,
    CommandTimeout,
    ConnectionFailed,
    ConnectTimeout,
    HostKeyMismatch,
    HostKeyUnknown,
    HostUnreachable,
    TransportError,
)
from sysflow.sim.fleet import SimFleet
from sysflow.sim.loop import VirtualClock, run_virtual
from sysflow.sim.profile import SimProfile
from sysflow.sim.transport import SimTransport
from sysflow.transport import CommandResult

__all__ = [
    "SCRIPTED_ERRORS",
    "ManualClock",
    "RecordingObserver",
    "ReplayTransport",
    "Reply",
    "ScriptedTransport",
    "SimFleet",
    "SimProfile",
    "SimTransport",
    "VirtualClock",
    "run_virtual",
]

SCRIPTED_ERRORS: dict[str, Exception] = {
    "hostkey": HostKeyMismatch("key changed", host="h"),
    "newkey": HostKeyUnknown("not in known_hosts", host="h"),
    "auth": AuthenticationFailed("rejected", host="h"),
    "ctimeout": ConnectTimeout("handshake slow", host="h"),
    "unreachable": HostUnreachable("refused", host="h"),
    "conn": ConnectionFailed("dropped", host="h"),
    "cmdtimeout": CommandTimeout("too slow", host="h", timeout=1.0),
    "transport": TransportError("odd", host="h"),
    "bug": RuntimeError("a bug"),
}


class ScriptedTransport:
    """A Transport whose hosts do what the command says: ``ok``, ``exit:N``, ``flaky:K``, ``raise:E``,
    ``sleep:S``, ``big``, ``signal``; it records the calls and checks no host runs two at once."""

    def __init__(self, clock: ManualClock | RealClock | None = None) -> None:
        self.clock = clock or RealClock()
        self.calls: list[tuple[str, str]] = []
        self.running: dict[str, int] = defaultdict(int)
        self.overlaps = 0
        self.peak = 0
        self.now_running = 0
        self.attempts: dict[tuple[str, str], int] = defaultdict(int)
        self.cancelled: list[str] = []
        self.closed = False
        self.open_connections = 0
        self.envs: list[Mapping[str, str] | None] = []

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
        self.calls.append((host, command))
        self.envs.append(env)
        self.running[host] += 1
        self.overlaps += self.running[host] > 1
        self.now_running += 1
        self.peak = max(self.peak, self.now_running)
        self.open_connections = len([h for h, n in self.running.items() if n])
        try:
            return await self._do(host, command)
        except asyncio.CancelledError:
            self.cancelled.append(command)
            raise
        finally:
            self.running[host] -= 1
            self.now_running -= 1

    async def _do(self, host: str, command: str) -> CommandResult:
        verb, _, arg = command.partition(":")
        self.attempts[(host, command)] += 1
        status: int | None = 0
        out, sig = f"{host} {command}", None
        if verb == "sleep":
            await asyncio.sleep(float(arg))
        elif verb == "exit":
            status = int(arg)
        elif verb == "flaky":
            status = 0 if self.attempts[(host, command)] > int(arg) else 1
        elif verb == "raise":
            raise SCRIPTED_ERRORS[arg]
        elif verb == "big":
            out = "x" * 100_000
        elif verb == "signal":
            status, sig = None, "SIGKILL"
        else:
            await asyncio.sleep(0)
        now = self.clock.now()
        return CommandResult(host, command, status, out, "", now, now, signal=sig)

    async def close(self) -> None:
        self.closed = True


@dataclass
class Reply:
    stdout: str
    exit_status: int = 0
    stderr: str = ""


class ReplayTransport:
    """Answers a command with the reply of the first key contained in it, per host or by default.

    ``replies`` and ``host_replies`` may be changed between calls to play a host whose state moves.
    """

    def __init__(
        self,
        replies: Mapping[str, Reply | str] | None = None,
        *,
        host_replies: Mapping[str, Mapping[str, Reply | str]] | None = None,
        unreachable: frozenset[str] = frozenset(),
    ) -> None:
        self.replies: dict[str, Reply | str] = dict(replies or {})
        self.host_replies: dict[str, dict[str, Reply | str]] = {
            h: dict(r) for h, r in (host_replies or {}).items()
        }
        self.unreachable = unreachable
        self.calls: list[tuple[str, str]] = []

    def _reply(self, host: str, command: str) -> Reply:
        for table in (self.host_replies.get(host, {}), self.replies):
            for key, reply in table.items():
                if key in command:
                    return reply if isinstance(reply, Reply) else Reply(reply)
        return Reply("", 127, f"sh: 1: {command.split()[0]}: not found")

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
        self.calls.append((host, command))
        if host in self.unreachable:
            raise HostUnreachable("connection refused", host=host)
        reply = self._reply(host, command)
        now = datetime(2026, 1, 4, tzinfo=UTC)
        return CommandResult(host, command, reply.exit_status, reply.stdout, reply.stderr, now, now)

    async def close(self) -> None:
        return None
