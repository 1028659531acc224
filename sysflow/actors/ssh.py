"""The SSH transport: one pooled asyncssh connection per host, multiplexed channels, bounded everything.

Why: a fleet run sends many commands to many hosts. Opening a connection costs a key exchange
(about 20 ms of server CPU), so :class:`SSHTransport` keeps one connection per host and runs each
command on a new channel of it, never more channels per connection than the server's
``MaxSessions`` allows. Open connections are capped globally and per shard; *new* connections
are paced per target and per jump host, so sshd's ``MaxStartups`` does not drop handshakes.

Every network wait has a timeout (named constants in ``ssh_options``, in seconds). Connection-level failures
are retried with jittered exponential backoff; commands are never retried here (the engine
decides). Failures are classified into the ``ConnectionFailed`` family and ``CommandTimeout``
(``sysflow.errors``); a command that overruns its timeout is signalled and its channel closed, so
it stops on the remote side. Credentials come from a ``CredentialProvider`` at each connect, host
keys from a shared ``HostKeyStore``. asyncssh is imported when the first connection opens.

This module holds the coordinator, which owns the pooled entries and their lifecycle; connecting
is ``ssh_connect``, connection caps and pacing ``ssh_capacity``, one command ``ssh_channel``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sysflow.actors.auth import CredentialProvider, SSHAuth
from sysflow.actors.hostkeys import HostKeyPolicy, HostKeyStore
from sysflow.actors.ssh_capacity import ConnectionSlots, HandshakePacing
from sysflow.actors.ssh_channel import CommandRunner
from sysflow.actors.ssh_connect import Connector
from sysflow.actors.ssh_files import get_file, put_file
from sysflow.actors.ssh_options import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_KEEPALIVE_COUNT_MAX,
    DEFAULT_KEEPALIVE_INTERVAL,
    DEFAULT_LOGIN_TIMEOUT,
    DEFAULT_MAX_SESSIONS,
    Resolver,
    RetryPolicy,
    SettingsLike,
    SSHLimits,
    SSHStats,
    SSHTimeouts,
    settings_resolver,
)
from sysflow.actors.ssh_pool import PoolCounters, PoolEntry, PoolState, close_rank
from sysflow.actors.ssh_remote import parse_settle, settle_command
from sysflow.clock import Clock, RealClock
from sysflow.errors import TransportError
from sysflow.model.ssh_config import ConnectionSettings
from sysflow.transport import (
    DEFAULT_OUTPUT_CAP,
    DEFAULT_SETTLE_TIMEOUT,
    CommandResult,
    OutputTap,
    Settled,
    valid_command_id,
)

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_KEEPALIVE_COUNT_MAX",
    "DEFAULT_KEEPALIVE_INTERVAL",
    "DEFAULT_LOGIN_TIMEOUT",
    "DEFAULT_MAX_SESSIONS",
    "ConnectionSettings",
    "Resolver",
    "RetryPolicy",
    "SSHLimits",
    "SSHStats",
    "SSHTimeouts",
    "SSHTransport",
    "SettingsLike",
]

_SETTLE_SLACK = 10.0  # seconds over its own bound a settle command may take (scans, a slow host)


class SSHTransport:
    """A ``Transport`` over SSH with a connection pool. Use ``async with`` or call ``close()``.

    ``settings`` maps inventory names to connection settings (a callable such as the ssh_config
    resolver, or a mapping; unknown names connect to themselves). ``auth`` is asked for credentials
    at every connect. ``known_hosts`` is a shared :class:`HostKeyStore` or the file(s) to build one.
    ``shard_of`` names the shard of a host for ``SSHLimits.max_connections_per_shard``.
    ``on_output`` is told each command as it starts and its output line by line (see
    :data:`~sysflow.transport.OutputTap`).
    """

    def __init__(
        self,
        settings: Resolver | None = None,
        auth: CredentialProvider | None = None,
        *,
        known_hosts: HostKeyStore | str | Path | Sequence[str | Path] | None = None,
        host_key_policy: HostKeyPolicy | str = HostKeyPolicy.STRICT,
        accept_new_file: str | Path | None = None,
        limits: SSHLimits | None = None,
        timeouts: SSHTimeouts | None = None,
        retry: RetryPolicy | None = None,
        shard_of: Callable[[str], str] | None = None,
        output_cap: int = DEFAULT_OUTPUT_CAP,
        clock: Clock | None = None,
        seed: int | None = None,
        on_output: OutputTap | None = None,
    ) -> None:
        self._resolve = settings_resolver(settings)
        provider: CredentialProvider = auth if auth is not None else SSHAuth.from_agent()
        self._store = (
            known_hosts
            if isinstance(known_hosts, HostKeyStore)
            else HostKeyStore(known_hosts, policy=host_key_policy, accept_new_file=accept_new_file)
        )
        self.limits = limits or SSHLimits()
        self.timeouts = timeouts or SSHTimeouts()
        self.retry = retry or RetryPolicy()
        self._shard_of = shard_of or (lambda _name: "")
        self._clock = clock or RealClock()
        self._entries: dict[str, PoolEntry] = {}
        self._state = PoolState.OPEN
        self._counters = PoolCounters()
        self._reaper: asyncio.Task[None] | None = None
        self._slots = ConnectionSlots(self.limits, self._clock, self._entries, self._drain)
        self._connector = Connector(
            auth=provider,
            store=self._store,
            resolve=self._resolve,
            timeouts=self.timeouts,
            retry=self.retry,
            slots=self._slots,
            pacing=HandshakePacing(self.limits, self._clock),
            counters=self._counters,
            clock=self._clock,
            rng=random.Random(seed),
            entry_for=self._entry,
            lost=self._lost,
            state=lambda: self._state,
            connected=self._ensure_reaper,
        )
        self._runner = CommandRunner(
            connection=self._connector.connection,
            lost=self._lost,
            counters=self._counters,
            timeouts=self.timeouts,
            clock=self._clock,
            output_cap=output_cap,
            tap=on_output,
        )

    # -- public surface -----------------------------------------------------------------------------

    async def __aenter__(self) -> SSHTransport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def host_keys(self) -> HostKeyStore:
        return self._store

    def stats(self) -> SSHStats:
        c = self._counters
        return SSHStats(
            connections_open=self._slots.open_count,
            connections_opening=c.opening,
            channels_in_flight=c.channels,
            connects_done=c.connects,
            connect_failures=c.connect_failures,
            commands_done=c.commands,
            peak_connections_open=self._slots.peak_open,
            peak_channels_in_flight=c.peak_channels,
        )

    async def connect(self, host: str) -> None:
        """Open (or reuse) the pooled connection of ``host`` without running anything."""
        self._check_open()
        entry = self._entry(host)
        await entry.sessions.acquire()  # like a command: close() waits for it
        try:
            await self._connector.connection(entry)
        finally:
            entry.release_session()

    async def run(
        self,
        host: str,
        command: str,
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        stdin: str | bytes | None = None,
        cwd: str | None = None,
        become: bool | str = False,
    ) -> CommandResult:
        """Run ``command`` on ``host`` over its pooled connection; ``become`` runs it through sudo."""
        self._check_open()
        entry = self._entry(host)
        timeout = timeout if timeout is not None else self.timeouts.command
        await entry.sessions.acquire()
        entry.in_flight += 1
        c = self._counters
        c.channels += 1
        c.peak_channels = max(c.peak_channels, c.channels)
        try:
            return await self._runner.run_on(entry, command, timeout, env, stdin, cwd, become)
        finally:
            entry.in_flight -= 1
            self._counters.channels -= 1
            entry.last_used = self._clock.monotonic()
            entry.release_session()

    async def disconnect(self, host: str) -> None:
        """Close ``host``'s pooled connection, if open, so that its next command connects anew (after
        a reboot the old one is dead, or still the old boot's). Commands running on it are lost."""
        entry = self._entries.get(host)
        if entry is not None and entry.conn is not None:
            self._lost(entry, entry.conn)

    async def put(
        self,
        host: str,
        src: str,
        dest: str,
        *,
        timeout: float | None = None,
        rate: float | None = None,
        content: bytes | None = None,
    ) -> int:
        """Send the local file ``src`` to a new file ``dest`` on ``host`` over SFTP on its pooled
        connection, at most ``rate`` bytes per second (see :mod:`sysflow.actors.ssh_files`); the
        bytes sent."""
        async with self._sftp_session(host, timeout, f"sending {src} to {dest}") as conn:
            return await put_file(conn, host, src, dest, rate=rate, clock=self._clock, content=content)

    async def get(self, host: str, src: str, dest: str, *, timeout: float | None = None) -> int:
        """Bring ``src`` from ``host`` into the local file ``dest`` over SFTP on its pooled connection."""
        async with self._sftp_session(host, timeout, f"fetching {src}") as conn:
            return await get_file(conn, host, src, dest)

    @contextlib.asynccontextmanager
    async def _sftp_session(self, host: str, timeout: float | None, what: str) -> AsyncIterator[Any]:
        """The pooled connection of ``host`` for one SFTP transfer (a channel like a command's),
        within ``timeout`` (default: the command timeout)."""
        self._check_open()
        entry = self._entry(host)
        await entry.sessions.acquire()
        entry.in_flight += 1
        try:
            conn = await self._connector.connection(entry)
            async with asyncio.timeout(timeout if timeout is not None else self.timeouts.command):
                yield conn
        except TimeoutError:
            raise TransportError(f"{what} timed out", host=host) from None
        finally:
            entry.in_flight -= 1
            entry.last_used = self._clock.monotonic()
            entry.release_session()

    async def settle(
        self,
        host: str,
        command_id: str,
        *,
        wait: bool = True,
        timeout: float | None = None,
        become: bool | str = False,
    ) -> Settled:
        """Whether the command ``command_id`` (its ``SYSFLOW_CMD_ID``) still runs on ``host``; with
        ``wait``, wait up to ``timeout`` seconds (default ``DEFAULT_SETTLE_TIMEOUT``) for it to end and
        stop it when that passes; without, stop it at once. One remote command does all of it; run it
        as the user the command ran as (``become``). Connection failures raise as for ``run``."""
        if not valid_command_id(command_id):
            raise ValueError(f"not a command id: {command_id!r}")
        bound = max(0.0, timeout if timeout is not None else DEFAULT_SETTLE_TIMEOUT) if wait else 0.0
        line = settle_command(command_id, wait=bound, stop=True)
        start = self._clock.monotonic()
        result = await self.run(
            host, line, timeout=bound + 2 * self.timeouts.kill_grace + _SETTLE_SLACK, become=become
        )
        fields = parse_settle(result.stdout)
        if fields is None:
            raise TransportError(
                f"cannot tell whether command {command_id} still runs: exit status {result.exit_status},"
                f" {result.stderr.strip()[:200] or 'no output'}",
                host=host,
            )
        return Settled.from_fields(host, command_id, fields, self._clock.monotonic() - start)

    async def close(self) -> None:
        """Stop taking work, let running commands finish, close every connection."""
        if self._state is not PoolState.OPEN:
            return
        self._state = PoolState.CLOSING
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        # Targets first, then the jump hosts their tunnels run through (longest chains first);
        # the connections of one rank close concurrently.
        ranks: dict[int, list[PoolEntry]] = {}
        for entry in self._entries.values():
            ranks.setdefault(close_rank(entry), []).append(entry)
        for rank in sorted(ranks):
            await asyncio.gather(*(self._drain(e) for e in ranks[rank]))
        self._entries.clear()
        self._state = PoolState.CLOSED

    # -- entries, losing, reaping and closing ----------------------------------------------------------

    def _check_open(self) -> None:
        if self._state is not PoolState.OPEN:
            raise TransportError("the SSH transport is closed")

    def _entry(self, name: str, settings_of: Callable[[str], SettingsLike] | None = None) -> PoolEntry:
        """The pooled entry of ``name``, made if new with its settings from ``settings_of`` (the
        resolver by default; the connector passes a jump host's own)."""
        entry = self._entries.get(name)
        if entry is None:
            settings = (settings_of or self._resolve)(name)
            entry = PoolEntry(
                name=name,
                settings=settings,
                shard=self._shard_of(name),
                sessions=asyncio.Semaphore(self.limits.max_sessions),
                capacity=self.limits.max_sessions,
            )
            self._entries[name] = entry
        return entry

    def _lost(self, entry: PoolEntry, conn: Any) -> None:
        """Forget ``conn`` (closed by either side); idempotent."""
        if conn is None or entry.conn is not conn:
            return
        entry.conn = None
        self._slots.release(entry.shard)
        entry.leave_jump()
        with contextlib.suppress(Exception):
            conn.close()

    async def _drain(self, entry: PoolEntry) -> None:
        """Wait for the entry's channels to finish, then close its connection."""
        held = entry.capacity
        for _ in range(held):
            await entry.sessions.acquire()
        try:
            conn = entry.conn
            if conn is not None:
                self._lost(entry, conn)
                with contextlib.suppress(TimeoutError, Exception):
                    async with asyncio.timeout(self.timeouts.close):
                        await conn.wait_closed()
        finally:
            for _ in range(held):
                entry.sessions.release()

    def _ensure_reaper(self) -> None:
        if self._reaper is None and self.timeouts.idle > 0:
            self._reaper = asyncio.get_running_loop().create_task(self._reap())

    async def _reap(self) -> None:
        """Close connections idle for longer than ``timeouts.idle``."""
        period = max(0.05, self.timeouts.idle / 4)
        while self._state is PoolState.OPEN:
            await self._clock.sleep(period)
            now = self._clock.monotonic()
            for entry in list(self._entries.values()):
                idle = entry.conn is not None and entry.in_flight == 0 and entry.tunnels == 0
                if idle and now - entry.last_used >= self.timeouts.idle:
                    await self._drain(entry)
