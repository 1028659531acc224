"""Host leases: one run at a time changes a host.

A run takes a lease on all its hosts in one transaction of the run store before it starts, renews
it on a heartbeat while it lives (the same beat refreshes the run's owner heartbeat in the store),
and returns it when it ends. A second run targeting a leased host
waits (up to ``wait``) or is refused with ``LeaseConflict`` naming the holder. A crashed run stops
renewing, so its leases expire after ``ttl`` and its hosts are not locked forever; ``resume`` takes
them again under the same run id.

Every write goes through the run's :class:`~sysflow.engine.recorder.RunRecorder`, the one writer
of the run's rows (a bare store, as tools and tests pass, is wrapped in a recorder of the run).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from types import TracebackType

from sysflow.clock import Clock
from sysflow.engine.recorder import RunRecorder
from sysflow.engine.store import RunStore
from sysflow.errors import LeaseConflict

__all__ = ["DEFAULT_LEASE_TTL", "HostLeases"]

log = logging.getLogger(__name__)

DEFAULT_LEASE_TTL = 60.0  # seconds a lease lives without a heartbeat
_POLL = 1.0  # seconds between attempts while waiting for a lease


class HostLeases:
    """``async with HostLeases(recorder, run_id, hosts):`` holds the hosts for the block."""

    def __init__(
        self,
        store: RunRecorder | RunStore,
        run_id: str,
        hosts: Sequence[str],
        *,
        clock: Clock | None = None,
        ttl: float = DEFAULT_LEASE_TTL,
        wait: float | None = None,
    ) -> None:
        if isinstance(store, RunStore):
            store = RunRecorder(store, run_id)
        if store.run_id != run_id:
            raise ValueError(f"leases of run {run_id!r} through the recorder of run {store.run_id!r}")
        self._recorder = store
        self.run_id = run_id
        self.hosts = list(hosts)
        self.ttl = ttl
        self.wait = wait
        self._clock = clock
        self._heartbeat: asyncio.Task[None] | None = None

    def _now(self) -> float:
        # Leases are shared between processes: real wall time unless a clock is given (simulation)
        return self._clock.now().timestamp() if self._clock is not None else time.time()

    async def _sleep(self, seconds: float) -> None:
        if self._clock is not None:
            await self._clock.sleep(seconds)
        else:
            await asyncio.sleep(seconds)

    async def acquire(self) -> None:
        """Take every lease, waiting up to ``wait`` seconds; ``LeaseConflict`` names the holder."""
        deadline = None if self.wait is None else self._now() + self.wait
        while True:
            held = self._recorder.take_leases(self.hosts, now=self._now(), ttl=self.ttl)
            if not held:
                self._heartbeat = asyncio.create_task(self._beat())
                return
            if deadline is None or self._now() >= deadline:
                raise _conflict(self.run_id, held)
            if self._recorder.claim_token() is not None:
                self._recorder.heartbeat()  # waiting for hosts is still owning the run
            await self._sleep(min(_POLL, max(deadline - self._now(), 0.0)))

    async def _beat(self) -> None:
        """Renew the leases and the run's owner heartbeat until released (or the run is lost)."""
        while True:
            await self._sleep(self.ttl / 3)
            self._recorder.renew_leases(now=self._now(), ttl=self.ttl)
            if self._recorder.claim_token() is not None and not self._recorder.heartbeat():
                log.warning("run %s: taken over by another controller; no longer renewing", self.run_id)
                return

    async def release(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        self._recorder.release_leases()

    async def __aenter__(self) -> HostLeases:
        await self.acquire()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.release()


def _conflict(run_id: str, held: dict[str, str]) -> LeaseConflict:
    holders = sorted(set(held.values()))
    hosts = sorted(held)
    shown = ", ".join(hosts[:5]) + (f" and {len(hosts) - 5} more" if len(hosts) > 5 else "")
    return LeaseConflict(
        f"run {run_id}: {len(hosts)} host(s) are held by run {', '.join(holders)}: {shown}",
        hosts=hosts,
        holder=holders[0],
    )
