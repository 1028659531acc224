"""Runtime admission: may this operation start now, given every pool, rate, spacing and budget?

:class:`Admission` enforces the instances of a :class:`~sysflow.constraints.capacity.Limits` at
run time. ``try_acquire`` answers at once with a :class:`Grant` or a :class:`Denied` naming the
constraint and, where time alone will lift it (rate limits, spacing), when to retry; ``acquire``
waits for a grant; ``release`` returns a grant's pool units; ``host_done`` ends a host's
maintenance and frees its disruption-budget slot.

Ordering: requests are served in the order callers ask. A waiting request holds its place on
every instance it needs: a later request that shares any instance with an earlier waiter is
denied until that waiter is served (no starvation), while requests on disjoint instances pass.
What a release (or a budget slot, a capacity change) frees is handed to the oldest waiters it
admits, in order, under the lock: the grant travels in the waiter's future, so a waiter wakes only
when it holds its grant (no thundering herd, no wake-up that finds the slot taken again).
One exception keeps this free of deadlock: a new host waiting for a disruption-budget slot holds
its place on the budget only, because that slot is freed by hosts already in maintenance, whose
remaining operations must be able to start.
What is held is kept by :class:`~sysflow.constraints.ledger.Ledger`. State changes happen under
one lock, so the limits hold with concurrent callers on any thread;
``acquire`` itself is for asyncio tasks. All time comes from the clock.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sysflow.clock import Clock
from sysflow.constraints.capacity import SPACING, Limits, OpLike, OpNeeds
from sysflow.constraints.ledger import Denied, Grant, Ledger

_SPACING_KEYS = frozenset({SPACING})

__all__ = ["Admission", "Denied", "Grant"]


@dataclass(slots=True)
class _Waiter:
    op: OpLike
    host_starting: bool | None
    keys: frozenset[str]
    loop: asyncio.AbstractEventLoop
    # resolves to the grant handed over by a release, or to None: "the clock may let you in, try"
    future: asyncio.Future[Grant | None]
    blocked_on: str | None = None  # the constraint of its last denial: what to wake it for


class Admission:
    """Admission control over all constraint instances of a run."""

    def __init__(self, limits: Limits, clock: Clock) -> None:
        self.limits = limits
        self.clock = clock
        self._lock = threading.Lock()
        self._held = Ledger(limits)
        self._tickets = itertools.count(1)
        # in ticket order; an OrderedDict because the oldest leave first: a plain dict keeps the
        # holes they leave, and every look from the front (the queue check) walks over them
        self._waiters: OrderedDict[int, _Waiter] = OrderedDict()

    # -- public ------------------------------------------------------------------------------

    def try_acquire(
        self, op: OpLike, now: datetime | None = None, *, host_starting: bool | None = None
    ) -> Grant | Denied:
        """Grant ``op`` now, or say why not. ``host_starting`` defaults to "host not in maintenance"."""
        when = now if now is not None else self.clock.now()
        with self._lock:
            return self._try(op, when, host_starting, None)

    async def acquire(self, op: OpLike, *, host_starting: bool | None = None) -> Grant:
        """Wait (on the clock, or for a release) until ``op`` is granted; FIFO among waiters."""
        loop = asyncio.get_running_loop()
        with self._lock:
            # Fast path: granted at once when no earlier waiter shares an instance (_try's queue
            # check sees every waiter, as it would for a ticket taken now), with no ticket to file.
            result = self._try(op, self.clock.now(), host_starting, None)
            if isinstance(result, Grant):
                return result
            ticket = next(self._tickets)
            keys = self._held_keys(op, host_starting)
            waiter = _Waiter(op, host_starting, keys, loop, loop.create_future(), result.constraint)
            self._waiters[ticket] = waiter
        grant: Grant | None = None
        retry_at = result.retry_at
        try:
            while grant is None:
                grant = await self._wait(waiter, retry_at)
                if grant is None:  # the clock (rate, spacing) may let it in now: try
                    attempt = self._attempt(ticket, waiter)
                    if isinstance(attempt, Grant):
                        grant = attempt
                    else:
                        retry_at = attempt.retry_at
            return grant
        except BaseException:
            with self._lock:
                future = waiter.future
                if not future.done():
                    future.cancel()  # a grant still on its way from another thread now goes back
            if grant is None and future.done() and not future.cancelled():
                grant = future.result()  # handed over as this task was cancelled: nobody takes it
            if grant is not None:
                self.release(grant)
            raise
        finally:
            with self._lock:
                gone = self._waiters.pop(ticket, None)
            if gone is not None:
                self._wake(gone.keys)  # later waiters queued behind it may go now

    def release(self, grant: Grant) -> None:
        """Return the pool units of ``grant`` (its host stays in maintenance until ``host_done``)."""
        with self._lock:
            self._held.release(grant)
        if self._waiters:
            self._wake({key for key, _ in grant.usage})

    def host_done(self, host: str) -> None:
        """The host's last operation ended: it leaves maintenance and frees its budget slots."""
        with self._lock:
            freed = self._held.host_done(host)
        if self._waiters:
            self._wake(set(freed))

    def set_capacity(self, key: str, value: float) -> None:
        """Throttle while running; lowering never revokes grants, it only holds new ones back."""
        with self._lock:
            self.limits.set_capacity(key, value)
        self._wake({key})

    def in_use(self, key: str) -> float:
        """Units held on a pool, hosts held on a budget, or starts within the window of a rate."""
        with self._lock:
            return self._held.in_use(key)

    def in_maintenance(self) -> list[str]:
        with self._lock:
            return sorted(self._held.hosts)

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    # -- decisions (under the lock) ----------------------------------------------------------

    def _keys(self, op: OpLike, needs: OpNeeds, host_starting: bool | None) -> frozenset[str]:
        in_maintenance = op.host in self._held.hosts
        starting = host_starting if host_starting is not None else not in_maintenance
        keys = needs.running_keys if in_maintenance else needs.new_host_keys
        if starting and self.limits.spacing is not None:
            return keys | _SPACING_KEYS
        return keys

    def _held_keys(self, op: OpLike, host_starting: bool | None) -> frozenset[str]:
        """The instances on which a waiting ``op`` holds its place in the queue.

        A new host that waits for a disruption-budget slot holds its place on the budget only:
        the slot is freed by hosts already in maintenance finishing their chains, so their
        operations must not queue behind it (that would deadlock).
        """
        needs = self.limits.needs(op)
        if op.host not in self._held.hosts and needs.budgets and self._held.budget_check(needs) is not None:
            return frozenset(needs.budgets)
        return self._keys(op, needs, host_starting)

    def _try(
        self, op: OpLike, now: datetime, host_starting: bool | None, ticket: int | None
    ) -> Grant | Denied:
        needs = self.limits.needs(op)
        new_host = op.host not in self._held.hosts
        starting = host_starting if host_starting is not None else new_host
        ts = now.timestamp()
        denied = self._queue_check(op, needs, host_starting, ticket) if self._waiters else None
        if denied is None:
            denied = self._held.check(needs, ts, new_host, starting)
        if denied is not None:
            return denied
        return self._held.commit(op, needs, now, ts, new_host, starting)

    def _queue_check(
        self, op: OpLike, needs: OpNeeds, host_starting: bool | None, ticket: int | None
    ) -> Denied | None:
        if not self._waiters:
            return None
        keys = self._keys(op, needs, host_starting)
        for other, waiter in self._waiters.items():
            if ticket is not None and other >= ticket:
                break
            shared = keys & waiter.keys
            if shared:
                key = min(shared)
                kind = self.limits.instance(key).kind
                return Denied(f"an earlier request is waiting for {key!r}", key, kind)
        return None

    # -- waiting -----------------------------------------------------------------------------

    def _attempt(self, ticket: int, waiter: _Waiter) -> Grant | Denied:
        """The waiter tries by itself (its clock came due): granted, or filed under the new reason."""
        with self._lock:
            result = self._try(waiter.op, self.clock.now(), waiter.host_starting, ticket)
            if isinstance(result, Grant):
                del self._waiters[ticket]
                passed = set(waiter.keys)
            else:
                passed = self._refile(waiter, result)
                waiter.future = waiter.loop.create_future()
        self._wake(passed)
        return result

    def _refile(self, waiter: _Waiter, denied: Denied) -> set[str]:
        """File a waiter under its new denial; the places it gave up and the wake-up for a key it no
        longer waits on (under the lock): the waiters behind it there may go."""
        old_keys, old_block = waiter.keys, waiter.blocked_on
        waiter.keys = self._held_keys(waiter.op, waiter.host_starting)
        waiter.blocked_on = denied.constraint
        passed = set(old_keys - waiter.keys)
        if old_block is not None and old_block != denied.constraint:
            passed.add(old_block)
        return passed

    async def _wait(self, waiter: _Waiter, retry_at: datetime | None) -> Grant | None:
        """The grant a release hands over, or None when ``retry_at`` comes (or the waiter must try)."""
        future = waiter.future
        if retry_at is None:
            return await future
        delay = max(0.0, (retry_at - self.clock.now()).total_seconds())
        sleeper = asyncio.ensure_future(self.clock.sleep(delay))
        try:
            await asyncio.wait((future, sleeper), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
        if future.done():
            return future.result()
        with self._lock:  # the clock came first: a release can no longer hand it a grant
            if future.done():
                return future.result()
            future.cancel()
        return None

    def _wake(self, keys: Collection[str]) -> None:
        """Hand what was freed on ``keys`` to the oldest waiters it now admits, in ticket order.

        For each key, waiters blocked on it try in turn until one is denied: the ones behind that one
        queue behind it (it is woken again when its own constraint frees). A granted waiter leaves
        the queue, so the keys it held places on are looked at too. A waiter denied on a clock
        (rate, spacing) is woken to keep its own timer.
        """
        if not keys or not self._waiters:
            return
        handed: list[tuple[_Waiter, Grant | None]] = []
        with self._lock:
            now = self.clock.now()
            todo = set(keys)
            while todo:
                found = self._oldest_blocked(todo)
                if found is None:
                    break
                ticket, w = found
                key = w.blocked_on
                result = self._try(w.op, now, w.host_starting, ticket)
                if isinstance(result, Grant):
                    del self._waiters[ticket]
                    handed.append((w, result))
                    # the places it held may let later waiters go where anything is left to take;
                    # where it took the last of something, nobody behind it can go now
                    for k in w.keys:
                        if self._held.may_admit(k):
                            todo.add(k)
                        else:
                            todo.discard(k)
                    continue
                assert key is not None
                todo.discard(key)  # the ones behind it on this key stay queued behind it
                todo |= self._refile(w, result) - {result.constraint}
                if result.retry_at is not None:
                    handed.append((w, None))  # it sleeps until then by itself
        for w, grant in handed:
            if _running_loop() is w.loop:
                self._hand(w.future, grant)
            else:
                w.loop.call_soon_threadsafe(self._hand, w.future, grant)

    def _oldest_blocked(self, keys: set[str]) -> tuple[int, _Waiter] | None:
        for ticket, w in self._waiters.items():  # insertion order is ticket order
            if w.blocked_on in keys and not w.future.done():
                return ticket, w
        return None

    def _hand(self, future: asyncio.Future[Grant | None], grant: Grant | None) -> None:
        """Resolve a waiter's future (on its loop); a grant its cancelled waiter cannot take goes back."""
        if not future.done():
            future.set_result(grant)
        elif grant is not None:
            self.release(grant)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    return asyncio._get_running_loop()  # None off the loop; get_running_loop() raises instead
