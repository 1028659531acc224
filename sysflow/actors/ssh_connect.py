"""Opening the pooled SSH connection of one host: credentials, ProxyJump tunnels, the handshake,
retries.

Why a module of its own: connecting is where most faults happen. Connection-level failures are
retried with jittered exponential backoff, an authentication failure once with refreshed
credentials (a rotated key), a changed host key never. Concurrent callers share one attempt; a
handshake takes a connection slot and a paced handshake slot, and goes through the jump host's
own pooled connection when the host has a ProxyJump.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Callable
from typing import Any

from sysflow.actors.auth import CredentialProvider, Credentials
from sysflow.actors.hostkeys import HostKeyStore, host_key_error
from sysflow.actors.ssh_capacity import ConnectionSlots, HandshakePacing
from sysflow.actors.ssh_options import (
    RetryPolicy,
    SettingsLike,
    SSHTimeouts,
    jump_hops,
    jump_settings,
)
from sysflow.actors.ssh_pool import Lost, PoolCounters, PoolEntry, PoolState
from sysflow.actors.ssh_remote import classify_connect_error, new_client
from sysflow.clock import Clock
from sysflow.errors import (
    AuthenticationFailed,
    ConnectionFailed,
    HostKeyMismatch,
    HostKeyUnknown,
    TransportError,
)
from sysflow.model.ssh_config import DEFAULT_SSH_PORT, ConnectionSettings

__all__ = ["Connector", "EntryFor"]

_OPTIONS_CACHE_SIZE = 64  # asyncssh option sets kept (one per user x credential set)

EntryFor = Callable[[str, Callable[[str], SettingsLike]], PoolEntry]
"""The pool's entry of a name, made with the given settings if new; the transport's ``_entry``."""


@functools.cache
def _plain_key_algs() -> dict[str, list[str]]:
    """asyncssh's default host key algorithms without the certificate ones."""
    from asyncssh.public_key import get_default_public_key_algs

    return {"server_host_key_algs": [alg.decode() for alg in get_default_public_key_algs()]}


def _tried(creds: Credentials) -> str:
    """What was offered, for the user to check: key files (or fingerprints) and the agent."""
    names = []
    for item in creds.client_keys:
        key = item[0] if isinstance(item, tuple) else item
        filename = key.get_filename()
        names.append(filename.decode() if filename else key.get_fingerprint())
    keys = ", ".join(names) if names else "none"
    agent = f"agent {creds.agent_path}" if creds.uses_agent else "no agent"
    password = "; a password" if creds.password is not None else ""
    return f"keys tried: {keys}; {agent}{password}"


class Connector:
    """Opens (or shares the opening of) the connection of a pool entry.

    The transport hands it what it owns: ``entry_for`` (pool entries, for jump hosts), ``lost``
    (forget a closed connection), ``state`` (is the transport still open) and ``connected`` (called
    after each new connection, to start the idle reaper).
    """

    def __init__(
        self,
        *,
        auth: CredentialProvider,
        store: HostKeyStore,
        resolve: Callable[[str], SettingsLike],
        timeouts: SSHTimeouts,
        retry: RetryPolicy,
        slots: ConnectionSlots,
        pacing: HandshakePacing,
        counters: PoolCounters,
        clock: Clock,
        rng: random.Random,
        entry_for: EntryFor,
        lost: Lost,
        state: Callable[[], PoolState],
        connected: Callable[[], None],
    ) -> None:
        self._auth = auth
        self._store = store
        self._resolve = resolve
        self.timeouts = timeouts
        self.retry = retry
        self._slots = slots
        self._pacing = pacing
        self._counters = counters
        self._clock = clock
        self._rng = rng
        self._entry_for = entry_for
        self._lost = lost
        self._state = state
        self._connected = connected
        self._options: dict[tuple[Any, ...], Any] = {}

    async def connection(self, entry: PoolEntry) -> Any:
        """The open connection of ``entry``: the pooled one, the one being opened, or a new one."""
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

    async def _open_with_retry(self, entry: PoolEntry) -> Any:
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
            except (HostKeyMismatch, HostKeyUnknown):
                self._counters.connect_failures += 1
                raise
            except ConnectionFailed:
                self._counters.connect_failures += 1
                if attempt >= self.retry.retries or self._state() is not PoolState.OPEN:
                    raise
                await self._clock.sleep(self.retry.delay(attempt, self._rng))
                attempt += 1

    async def _open_once(self, entry: PoolEntry, *, refresh: bool) -> Any:
        settings = entry.settings
        creds = await self._auth.credentials(
            entry.name, refresh=refresh, identity_files=tuple(settings.identity_files)
        )
        tunnel = await self._tunnel_for(entry)
        await self._slots.acquire(entry.shard)
        try:
            conn = await self._handshake(entry, creds, tunnel)
        except BaseException:
            self._slots.release(entry.shard)
            entry.leave_jump()
            raise
        entry.conn = conn
        if self._state() is PoolState.CLOSED:  # closed while we were connecting: do not leak it
            self._lost(entry, conn)
            raise TransportError("the SSH transport is closed", host=entry.name)
        entry.become_password = creds.become_password
        entry.last_used = self._clock.monotonic()
        self._counters.connects += 1
        self._connected()
        return conn

    async def _tunnel_for(self, entry: PoolEntry) -> Any:
        hops = jump_hops(entry.settings)
        if not hops:
            return None
        jump = self._jump_entry(hops)
        conn = await self.connection(jump)
        jump.tunnels += 1
        entry.jump = jump
        return conn

    def _jump_entry(self, hops: list[str]) -> PoolEntry:
        """The pooled entry of the last hop; earlier hops become its own ProxyJump chain."""

        def settings_of(key: str) -> SettingsLike:
            last = jump_settings(hops[-1], self._resolve)
            return ConnectionSettings(
                name=key,
                hostname=last.hostname,
                port=last.port or DEFAULT_SSH_PORT,
                username=last.username or "",
                identity_files=tuple(last.identity_files),
                proxy_jump=",".join(hops[:-1]) or None,
            )

        return self._entry_for("jump:" + ",".join(hops), settings_of)

    async def _handshake(self, entry: PoolEntry, creds: Credentials, tunnel: Any) -> Any:
        import asyncssh

        settings = entry.settings
        client = new_client(self._store, lambda conn, exc: self._lost(entry, conn))
        target = f"{settings.hostname}:{settings.port or DEFAULT_SSH_PORT}"
        jump_key = entry.jump.name if entry.jump is not None else None
        t = self.timeouts
        port = settings.port or DEFAULT_SSH_PORT
        certs = self._store.wants_certificates(settings.hostname, port)
        options = self._options_for(creds, settings.username, certs)
        held = await self._pacing.enter(target, jump_key)
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
            if not client.verdict.ok:
                raise host_key_error(
                    client.verdict, entry.name, settings.hostname, port, self._store.files
                ) from None
            error = classify_connect_error(exc, entry.name, client)
            if isinstance(error, AuthenticationFailed):
                error = AuthenticationFailed(f"authentication failed ({_tried(creds)})", host=entry.name)
            raise error from None
        finally:
            self._pacing.leave(held)

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
