"""SSH transport settings: timeouts, limits, retry policy, statistics, and host settings resolution.

Why a module of its own: these are the knobs users set (named constants with units, frozen
dataclasses) and the way an inventory name becomes a place to connect to (a callable resolver such
as ``Inventory.connection`` or a mapping; ``ProxyJump`` hops). Nothing here touches the network.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from sysflow.model.ssh_config import DEFAULT_SSH_PORT, ConnectionSettings

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_KEEPALIVE_COUNT_MAX",
    "DEFAULT_KEEPALIVE_INTERVAL",
    "DEFAULT_LOGIN_TIMEOUT",
    "DEFAULT_MAX_SESSIONS",
    "ENV_NAME",
    "MARKER_VAR",
    "Resolver",
    "RetryPolicy",
    "SSHLimits",
    "SSHStats",
    "SSHTimeouts",
    "SettingsLike",
    "jump_hops",
    "jump_settings",
    "settings_resolver",
]

DEFAULT_CONNECT_TIMEOUT = 10.0  # seconds: TCP connect + SSH key exchange
DEFAULT_LOGIN_TIMEOUT = 20.0  # seconds: user authentication after the key exchange
DEFAULT_KEEPALIVE_INTERVAL = 30.0  # seconds between SSH keepalive requests on a quiet connection
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
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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
    peak_connections_open: int = 0
    peak_channels_in_flight: int = 0


def _bare(name: str) -> SettingsLike:
    """Settings of a host nobody described: connect to the name itself, port 22, default user."""
    return ConnectionSettings(name=name, hostname=name, port=DEFAULT_SSH_PORT, username="")


def settings_resolver(resolver: Resolver | None) -> Callable[[str], SettingsLike]:
    if resolver is None:
        return _bare
    if isinstance(resolver, Mapping):
        table = resolver

        def lookup(name: str) -> SettingsLike:
            got = table.get(name)
            return got if got is not None else _bare(name)

        return lookup
    return resolver


def jump_hops(settings: SettingsLike) -> list[str]:
    pj = settings.proxy_jump
    if not pj:
        return []
    items = pj.split(",") if isinstance(pj, str) else list(pj)
    return [i.strip() for i in items if i.strip() and i.strip().lower() != "none"]


def jump_settings(spec: str, resolve: Callable[[str], SettingsLike]) -> SettingsLike:
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
