"""How many SSH connections may be open, and how fast new ones may start.

Why: open connections are capped globally and per shard (an idle one is closed to make room), and
*new* connections are paced per target and per jump host, with a cap on concurrent handshakes, so
sshd's ``MaxStartups`` does not drop handshakes and the client's CPU is not swamped by key exchanges.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from sysflow.actors.ssh_options import SSHLimits
from sysflow.actors.ssh_pool import PoolEntry
from sysflow.clock import Clock

__all__ = ["ConnectionSlots", "HandshakePacing", "Pacer"]


@dataclass
class ConnectionSlots:
    """The global and per-shard caps on open connections (``SSHLimits.max_connections*``).

    ``entries`` is the transport's pool (read to find an idle connection to close when full);
    ``drain`` closes one after its channels finish.
    """

    limits: SSHLimits
    clock: Clock
    entries: Mapping[str, PoolEntry]
    drain: Callable[[PoolEntry], Awaitable[None]]
    open_count: int = 0
    peak_open: int = 0
    by_shard: dict[str, int] = field(default_factory=dict)

    async def acquire(self, shard: str) -> None:
        """Wait for room for one more connection of ``shard``, closing idle ones to make it."""
        cap, shard_cap = self.limits.max_connections, self.limits.max_connections_per_shard
        by_shard = self.by_shard
        while self.open_count >= cap or (shard_cap is not None and by_shard.get(shard, 0) >= shard_cap):
            if not await self._evict_idle(shard if shard_cap is not None and self.open_count < cap else None):
                await self.clock.sleep(0.05)
        self.open_count += 1
        self.peak_open = max(self.peak_open, self.open_count)
        by_shard[shard] = by_shard.get(shard, 0) + 1

    def release(self, shard: str) -> None:
        """A connection of ``shard`` closed (or never opened): its room is free again."""
        self.open_count -= 1
        self.by_shard[shard] -= 1

    async def _evict_idle(self, shard: str | None) -> bool:
        """Close the least recently used idle connection (of ``shard`` if given)."""
        idle = [
            e
            for e in self.entries.values()
            if e.conn is not None
            and e.in_flight == 0
            and e.tunnels == 0
            and (shard is None or e.shard == shard)
        ]
        if not idle:
            return False
        victim = min(idle, key=lambda e: e.last_used)
        await self.drain(victim)
        return True


@dataclass
class Pacer:
    """Limits concurrent handshakes to one target and spaces their starts."""

    slots: asyncio.Semaphore
    interval: float
    next_start: float = 0.0


class HandshakePacing:
    """Handshake slots: a global cap, and per target / per jump host caps with spaced starts."""

    def __init__(self, limits: SSHLimits, clock: Clock) -> None:
        self.limits = limits
        self._clock = clock
        self._pacers: dict[str, Pacer] = {}
        self._handshakes: asyncio.Semaphore | None = None

    async def enter(self, target: str, jump: str | None) -> list[asyncio.Semaphore]:
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
            self.leave(held)
            raise
        return held

    @staticmethod
    def leave(held: list[asyncio.Semaphore]) -> None:
        """Give back the slots ``enter`` took."""
        for sem in held:
            sem.release()

    def _pacer(self, key: str, slots: int) -> Pacer:
        pacer = self._pacers.get(key)
        if pacer is None:
            rate = self.limits.connect_rate_per_target
            pacer = Pacer(asyncio.Semaphore(slots), 1.0 / rate if rate else 0.0)
            self._pacers[key] = pacer
        return pacer

    async def _space(self, pacer: Pacer) -> None:
        if pacer.interval <= 0:
            return
        now = self._clock.monotonic()
        start = max(now, pacer.next_start)
        pacer.next_start = start + pacer.interval
        if start > now:
            await self._clock.sleep(start - now)
