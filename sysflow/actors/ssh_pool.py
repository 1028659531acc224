"""The SSH pool's bookkeeping: one entry per host (its connection and channels), the pool's state
and its counters.

Why a module of its own: the transport, its connector, its connection slots and its command runner
all read and update the same entries and counters; none of this touches the network.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from sysflow.actors.ssh_options import DEFAULT_MAX_SESSIONS, SettingsLike

__all__ = [
    "Connect",
    "Lost",
    "PoolCounters",
    "PoolEntry",
    "PoolState",
    "close_rank",
]


class PoolState(Enum):
    """Whether the transport takes work (OPEN), lets running commands finish, or is done."""

    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


@dataclass(eq=False)
class PoolEntry:
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
    jump: PoolEntry | None = None
    become_password: Any = None
    capacity: int = DEFAULT_MAX_SESSIONS  # channels allowed at once (lowered if the server refuses)
    shrink: int = 0  # permits to swallow on release, after the server refused a channel

    def release_session(self) -> None:
        """Give back a channel permit, unless it is one the server no longer allows."""
        if self.shrink:
            self.shrink -= 1
        else:
            self.sessions.release()

    def leave_jump(self) -> None:
        """No longer tunnel through the jump host's connection (this one closed or never opened)."""
        if self.jump is not None:
            self.jump.tunnels -= 1
            self.jump = None


@dataclass
class PoolCounters:
    """Running totals and gauges for ``SSHTransport.stats`` (connection slots count themselves)."""

    connects: int = 0
    connect_failures: int = 0
    commands: int = 0
    opening: int = 0
    channels: int = 0
    peak_channels: int = 0


Lost = Callable[[PoolEntry, Any], None]
"""Forget an entry's connection (closed by either side); the transport's ``_lost``."""

Connect = Callable[[PoolEntry], Awaitable[Any]]
"""The open connection of an entry, opened (or reopened) if need be; the connector's ``connection``."""


def close_rank(entry: PoolEntry) -> int:
    """0 for targets; jump hosts after them, a hop nearer the client later."""
    if not entry.name.startswith("jump:"):
        return 0
    return 1_000_000 - entry.name.count(",")
