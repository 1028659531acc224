"""One command on an open SSH connection: its channel, its stdin, the wait, stopping it, its result.

Why a module of its own: running a command has its own failure modes, apart from connecting. The
server may allow fewer channels than we thought (its ``MaxSessions``: use fewer from then on); the
connection may drop between or during commands; a command that overruns its timeout is killed on
the remote side by its marker (``SYSFLOW_CMD_ID``) and reported with the output it printed so far.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sysflow.actors.ssh_options import MARKER_VAR, SSHTimeouts
from sysflow.actors.ssh_pool import Connect, Lost, PoolCounters, PoolEntry
from sysflow.actors.ssh_remote import (
    CommandSession,
    become_failure,
    kill_command,
    new_session,
    wrap_command,
)
from sysflow.clock import Clock
from sysflow.errors import CommandTimeout, ConnectionFailed, TransportError
from sysflow.transport import CommandResult, OutputTap, valid_command_id

__all__ = ["CommandRunner", "Stopper", "command_marker"]


def command_marker(env: Mapping[str, str] | None) -> tuple[str, Mapping[str, str] | None]:
    """The command's marker: the id the caller put in ``env`` (``SYSFLOW_CMD_ID``), else a new
    random one; and ``env`` without it (``wrap_command`` exports the marker itself)."""
    if env and MARKER_VAR in env:
        marker = env[MARKER_VAR]
        if not valid_command_id(marker):
            raise ValueError(f"{MARKER_VAR} is not a command id: {marker!r}")
        return marker, {k: v for k, v in env.items() if k != MARKER_VAR}
    return secrets.token_hex(16), env


@dataclass(frozen=True, slots=True)
class Stopper:
    """How to kill one command's processes: its marker, as the same user (sudo) it ran as."""

    marker: str
    become: str | None
    password: Any = field(default=None, repr=False)  # a Secret, fed on stdin to sudo

    def line(self) -> str:
        return wrap_command(
            kill_command(self.marker), become=self.become, sudo_password=self.password is not None
        )

    def stdin(self) -> str | None:
        return self.password.reveal() + "\n" if self.password is not None else None


class CommandRunner:
    """Runs one command on the pooled connection of an entry (the caller holds a channel permit).

    ``connection`` opens or reuses the entry's connection (the connector); ``lost`` forgets one
    that went away (the transport); ``output_cap`` bounds the output kept per stream.
    """

    def __init__(
        self,
        *,
        connection: Connect,
        lost: Lost,
        counters: PoolCounters,
        timeouts: SSHTimeouts,
        clock: Clock,
        output_cap: int,
        tap: OutputTap | None = None,
    ) -> None:
        self._tap = tap
        self._connection = connection
        self._lost = lost
        self._counters = counters
        self.timeouts = timeouts
        self._clock = clock
        self._cap = output_cap

    async def run_on(
        self,
        entry: PoolEntry,
        command: str,
        timeout: float | None,
        env: Mapping[str, str] | None,
        stdin: str | bytes | None,
        cwd: str | None,
        become: bool | str,
    ) -> CommandResult:
        """Run ``command`` on ``entry``'s connection (sudo as ``become``) and collect its result."""
        conn = await self._connection(entry)
        user = "root" if become is True else (become or None)
        password = entry.become_password if user is not None else None
        marker, env = command_marker(env)
        line = wrap_command(
            command, env=env, cwd=cwd, become=user, sudo_password=password is not None, marker=marker
        )
        start = self._clock.now()
        tap, host = self._tap, entry.name
        if tap is not None:
            tap(host, "command", command)
        session = new_session(self._cap, None if tap is None else lambda kind, text: tap(host, kind, text))
        chan = await self._open_channel(entry, conn, session, line)
        self._feed_stdin(chan, stdin, password)
        await self._wait(entry, conn, chan, session, timeout, Stopper(marker, user, password))
        self._counters.commands += 1
        result = self._result(entry.name, command, session, start)
        refused = user and become_failure(result.exit_status, result.stderr, entry.name, _login(entry))
        if refused:  # sudo refused: one clear per-host error, not a failure of the command
            raise TransportError(refused)
        return result

    async def _open_channel(self, entry: PoolEntry, conn: Any, session: CommandSession, line: str) -> Any:
        """A new channel running ``line``. If the server refuses it while the connection is alive,
        it allows fewer channels than we thought (its MaxSessions): use one fewer from now on and
        wait for a free one. If the connection went away between commands, reconnect once."""
        import asyncssh

        reconnected = False
        while True:
            try:
                chan, _ = await conn.create_session(lambda: session, line, encoding=None)
                return chan
            except (asyncssh.Error, OSError) as exc:
                if isinstance(exc, asyncssh.ChannelOpenError) and not conn.is_closed():
                    await self._fewer_channels(entry, exc)
                    continue
                if reconnected:
                    raise ConnectionFailed(f"cannot open a channel: {exc}", host=entry.name) from None
                reconnected = True
                self._lost(entry, conn)
                conn = await self._connection(entry)

    @staticmethod
    async def _fewer_channels(entry: PoolEntry, exc: Exception) -> None:
        if entry.capacity <= 1 or entry.in_flight <= 1:
            raise ConnectionFailed(f"the server refused a channel: {exc}", host=entry.name) from None
        entry.capacity -= 1
        entry.shrink += 1
        entry.release_session()  # swallowed: this permit is the one the server does not allow
        await entry.sessions.acquire()

    @staticmethod
    def _feed_stdin(chan: Any, stdin: str | bytes | None, password: Any) -> None:
        if password is not None:
            chan.write(password.reveal().encode() + b"\n")
        if stdin is not None:
            chan.write(stdin.encode() if isinstance(stdin, str) else stdin)
        chan.write_eof()

    async def _wait(
        self,
        entry: PoolEntry,
        conn: Any,
        chan: Any,
        session: CommandSession,
        timeout: float | None,
        stopper: Stopper,
    ) -> None:
        try:
            async with asyncio.timeout(timeout):
                exc = await asyncio.shield(session.done)
        except TimeoutError:
            await self._stop(conn, chan, session, stopper)
            raise CommandTimeout(  # with what it printed until it was stopped (capped as it streamed)
                f"command timed out after {timeout}s",
                host=entry.name,
                timeout=timeout,
                stdout=session.stdout.captured().text,
                stderr=session.stderr.captured().text,
            ) from None
        except asyncio.CancelledError:
            await self._stop(conn, chan, session, stopper)
            raise
        if exc is not None or (session.exit_status is None and session.exit_signal is None):
            reason = f": {exc}" if exc is not None else ""
            raise ConnectionFailed(f"connection lost during the command{reason}", host=entry.name)

    async def _stop(self, conn: Any, chan: Any, session: CommandSession, stopper: Stopper) -> None:
        """Stop a command on the remote side: a KILL signal request (sshd refuses it for root
        logins), a KILL of every process carrying the command's marker, then close the channel."""
        with contextlib.suppress(Exception):
            chan.send_signal("KILL")
        with contextlib.suppress(Exception, TimeoutError, asyncio.CancelledError):
            async with asyncio.timeout(self.timeouts.kill_grace):
                await conn.run(stopper.line(), input=stopper.stdin(), check=False)
        with contextlib.suppress(Exception):
            chan.close()
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            async with asyncio.timeout(self.timeouts.kill_grace):
                await asyncio.shield(session.done)

    def _result(self, host: str, command: str, session: CommandSession, start: Any) -> CommandResult:
        so, se = session.stdout.captured(), session.stderr.captured()
        return CommandResult(
            host=host,
            command=command,
            exit_status=session.exit_status if session.exit_signal is None else None,
            stdout=so.text,
            stderr=se.text,
            start=start,
            end=self._clock.now(),
            signal=session.exit_signal,
            stdout_bytes=so.total_bytes,
            stderr_bytes=se.total_bytes,
            truncated=so.truncated or se.truncated,
            stdout_sha256=so.sha256,
        )


def _login(entry: PoolEntry) -> str:
    """The user ``entry`` logs in as (whose password sudo asks for)."""
    return str(getattr(entry.settings, "username", None) or "?")
