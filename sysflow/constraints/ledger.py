"""What a run holds right now: pool units, budget slots, recent starts; and whether one more fits.

:class:`Ledger` is the bookkeeping half of runtime admission (``admission.py`` keeps the order of
waiting requests and wakes them): it answers whether an operation's needs fit what is held
(:meth:`Ledger.check`), records a grant (:meth:`Ledger.commit`) and its return. It is not locked
itself: :class:`~sysflow.constraints.admission.Admission` calls it under its lock.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass
from datetime import datetime

from sysflow.constraints.capacity import SPACING, LimitKind, Limits, OpLike, OpNeeds
from sysflow.constraints.weekly import utc_datetime
from sysflow.errors import ConstraintError

__all__ = ["Denied", "Grant", "Ledger"]

_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Grant:
    """Permission for one operation to run; hand it back with :meth:`Admission.release`."""

    id: int
    host: str
    task: str
    usage: tuple[tuple[str, float], ...]
    at: datetime
    host_started: bool  # this grant started the host's maintenance (and took its budget slots)

    def __bool__(self) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class Denied:
    """Not now: which constraint (``constraint`` key, ``kind``), why, and when to try again.

    ``retry_at`` is None when only a release (or a capacity change) can help.
    """

    reason: str
    constraint: str
    kind: LimitKind | None
    retry_at: datetime | None = None

    def __bool__(self) -> bool:
        return False


class Ledger:
    """Units held per pool, hosts per budget, starts per rate, the last host start; and the grants."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.used: dict[str, float] = {}
        self.starts: dict[str, deque[float]] = {}
        self.budget: dict[str, set[str]] = {}
        self.hosts: dict[str, tuple[str, ...]] = {}  # host in maintenance -> budget keys held
        self._last_host_start: float | None = None
        self._grants: set[int] = set()
        self._ids = itertools.count(1)
        self._caps = limits.capacities

    def check(self, needs: OpNeeds, ts: float, new_host: bool, starting: bool) -> Denied | None:
        """The first limit ``needs`` would break at ``ts`` (a POSIX time), or None: it fits."""
        # Denied is falsy: compare with None, never chain with `or`
        denied = self._pool_check(needs)
        if denied is None and new_host and needs.budgets:
            denied = self.budget_check(needs)
        if denied is None and starting and self.limits.spacing is not None:
            denied = self._spacing_check(ts)
        if denied is None and needs.rates:
            denied = self._rate_check(needs, ts)
        return denied

    def commit(
        self, op: OpLike, needs: OpNeeds, now: datetime, ts: float, new_host: bool, starting: bool
    ) -> Grant:
        """Take what ``op`` needs and hand out its grant."""
        used = self.used
        for key, demand in needs.usage:
            used[key] = used.get(key, 0.0) + demand
        for key in needs.rates:
            self.starts[key].append(ts)
        if starting:
            self._last_host_start = ts
        if new_host:
            self.hosts[op.host] = needs.budgets
            for key in needs.budgets:
                self.budget.setdefault(key, set()).add(op.host)
        grant = Grant(next(self._ids), op.host, op.task, needs.usage, now, new_host)
        self._grants.add(grant.id)
        return grant

    def release(self, grant: Grant) -> None:
        """Give back the pool units of ``grant``; a grant not held is an error (released twice)."""
        if grant.id not in self._grants:
            raise ConstraintError(f"grant {grant.id} for {grant.task}@{grant.host} is not held")
        self._grants.discard(grant.id)
        for key, demand in grant.usage:
            self.used[key] -= demand

    def host_done(self, host: str) -> tuple[str, ...]:
        """The host leaves maintenance; the budget keys whose slots it freed."""
        freed = self.hosts.pop(host, ())
        for key in freed:
            self.budget[key].discard(host)
        return freed

    def in_use(self, key: str) -> float:
        if key in self.budget:
            return float(len(self.budget[key]))
        if key in self.starts:
            return float(len(self.starts[key]))
        return self.used.get(key, 0.0)

    def may_admit(self, key: str) -> bool:
        """False when ``key`` is a pool or budget with nothing left: nobody blocked on it can go."""
        cap = self._caps.get(key)
        if cap is None:
            return True
        if key in self.budget:
            return len(self.budget[key]) < cap
        held = self.used.get(key)
        return held is None or held + _EPS < cap

    def budget_check(self, needs: OpNeeds) -> Denied | None:
        for key in needs.budgets:
            held = len(self.budget.get(key, ()))
            cap = self._caps[key]
            if held + 1 > cap:
                reason = f"disruption budget {key!r}: {held} of {cap:g} hosts in maintenance"
                return Denied(reason, key, LimitKind.BUDGET)
        return None

    def _pool_check(self, needs: OpNeeds) -> Denied | None:
        used = self.used
        caps = self._caps
        for key, demand in needs.usage:
            cap = caps[key]
            held = used.get(key, 0.0)
            if held + demand > cap + _EPS:
                reason = f"pool {key!r} is full: {held:g} of {cap:g} in use, needs {demand:g}"
                return Denied(reason, key, LimitKind.POOL)
        return None

    def _spacing_check(self, ts: float) -> Denied | None:
        spacing = self.limits.spacing
        if spacing is None or self._last_host_start is None:
            return None
        ready = self._last_host_start + spacing.seconds
        if ts + _EPS < ready:
            reason = f"{SPACING}: next host may start {spacing.seconds:g}s after the previous one"
            return Denied(reason, SPACING, LimitKind.SPACING, utc_datetime(ready))
        return None

    def _rate_check(self, needs: OpNeeds, ts: float) -> Denied | None:
        for key in needs.rates:
            per = self.limits.period(key)
            cap = int(self._caps[key])
            starts = self.starts.get(key)
            if starts is None:
                starts = self.starts[key] = deque()
            while starts and starts[0] + per <= ts + _EPS:
                starts.popleft()
            if len(starts) >= cap:
                retry = starts[len(starts) - cap] + per if cap > 0 else None
                reason = f"rate limit {key!r}: {len(starts)} starts in the last {per:g}s (max {cap})"
                return Denied(reason, key, LimitKind.RATE, utc_datetime(retry) if retry is not None else None)
        return None
