"""The SSH transport: one pooled asyncssh connection per host, multiplexed channels, bounded everything.

Why: a fleet run sends many commands to many hosts. Opening a connection costs a key exchange
(about 20 ms of server CPU), so :class:`SSHTransport` keeps one connection per host and runs each
command on a new channel of it, never more channels per connection than the server's
``MaxSessions`` allows. Open connections are capped globally and per shard; *new* connections
are paced per target and per jump host, so sshd's ``MaxStartups`` does not drop handshakes.

Every network wait has a timeout (named constants below, in seconds). Connection-level failures
are retried with jittered exponential backoff; commands are never retried here (the engine
decides). Failures are classified into the ``ConnectionFailed`` family and ``CommandTimeout``
(``sysflow.errors``); a command that overruns its timeout is signalled and its channel closed, so
it stops on the remote side. Credentials come from a ``CredentialProvider`` at each connect, host
keys from a shared ``HostKeyStore``. asyncssh is imported when the first connection opens.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from sysflow.actors.auth import CredentialProvider, Credentials, SSHAuth
from sysflow.actors.hostkeys import HostKeyPolicy, HostKeyStore
from sysflow.actors.ssh_options import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_KEEPALIVE_COUNT_MAX,
    DEFAULT_KEEPALIVE_INTERVAL,
    DEFAULT_LOGIN_TIMEOUT,
    DEFAULT_MAX_SESSIONS,
    MARKER_VAR,
    Resolver,
    RetryPolicy,
    SettingsLike,
    SSHLimits,
    SSHStats,
    SSHTimeouts,
    jump_hops,
    jump_settings,
    settings_resolver,
)
from sysflow.actors.ssh_remote import (
    CommandSession,
    classify_connect_error,
    kill_command,
    new_client,
    new_session,
    parse_settle,
    settle_command,
    wrap_command,
)
from sysflow.clock import Clock, RealClock
from sysflow.errors import (
    AuthenticationFailed,
    CommandTimeout,
    ConnectionFailed,
    HostKeyMismatch,
    TransportError,
)
from sysflow.model.ssh_config import DEFAULT_SSH_PORT, ConnectionSettings
from sysflow.transport import (
    DEFAULT_OUTPUT_CAP,
    DEFAULT_SETTLE_TIMEOUT,
    CommandResult,
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

_OPTIONS_CACHE_SIZE = 64  # asyncssh option sets kept (one per user x credential set)
_SETTLE_SLACK = 10.0  # seconds over its own bound a settle command may take (scans, a slow host)


class _State(Enum):
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


@dataclass(eq=False)
class _Entry:
    """The pooled connection of one host (plus what waits on it)."""

    name: str
    settings: SettingsLike
    shard: str
    sessions: asyncio.Semaphore
    conn: Any = None
    opening: asyncio.Future[Any] | None = None
    in_flight: int = 0
    last_used: float = 0.0
    tunnels: int = 0  # connections tunnelled through this one (it serves as a jump host)
    jump: _Entry | None = None
    become_password: Any = None
    capacity: int = DEFAULT_MAX_SESSIONS  # channels allowed at once (lowered if the server refuses)
    shrink: int = 0  # permits to swallow on release, after the server refused a channel

    def release_session(self) -> None:
        if self.shrink:
            self.shrink -= 1
        else:
            self.sessions.release()


@dataclass(frozen=True, slots=True)
class _Stopper:
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


@dataclass
class _Pacer:
    """Limits concurrent handshakes to one target and spaces their starts."""

    slots: asyncio.Semaphore
    interval: float
    next_start: float = 0.0


@dataclass
class _Counters:
    connects: int = 0
    connect_failures: int = 0
    commands: int = 0
    opening: int = 0
    channels: int = 0
    peak_open: int = 0
    peak_channels: int = 0
    by_shard: dict[str, int] = field(default_factory=dict)


@functools.cache
def _plain_key_algs() -> dict[str, list[str]]:
    """asyncssh's default host key algorithms without the certificate ones."""
    from asyncssh.public_key import get_default_public_key_algs

    return {"server_host_key_algs": [alg.decode() for alg in get_default_public_key_algs()]}


def _close_rank(entry: _Entry) -> int:
    """0 for targets; jump hosts after them, a hop nearer the client later."""
    if not entry.name.startswith("jump:"):
        return 0
    return 1_000_000 - entry.name.count(",")


class SSHTransport:
    """A ``Transport`` over SSH with a connection pool. Use ``async with`` or call ``close()``.

    ``settings`` maps inventory names to connection settings (a callable such as the ssh_config
    resolver, or a mapping; unknown names connect to themselves). ``auth`` is asked for credentials
    at every connect. ``known_hosts`` is a shared :class:`HostKeyStore` or the file(s) to build one.
    ``shard_of`` names the shard of a host for ``SSHLimits.max_connections_per_shard``.
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
    ) -> None:
        self._resolve = settings_resolver(settings)
        self._auth: CredentialProvider = auth if auth is not None else SSHAuth.from_agent()
        self._store = (
            known_hosts
            if isinstance(known_hosts, HostKeyStore)
            else HostKeyStore(known_hosts, policy=host_key_policy, accept_new_file=accept_new_file)
        )
        self.limits = limits or SSHLimits()
        self.timeouts = timeouts or SSHTimeouts()
        self.retry = retry or RetryPolicy()
        self._shard_of = shard_of or (lambda _name: "")
        self._cap = output_cap
        self._clock = clock or RealClock()
        self._rng = random.Random(seed)
        self._entries: dict[str, _Entry] = {}
        self._state = _State.OPEN
        self._counters = _Counters()
        self._open_count = 0
        self._pacers: dict[str, _Pacer] = {}
        self._handshakes: asyncio.Semaphore | None = None
        self._reaper: asyncio.Task[None] | None = None
        self._options: dict[tuple[Any, ...], Any] = {}

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
            connections_open=self._open_count,
            connections_opening=c.opening,
            channels_in_flight=c.channels,
            connects_done=c.connects,
            connect_failures=c.connect_failures,
            commands_done=c.commands,
            peak_connections_open=c.peak_open,
            peak_channels_in_flight=c.peak_channels,
        )

    async def connect(self, host: str) -> None:
        """Open (or reuse) the pooled connection of ``host`` without running anything."""
        self._check_open()
        entry = self._entry(host)
        await entry.sessions.acquire()  # like a command: close() waits for it
        try:
            await self._connection(entry)
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
            return await self._run_on(entry, command, timeout, env, stdin, cwd, become)
        finally:
            entry.in_flight -= 1
            self._counters.channels -= 1
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

    def _marker(self, env: Mapping[str, str] | None) -> tuple[str, Mapping[str, str] | None]:
        """The command's marker: the id the caller put in ``env`` (``SYSFLOW_CMD_ID``), else a new
        random one; and ``env`` without it (``wrap_command`` exports the marker itself)."""
        if env and MARKER_VAR in env:
            marker = env[MARKER_VAR]
            if not valid_command_id(marker):
                raise ValueError(f"{MARKER_VAR} is not a command id: {marker!r}")
            return marker, {k: v for k, v in env.items() if k != MARKER_VAR}
        return secrets.token_hex(16), env

    async def close(self) -> None:
        """Stop taking work, let running commands finish, close every connection."""
        if self._state is not _State.OPEN:
            return
        self._state = _State.CLOSING
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        # Targets first, then the jump hosts their tunnels run through (longest chains first);
        # the connections of one rank close concurrently.
        ranks: dict[int, list[_Entry]] = {}
        for entry in self._entries.values():
            ranks.setdefault(_close_rank(entry), []).append(entry)
        for rank in sorted(ranks):
            await asyncio.gather(*(self._drain(e) for e in ranks[rank]))
        self._entries.clear()
        self._state = _State.CLOSED

    # -- entries and connections ----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._state is not _State.OPEN:
            raise TransportError("the SSH transport is closed")

    def _entry(self, name: str) -> _Entry:
        entry = self._entries.get(name)
        if entry is None:
            settings = self._resolve(name)
            entry = _Entry(
                name=name,
                settings=settings,
                shard=self._shard_of(name),
                sessions=asyncio.Semaphore(self.limits.max_sessions),
                capacity=self.limits.max_sessions,
            )
            self._entries[name] = entry
        return entry

    async def _connection(self, entry: _Entry) -> Any:
        conn = entry.conn
        if conn is not None:
            if not conn.is_closed():
                return conn
            self._lost(entry, conn)  # closed before its loss notice arrived: free its slot now
        if entry.opening is not None:
            return await asyncio.shield(entry.opening)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        entry.opening = fut
        self._counters.opening += 1
        try:
            conn = await self._open_with_retry(entry)
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: waiters re-raise it, nobody else must
            raise
        else:
            fut.set_result(conn)
            return conn
        finally:
            entry.opening = None
            self._counters.opening -= 1

    async def _open_with_retry(self, entry: _Entry) -> Any:
        refreshed = False
        attempt = 0
        while True:
            try:
                return await self._open_once(entry, refresh=refreshed)
            except AuthenticationFailed:
                self._counters.connect_failures += 1
                if refreshed:
                    raise
                refreshed = True  # ask the provider once more (a rotated credential)
            except HostKeyMismatch:
                self._counters.connect_failures += 1
                raise
            except ConnectionFailed:
                self._counters.connect_failures += 1
                if attempt >= self.retry.retries or self._state is not _State.OPEN:
                    raise
                await self._clock.sleep(self.retry.delay(attempt, self._rng))
                attempt += 1

    async def _open_once(self, entry: _Entry, *, refresh: bool) -> Any:
        settings = entry.settings
        creds = await self._auth.credentials(
            entry.name, refresh=refresh, identity_files=tuple(settings.identity_files)
        )
        tunnel = await self._tunnel_for(entry)
        await self._acquire_slot(entry.shard)
        try:
            conn = await self._handshake(entry, creds, tunnel)
        except BaseException:
            self._release_slot(entry.shard)
            if entry.jump is not None:
                entry.jump.tunnels -= 1
                entry.jump = None
            raise
        entry.conn = conn
        if self._state is _State.CLOSED:  # closed while we were connecting: do not leak it
            self._lost(entry, conn)
            raise TransportError("the SSH transport is closed", host=entry.name)
        entry.become_password = creds.become_password
        entry.last_used = self._clock.monotonic()
        self._counters.connects += 1
        self._ensure_reaper()
        return conn

    async def _tunnel_for(self, entry: _Entry) -> Any:
        hops = jump_hops(entry.settings)
        if not hops:
            return None
        jump = self._jump_entry(hops)
        conn = await self._connection(jump)
        jump.tunnels += 1
        entry.jump = jump
        return conn

    def _jump_entry(self, hops: list[str]) -> _Entry:
        """The pooled entry of the last hop; earlier hops become its own ProxyJump chain."""
        key = "jump:" + ",".join(hops)
        entry = self._entries.get(key)
        if entry is None:
            last = jump_settings(hops[-1], self._resolve)
            chain = ",".join(hops[:-1]) or None
            settings = ConnectionSettings(
                name=key,
                hostname=last.hostname,
                port=last.port or DEFAULT_SSH_PORT,
                username=last.username or "",
                identity_files=tuple(last.identity_files),
                proxy_jump=chain,
            )
            entry = _Entry(
                key,
                settings,
                self._shard_of(key),
                asyncio.Semaphore(self.limits.max_sessions),
                capacity=self.limits.max_sessions,
            )
            self._entries[key] = entry
        return entry

    async def _handshake(self, entry: _Entry, creds: Credentials, tunnel: Any) -> Any:
        import asyncssh

        settings = entry.settings
        client = new_client(self._store, lambda conn, exc: self._lost(entry, conn))
        target = f"{settings.hostname}:{settings.port or DEFAULT_SSH_PORT}"
        jump_key = entry.jump.name if entry.jump is not None else None
        t = self.timeouts
        port = settings.port or DEFAULT_SSH_PORT
        certs = self._store.wants_certificates(settings.hostname, port)
        options = self._options_for(creds, settings.username, certs)
        held = await self._enter_pacing(target, jump_key)
        try:
            async with asyncio.timeout(t.connect + t.login):
                return await asyncssh.connect(
                    settings.hostname,
                    port,
                    tunnel=tunnel if tunnel is not None else (),
                    options=options,
                    client_factory=lambda: client,
                )
        except Exception as exc:
            raise classify_connect_error(exc, entry.name, client) from None
        finally:
            self._leave_pacing(held)

    def _options_for(self, creds: Credentials, username: str | None, certs: bool) -> Any:
        """asyncssh options, built once per credential set (building them is not free); ``certs``:
        whether to ask for host certificates (else plain host key algorithms only)."""
        import asyncssh

        user = username or creds.username
        key = (user, creds.client_keys, creds.agent_path, creds.password, certs)
        opts = self._options.get(key)
        if opts is None:
            t = self.timeouts
            if len(self._options) >= _OPTIONS_CACHE_SIZE:  # rotated credentials leave stale entries
                self._options.clear()
            opts = asyncssh.SSHClientConnectionOptions(
                username=user or (),
                known_hosts=self._store.asyncssh_known_hosts(),
                client_keys=list(creds.client_keys)
                if creds.client_keys
                else (None if not creds.agent_path else ()),
                agent_path=creds.agent_path,
                password=creds.password.reveal() if creds.password is not None else None,
                config=None,
                connect_timeout=t.connect + t.login,
                keepalive_interval=t.keepalive_interval,
                keepalive_count_max=t.keepalive_count_max,
                kbdint_auth=False,
                gss_auth=False,
                host_based_auth=False,
                **({} if certs else _plain_key_algs()),
            )
            self._options[key] = opts
        return opts

    # -- connection slots and pacing ------------------------------------------------------------------

    async def _acquire_slot(self, shard: str) -> None:
        cap, shard_cap = self.limits.max_connections, self.limits.max_connections_per_shard
        by_shard = self._counters.by_shard
        while self._open_count >= cap or (shard_cap is not None and by_shard.get(shard, 0) >= shard_cap):
            if not await self._evict_idle(
                shard if shard_cap is not None and self._open_count < cap else None
            ):
                await self._clock.sleep(0.05)
        self._open_count += 1
        self._counters.peak_open = max(self._counters.peak_open, self._open_count)
        by_shard[shard] = by_shard.get(shard, 0) + 1

    def _release_slot(self, shard: str) -> None:
        self._open_count -= 1
        self._counters.by_shard[shard] -= 1

    async def _evict_idle(self, shard: str | None) -> bool:
        """Close the least recently used idle connection (of ``shard`` if given)."""
        idle = [
            e
            for e in self._entries.values()
            if e.conn is not None
            and e.in_flight == 0
            and e.tunnels == 0
            and (shard is None or e.shard == shard)
        ]
        if not idle:
            return False
        victim = min(idle, key=lambda e: e.last_used)
        await self._drain(victim)
        return True

    async def _enter_pacing(self, target: str, jump: str | None) -> list[asyncio.Semaphore]:
        """Take a handshake slot, a slot of the target (and of the jump host), spacing starts."""
        if self._handshakes is None:
            self._handshakes = asyncio.Semaphore(self.limits.max_handshakes)
        pacers = [self._pacer(target, self.limits.max_startups_per_target)]
        if jump is not None:
            pacers.append(self._pacer(jump, self.limits.max_startups_per_jump))
        held: list[asyncio.Semaphore] = []
        try:
            await self._handshakes.acquire()
            held.append(self._handshakes)
            for p in pacers:
                await p.slots.acquire()
                held.append(p.slots)
                await self._space(p)
        except BaseException:
            self._leave_pacing(held)
            raise
        return held

    @staticmethod
    def _leave_pacing(held: list[asyncio.Semaphore]) -> None:
        for sem in held:
            sem.release()

    def _pacer(self, key: str, slots: int) -> _Pacer:
        pacer = self._pacers.get(key)
        if pacer is None:
            rate = self.limits.connect_rate_per_target
            pacer = _Pacer(asyncio.Semaphore(slots), 1.0 / rate if rate else 0.0)
            self._pacers[key] = pacer
        return pacer

    async def _space(self, pacer: _Pacer) -> None:
        if pacer.interval <= 0:
            return
        now = self._clock.monotonic()
        start = max(now, pacer.next_start)
        pacer.next_start = start + pacer.interval
        if start > now:
            await self._clock.sleep(start - now)

    # -- running a command ------------------------------------------------------------------------------

    async def _run_on(
        self,
        entry: _Entry,
        command: str,
        timeout: float | None,
        env: Mapping[str, str] | None,
        stdin: str | bytes | None,
        cwd: str | None,
        become: bool | str,
    ) -> CommandResult:
        conn = await self._connection(entry)
        user = "root" if become is True else (become or None)
        password = entry.become_password if user is not None else None
        marker, env = self._marker(env)
        line = wrap_command(
            command, env=env, cwd=cwd, become=user, sudo_password=password is not None, marker=marker
        )
        start = self._clock.now()
        session = new_session(self._cap)
        chan = await self._open_channel(entry, conn, session, line)
        self._feed_stdin(chan, stdin, password)
        await self._wait(entry, conn, chan, session, timeout, _Stopper(marker, user, password))
        self._counters.commands += 1
        return self._result(entry.name, command, session, start)

    async def _open_channel(self, entry: _Entry, conn: Any, session: CommandSession, line: str) -> Any:
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

    async def _fewer_channels(self, entry: _Entry, exc: Exception) -> None:
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
        entry: _Entry,
        conn: Any,
        chan: Any,
        session: CommandSession,
        timeout: float | None,
        stopper: _Stopper,
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

    async def _stop(self, conn: Any, chan: Any, session: CommandSession, stopper: _Stopper) -> None:
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

    # -- losing, reaping and closing ------------------------------------------------------------------

    def _lost(self, entry: _Entry, conn: Any) -> None:
        """Forget ``conn`` (closed by either side); idempotent."""
        if conn is None or entry.conn is not conn:
            return
        entry.conn = None
        self._release_slot(entry.shard)
        if entry.jump is not None:
            entry.jump.tunnels -= 1
            entry.jump = None
        with contextlib.suppress(Exception):
            conn.close()

    async def _drain(self, entry: _Entry) -> None:
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
        while self._state is _State.OPEN:
            await self._clock.sleep(period)
            now = self._clock.monotonic()
            for entry in list(self._entries.values()):
                idle = entry.conn is not None and entry.in_flight == 0 and entry.tunnels == 0
                if idle and now - entry.last_used >= self.timeouts.idle:
                    await self._drain(entry)
