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
import errno
import random
import re
import secrets
import shlex
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from sysflow.actors.auth import CredentialProvider, Credentials, SSHAuth
from sysflow.actors.hostkeys import HostKeyPolicy, HostKeyStore, HostKeyVerdict
from sysflow.actors.output import OutputCollector
from sysflow.actors.transport import DEFAULT_OUTPUT_CAP, CommandResult
from sysflow.clock import Clock, RealClock
from sysflow.errors import (
    AuthenticationFailed,
    CommandTimeout,
    ConnectionFailed,
    ConnectTimeout,
    HostKeyMismatch,
    HostUnreachable,
    TransportError,
)
from sysflow.model.ssh_config import DEFAULT_SSH_PORT, ConnectionSettings

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

DEFAULT_CONNECT_TIMEOUT = 10.0  # seconds: TCP connect + SSH key exchange
DEFAULT_LOGIN_TIMEOUT = 20.0  # seconds: user authentication after the key exchange
DEFAULT_KEEPALIVE_INTERVAL = 15.0  # seconds between SSH keepalive requests on a quiet connection
DEFAULT_KEEPALIVE_COUNT_MAX = 3  # unanswered keepalives before the connection is declared dead
DEFAULT_IDLE_TIMEOUT = 300.0  # seconds a connection with no channel stays open
DEFAULT_CLOSE_TIMEOUT = 5.0  # seconds to wait for a connection to close cleanly
DEFAULT_KILL_GRACE = 2.0  # seconds between signalling a timed-out command and giving up on its channel
DEFAULT_MAX_SESSIONS = 10  # channels per connection: OpenSSH's MaxSessions default
DEFAULT_MAX_CONNECTIONS = 2_000  # open connections per transport
DEFAULT_MAX_STARTUPS = 10  # concurrent unauthenticated connections per target: OpenSSH MaxStartups start
DEFAULT_MAX_HANDSHAKES = 200  # concurrent handshakes per transport (they are CPU-bound)
DEFAULT_RETRIES = 2  # extra connect attempts after a connection-level failure
DEFAULT_BACKOFF_BASE = 0.5  # seconds before the first retry
DEFAULT_BACKOFF_MAX = 10.0  # seconds, the cap of one backoff
MARKER_VAR = "SYSFLOW_CMD_ID"  # exported into every command so a timed-out one can be found and killed
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SettingsLike(Protocol):
    """What the transport needs to reach a host; ``sysflow.model.ssh_config.ConnectionSettings`` fits.

    An empty ``username`` means "the credential provider's, else the local user"."""

    @property
    def name(self) -> str: ...
    @property
    def hostname(self) -> str: ...
    @property
    def port(self) -> int | None: ...
    @property
    def username(self) -> str | None: ...
    @property
    def identity_files(self) -> Sequence[str]: ...
    @property
    def proxy_jump(self) -> str | Sequence[str] | None: ...


Resolver = Callable[[str], SettingsLike] | Mapping[str, SettingsLike]


@dataclass(frozen=True, slots=True)
class SSHTimeouts:
    """Timeouts in seconds; ``command`` is the default when ``run`` gets none (None: unlimited)."""

    connect: float = DEFAULT_CONNECT_TIMEOUT
    login: float = DEFAULT_LOGIN_TIMEOUT
    keepalive_interval: float = DEFAULT_KEEPALIVE_INTERVAL
    keepalive_count_max: int = DEFAULT_KEEPALIVE_COUNT_MAX
    idle: float = DEFAULT_IDLE_TIMEOUT
    command: float | None = None
    kill_grace: float = DEFAULT_KILL_GRACE
    close: float = DEFAULT_CLOSE_TIMEOUT


@dataclass(frozen=True, slots=True)
class SSHLimits:
    """Caps on connections and channels, and pacing of new connections."""

    max_sessions: int = DEFAULT_MAX_SESSIONS
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    max_connections_per_shard: int | None = None
    max_startups_per_target: int = DEFAULT_MAX_STARTUPS
    max_startups_per_jump: int = DEFAULT_MAX_STARTUPS
    max_handshakes: int = DEFAULT_MAX_HANDSHAKES
    connect_rate_per_target: float | None = None  # new connections per second; None: unpaced

    def __post_init__(self) -> None:
        for name in ("max_sessions", "max_connections", "max_startups_per_target", "max_handshakes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Jittered exponential backoff for connection-level failures (never for commands)."""

    retries: int = DEFAULT_RETRIES
    base: float = DEFAULT_BACKOFF_BASE
    cap: float = DEFAULT_BACKOFF_MAX
    jitter: float = 0.5  # each delay is scaled by a random factor in [1 - jitter, 1]

    def delay(self, attempt: int, rng: random.Random) -> float:
        raw = min(self.cap, self.base * 2.0**attempt)
        return raw * (1.0 - self.jitter * rng.random())


@dataclass(frozen=True, slots=True)
class SSHStats:
    """A snapshot of the pool, for the HostPool's load report and the benchmark."""

    connections_open: int
    connections_opening: int
    channels_in_flight: int
    connects_done: int
    connect_failures: int
    commands_done: int


class _State(Enum):
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


class _Connect(Enum):
    """Why an attempt failed, as recorded by the client object of that attempt."""

    NONE = "none"
    HOSTKEY_UNKNOWN = "unknown"
    HOSTKEY_CHANGED = "changed"


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
    by_shard: dict[str, int] = field(default_factory=dict)


def _bare(name: str) -> SettingsLike:
    """Settings of a host nobody described: connect to the name itself, port 22, default user."""
    return ConnectionSettings(name=name, hostname=name, port=DEFAULT_SSH_PORT, username="")


def _settings_from(resolver: Resolver | None) -> Callable[[str], SettingsLike]:
    if resolver is None:
        return _bare
    if isinstance(resolver, Mapping):
        table = resolver

        def lookup(name: str) -> SettingsLike:
            got = table.get(name)
            return got if got is not None else _bare(name)

        return lookup
    return resolver


def _jumps(settings: SettingsLike) -> list[str]:
    pj = settings.proxy_jump
    if not pj:
        return []
    items = pj.split(",") if isinstance(pj, str) else list(pj)
    return [i.strip() for i in items if i.strip() and i.strip().lower() != "none"]


def _jump_settings(spec: str, resolve: Callable[[str], SettingsLike]) -> SettingsLike:
    """A ProxyJump hop: an inventory/ssh_config name, or ``[user@]host[:port]``."""
    user, _, hostport = spec.rpartition("@")
    host, port = hostport, None
    if hostport.count(":") == 1:
        host, p = hostport.split(":")
        port = int(p)
    base = resolve(host)
    if not user and port is None:
        return base
    return ConnectionSettings(
        name=spec,
        hostname=base.hostname,
        port=port if port is not None else (base.port or DEFAULT_SSH_PORT),
        username=user or base.username or "",
        identity_files=tuple(base.identity_files),
        proxy_jump=None,
    )


def wrap_command(
    command: str,
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    become: str | None = None,
    sudo_password: bool = False,
    marker: str | None = None,
) -> str:
    """The remote command line: exports, ``cd``, and ``sudo`` (password read from stdin first).

    ``marker`` is exported as ``SYSFLOW_CMD_ID`` so every process of the command can be found (and
    killed) by :func:`kill_command` even where sshd refuses signal requests (root logins).
    """
    parts: list[str] = [f"export {MARKER_VAR}={marker}"] if marker else []
    for k, v in (env or {}).items():
        if not _ENV_NAME.match(k):
            raise ValueError(f"not an environment variable name: {k!r}")
        parts.append(f"export {k}={shlex.quote(v)}")
    if cwd is not None:
        parts.append(f"cd {shlex.quote(cwd)} || exit 125")
    parts.append(command)
    line = "\n".join(parts)
    if become is None:
        return line
    inner = f"sudo -H -n -u {shlex.quote(become)} -- /bin/sh -c {shlex.quote(line)}"
    if not sudo_password:
        return inner
    # Read the password line from stdin inside the remote shell (a builtin: it never appears in a
    # process list), validate sudo with it on stdin (-S, empty prompt), then run the command with the
    # cached credential; the rest of stdin belongs to the command.
    check = 'IFS= read -r _sf_pw; printf "%s\\n" "$_sf_pw" | sudo -S -p "" -v 2>/dev/null; unset _sf_pw'
    return f"{check}; exec {inner}"


def kill_command(marker: str) -> str:
    """A remote command that KILLs every process whose environment carries ``marker`` (Linux /proc)."""
    needle = shlex.quote(f"{MARKER_VAR}={marker}")
    scan = f"for p in /proc/[0-9]*; do grep -qsaF {needle} $p/environ && kill -KILL ${{p#/proc/}}; done"
    return f"{scan} 2>/dev/null; true"


class _ClientMixin:
    """asyncssh client callbacks for one connection attempt: host key verdict and loss notice."""

    def __init__(self, store: HostKeyStore, on_lost: Callable[[Any, Exception | None], None]) -> None:
        self.store = store
        self.verdict = HostKeyVerdict.TRUSTED
        self.on_lost = on_lost
        self.conn: Any = None

    def connection_made(self, conn: Any) -> None:
        self.conn = conn

    def auth_banner_received(self, msg: str, lang: str) -> None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.on_lost(self.conn, exc)

    def validate_host_public_key(self, host: str, addr: str, port: int, key: Any) -> bool:
        self.verdict = self.store.check(host, addr, port, key)
        return self.verdict.ok

    def validate_host_ca_key(self, host: str, addr: str, port: int, key: Any) -> bool:
        return False


class _SessionMixin:
    """asyncssh session callbacks for one command: streams output into capped collectors."""

    def __init__(self, cap: int) -> None:
        self.stdout = OutputCollector(cap)
        self.stderr = OutputCollector(cap)
        self.exit_status: int | None = None
        self.exit_signal: str | None = None
        self.done: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

    def connection_made(self, chan: Any) -> None:
        return None

    def data_received(self, data: bytes, datatype: int | None) -> None:
        (self.stdout if datatype is None else self.stderr).feed(data)

    def exit_status_received(self, status: int) -> None:
        self.exit_status = status

    def exit_signal_received(self, signal: str, core_dumped: bool, msg: str, lang: str) -> None:
        self.exit_signal = signal

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(exc)


_CLASSES: dict[str, type[Any]] = {}


def _client(store: HostKeyStore, on_lost: Callable[[Any, Exception | None], None]) -> _ClientMixin:
    """A client object for one attempt: our callbacks over asyncssh's ``SSHClient`` defaults."""
    cls = _CLASSES.get("client")
    if cls is None:
        import asyncssh

        cls = _CLASSES["client"] = type("_Client", (_ClientMixin, asyncssh.SSHClient), {})
    client: _ClientMixin = cls(store, on_lost)
    return client


def _session(cap: int) -> _SessionMixin:
    """A session object for one command over asyncssh's ``SSHClientSession`` defaults."""
    cls = _CLASSES.get("session")
    if cls is None:
        import asyncssh

        cls = _CLASSES["session"] = type("_Session", (_SessionMixin, asyncssh.SSHClientSession), {})
    session: _SessionMixin = cls(cap)
    return session


def _classify(exc: BaseException, host: str, client: _ClientMixin | None) -> ConnectionFailed:
    """Turn what asyncssh / the OS raised while connecting into our exception family."""
    import asyncssh

    if isinstance(exc, ConnectionFailed):
        return exc
    if client is not None and not client.verdict.ok:
        what = "changed" if client.verdict is HostKeyVerdict.CHANGED else "not in known_hosts"
        return HostKeyMismatch(f"host key {what}", host=host)
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return HostKeyMismatch(f"host key not verifiable: {exc.reason}", host=host)
    if isinstance(exc, asyncssh.PermissionDenied):
        return AuthenticationFailed("authentication failed", host=host)
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return ConnectTimeout("connect timed out", host=host)
    if isinstance(exc, ConnectionRefusedError | socket.gaierror):
        return HostUnreachable(f"unreachable: {exc.strerror or type(exc).__name__}", host=host)
    if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return HostUnreachable(f"unreachable: {exc.strerror}", host=host)
    if isinstance(exc, asyncssh.Error):
        return ConnectionFailed(f"connection failed: {exc.reason}", host=host)
    return ConnectionFailed(f"connection failed: {type(exc).__name__}: {exc}", host=host)


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
        self._resolve = _settings_from(settings)
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
        self._token = secrets.token_hex(4)
        self._serial = 0

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
        )

    async def connect(self, host: str) -> None:
        """Open (or reuse) the pooled connection of ``host`` without running anything."""
        self._check_open()
        await self._connection(self._entry(host))

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
        self._counters.channels += 1
        try:
            return await self._run_on(entry, command, timeout, env, stdin, cwd, become)
        finally:
            entry.in_flight -= 1
            self._counters.channels -= 1
            entry.last_used = self._clock.monotonic()
            entry.release_session()

    async def close(self) -> None:
        """Stop taking work, let running commands finish, close every connection."""
        if self._state is not _State.OPEN:
            return
        self._state = _State.CLOSING
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        entries = sorted(self._entries.values(), key=lambda e: e.tunnels)  # tunnelled ones first
        for entry in entries:
            await self._drain(entry)
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
        if conn is not None and not conn.is_closed():
            return conn
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
        if self._state is not _State.OPEN:  # closed while we were connecting: do not leak it
            self._lost(entry, conn)
            raise TransportError("the SSH transport is closed", host=entry.name)
        entry.become_password = creds.become_password
        entry.last_used = self._clock.monotonic()
        self._counters.connects += 1
        self._ensure_reaper()
        return conn

    async def _tunnel_for(self, entry: _Entry) -> Any:
        hops = _jumps(entry.settings)
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
            last = _jump_settings(hops[-1], self._resolve)
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
        client = _client(self._store, lambda conn, exc: self._lost(entry, conn))
        target = f"{settings.hostname}:{settings.port or DEFAULT_SSH_PORT}"
        jump_key = f"jump:{entry.jump.name}" if entry.jump is not None else None
        options = self._options_for(creds, settings.username)
        t = self.timeouts
        held = await self._enter_pacing(target, jump_key)
        try:
            async with asyncio.timeout(t.connect + t.login):
                return await asyncssh.connect(
                    settings.hostname,
                    settings.port or DEFAULT_SSH_PORT,
                    tunnel=tunnel if tunnel is not None else (),
                    options=options,
                    client_factory=lambda: client,
                )
        except Exception as exc:
            raise _classify(exc, entry.name, client) from None
        finally:
            self._leave_pacing(held)

    def _options_for(self, creds: Credentials, username: str | None) -> Any:
        """asyncssh options, built once per credential set (building them is not free)."""
        import asyncssh

        user = username or creds.username
        key = (user, creds.client_keys, creds.agent_path, creds.password)
        opts = self._options.get(key)
        if opts is None:
            t = self.timeouts
            self._options.clear()  # credentials changed: drop options built from the old ones
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
        self._serial += 1
        marker = f"{self._token}-{self._serial}"
        line = wrap_command(
            command, env=env, cwd=cwd, become=user, sudo_password=password is not None, marker=marker
        )
        start = self._clock.now()
        session = _session(self._cap)
        chan = await self._open_channel(entry, conn, session, line)
        self._feed_stdin(chan, stdin, password)
        await self._wait(entry, conn, chan, session, timeout, marker)
        self._counters.commands += 1
        return self._result(entry.name, command, session, start)

    async def _open_channel(self, entry: _Entry, conn: Any, session: _SessionMixin, line: str) -> Any:
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
        self, entry: _Entry, conn: Any, chan: Any, session: _SessionMixin, timeout: float | None, marker: str
    ) -> None:
        try:
            async with asyncio.timeout(timeout):
                exc = await asyncio.shield(session.done)
        except TimeoutError:
            await self._stop(conn, chan, session, marker)
            raise CommandTimeout(
                f"command timed out after {timeout}s", host=entry.name, timeout=timeout
            ) from None
        except asyncio.CancelledError:
            await self._stop(conn, chan, session, marker)
            raise
        if exc is not None or (session.exit_status is None and session.exit_signal is None):
            reason = f": {exc}" if exc is not None else ""
            raise ConnectionFailed(f"connection lost during the command{reason}", host=entry.name)

    async def _stop(self, conn: Any, chan: Any, session: _SessionMixin, marker: str) -> None:
        """Stop a command on the remote side: a KILL signal request (sshd refuses it for root
        logins), a KILL of every process carrying the command's marker, then close the channel."""
        with contextlib.suppress(Exception):
            chan.send_signal("KILL")
        with contextlib.suppress(Exception, TimeoutError, asyncio.CancelledError):
            async with asyncio.timeout(self.timeouts.kill_grace):
                await conn.run(kill_command(marker), check=False)
        with contextlib.suppress(Exception):
            chan.close()
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            async with asyncio.timeout(self.timeouts.kill_grace):
                await asyncio.shield(session.done)

    def _result(self, host: str, command: str, session: _SessionMixin, start: Any) -> CommandResult:
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
