"""The resident scheduler: starts each schedule's runs when they fall due, once, with history.

Each pass (:meth:`Scheduler.tick`) looks at every active schedule's occurrences between its cursor
(everything before was handled) and now:

* an occurrence at most ``tolerance`` seconds old is **due**: it is claimed and started;
* older ones were **missed** (the scheduler was down) and the schedule's :class:`MissedPolicy`
  applies: ``skip`` records them; ``catch_up`` starts one run now for the latest of them;
  ``run_next_window`` starts one run for the latest of them when the schedule's next window opens
  (a *postponed* claim, taken by whichever scheduler is up then). A due occurrence supersedes
  missed ones: nothing is made up when a regular run starts anyway.

Every occurrence, started or not, is first **claimed**: one ``INSERT`` on the unique key (schedule,
occurrence) inside ``BEGIN IMMEDIATE``; only the scheduler whose insert succeeded acts on it, so
restarts and several schedulers over one store never start a run twice. A started run's id is
``<schedule>-<occurrence as %Y%m%dT%H%M%SZ>``, unique in the run store as well.

Before starting, a forecast (:func:`sysflow.planner.build.plan_pair`, p50) of what fits in the
coming windows is recorded in the history. Hosts held by another live run make the engine wait up
to the schedule's ``lease_wait``, then the occurrence is recorded ``deferred: held by run X``.
Starts and ends go to the audit log (when one is given), naming the schedule; the default engine
also audits every operation of the run.

A scheduler that dies while its run is going leaves the claim ``running``: nobody starts that
occurrence again; the interrupted run is continued with ``sysflow resume RUN`` like any other. The
run is owned by the controller process that runs it (see :mod:`sysflow.engine.store`): a run id a
live controller already owns is never started again (the occurrence is recorded ``deferred``,
naming the owner), and such a run cannot be resumed while its scheduler lives.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sysflow.clock import Clock, RealClock, utc
from sysflow.engine.store import RunStore
from sysflow.errors import LeaseConflict, RunOwned, SysflowError
from sysflow.model.inventory import Inventory
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.schedule.model import ClaimState, MissedPolicy, Schedule, ScheduleState
from sysflow.schedule.recurrence import Recurrence, occurrences
from sysflow.schedule.schedules import Schedules

if TYPE_CHECKING:
    from sysflow.audit.log import AuditLog
    from sysflow.engine.engine import Engine
    from sysflow.engine.result import RunResult

__all__ = ["DEFAULT_POLL", "EngineFactory", "Scheduler", "run_id_for"]

_log = logging.getLogger(__name__)
DEFAULT_POLL = 60.0  # seconds between passes at most (new schedules are noticed this fast)
_LOOKAHEAD = timedelta(days=62)  # how far ahead the next occurrence is looked for
_FORECAST_HORIZON = timedelta(days=14)

EngineFactory = Callable[[Schedule, Inventory], "Engine"]
"""Builds the engine that runs one occurrence (transport, auth, store, clock are its business)."""


@dataclass(frozen=True, slots=True)
class _Expansion:
    """A schedule's occurrences in ``(start, end]``, for the spec and workflow named by ``key``."""

    key: str
    start: datetime
    end: datetime
    instants: tuple[datetime, ...]


def run_id_for(name: str, occurrence: datetime) -> str:
    return f"{name}-{utc(occurrence):%Y%m%dT%H%M%SZ}"


class Scheduler:
    """Starts the runs of the store's schedules. ``await Scheduler(store).run()`` runs until stopped."""

    def __init__(
        self,
        store: RunStore,
        *,
        clock: Clock | None = None,
        engine_factory: EngineFactory | None = None,
        audit: AuditLog | None = None,
        names: Sequence[str] | None = None,
        poll: float = DEFAULT_POLL,
        forecast: bool = True,
        owner: str | None = None,
    ) -> None:
        self.store = store
        self.schedules = Schedules(store)
        self.clock = clock or RealClock()
        self.engine_factory = engine_factory or self._default_engine
        self.audit = audit
        self.names = None if names is None else set(names)
        self.poll = poll
        self.forecast = forecast
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self.results: dict[str, RunResult] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._parsed: dict[str, MaintenanceWorkflow] = {}  # by content digest: parsing is not cheap
        self._expanded: dict[str, _Expansion] = {}  # by schedule name
        self._stop = asyncio.Event()

    # -- running ----------------------------------------------------------------------------------

    async def run(self, *, until: datetime | None = None) -> None:
        """Pass after pass until :meth:`stop` (or ``until``); then wait for the runs it started."""
        try:
            while not self._stop.is_set():
                now = self.clock.now()
                if until is not None and now >= until:
                    break
                self.tick(now)
                wake = min(self._next_wake(now), until) if until is not None else self._next_wake(now)
                await self._sleep(max(0.0, (wake - now).total_seconds()))
        finally:
            await self.wait()

    async def run_once(self) -> None:
        """One pass, then wait for what it started (``sysflow scheduler --once``, systemd timers)."""
        self.tick(self.clock.now())
        await self.wait()

    def stop(self) -> None:
        self._stop.set()

    async def wait(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _sleep(self, seconds: float) -> None:
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        stopper = asyncio.ensure_future(self._stop.wait())
        await asyncio.wait((sleeper, stopper), return_when=asyncio.FIRST_COMPLETED)
        for f in (sleeper, stopper):
            f.cancel()

    def _active(self) -> list[Schedule]:
        return [
            s
            for s in self.schedules.list()
            if s.state is ScheduleState.ACTIVE and (self.names is None or s.name in self.names)
        ]

    def _next_wake(self, now: datetime) -> datetime:
        wake = now + timedelta(seconds=self.poll)
        for s in self._active():
            try:
                found = self._occurrences(s, now, now + _LOOKAHEAD)
            except (SysflowError, ValueError):  # logged by the pass; the others still wake us
                continue
            if found:
                wake = min(wake, found[0])
        active = {s.name for s in self._active()}
        for c in self.schedules.claims(state=ClaimState.POSTPONED):
            if c.schedule in active:
                wake = min(wake, max(c.due, now))
        return wake

    # -- one pass ---------------------------------------------------------------------------------

    def tick(self, now: datetime) -> None:
        """Claim and start what is due at ``now``, apply the missed-run policy, take due postponed runs."""
        active = {s.name: s for s in self._active()}
        for s in active.values():
            try:
                self._tick_schedule(s, now)
            except (SysflowError, ValueError) as exc:  # one broken schedule must not stop the others
                _log.warning("schedule %s: %s", s.name, exc)
        for c in self.schedules.claims(state=ClaimState.POSTPONED):  # paused schedules keep theirs
            if (
                c.schedule in active
                and c.due <= now
                and self.schedules.take_postponed(c.schedule, c.occurrence, owner=self.owner)
            ):
                self._spawn(active[c.schedule], c.occurrence, now, "postponed run")

    def _tick_schedule(self, s: Schedule, now: datetime) -> None:
        wf = self._workflow(s)
        found = self._occurrences(s, s.cursor, now)
        late = timedelta(seconds=s.spec.tolerance)
        due = [o for o in found if now - o <= late]
        missed = [o for o in found if now - o > late]
        for o in due:
            if self._claim(s, o, ClaimState.STARTING, now, now):
                self._spawn(s, o, now, "due")
        self._missed(s, wf, missed, now, superseded=bool(due))
        self.schedules.advance(s.name, now)

    def _missed(
        self, s: Schedule, wf: MaintenanceWorkflow, missed: list[datetime], now: datetime, *, superseded: bool
    ) -> None:
        if not missed:
            return
        policy = s.spec.missed
        make_up = None if superseded or policy is MissedPolicy.SKIP else missed[-1]
        for o in missed:
            if o == make_up:
                continue
            why = "superseded by a due occurrence" if superseded else f"{policy.value}: scheduler was down"
            if self._claim(s, o, ClaimState.MISSED, now, now):
                self.schedules.record(s.name, o, "missed", at=now, detail=why)
        if make_up is None:
            return
        if policy is MissedPolicy.CATCH_UP:
            if self._claim(s, make_up, ClaimState.STARTING, now, now):
                self._spawn(s, make_up, now, "catch_up")
            return
        due = next_window(s.spec.recurrence, wf, now)
        if self._claim(s, make_up, ClaimState.POSTPONED, due, now):
            self.schedules.record(
                s.name, make_up, "postponed", at=now, detail=f"run_next_window: at {due.isoformat()}"
            )

    def _claim(self, s: Schedule, o: datetime, state: ClaimState, due: datetime, now: datetime) -> bool:
        return self.schedules.claim(s.name, o, state=state, due=due, owner=self.owner, at=now)

    def _spawn(self, s: Schedule, occurrence: datetime, now: datetime, why: str) -> None:
        task = asyncio.get_running_loop().create_task(self._start(s, occurrence, why))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- one run ----------------------------------------------------------------------------------

    async def _start(self, s: Schedule, occurrence: datetime, why: str) -> None:
        rid = run_id_for(s.name, occurrence)
        now = self.clock.now()
        try:
            wf, inv = self._workflow(s), Inventory.model_validate_json(s.inventory_json)
            if self.forecast:
                self.schedules.record(
                    s.name, occurrence, "forecast", at=now, run_id=rid, detail=_forecast(wf, inv, now)
                )
            engine = self.engine_factory(s, inv)
        except (SysflowError, ValueError) as exc:
            self._end(s, occurrence, rid, ClaimState.FAILED, "failed", f"cannot start: {exc}")
            return
        self.schedules.set_claim(s.name, occurrence, ClaimState.RUNNING, run_id=rid)
        self.schedules.record(s.name, occurrence, "started", at=now, run_id=rid, detail=why)
        self._audit(rid, "schedule.start", f"schedule {s.name}: occurrence {occurrence.isoformat()} ({why})")
        try:
            result = await engine.run(wf, run_id=rid)
        except LeaseConflict as exc:
            self._end(
                s, occurrence, rid, ClaimState.DEFERRED, "deferred", f"deferred: held by run {exc.holder}"
            )
        except RunOwned as exc:  # the run id is already a live controller's: never run it twice
            self._end(s, occurrence, rid, ClaimState.DEFERRED, "deferred", f"deferred: {exc}")
        except SysflowError as exc:
            self._end(s, occurrence, rid, ClaimState.FAILED, "failed", str(exc))
        except Exception as exc:  # a bug must not leave the claim "running" forever
            _log.exception("schedule %s: run %s crashed", s.name, rid)
            self._end(s, occurrence, rid, ClaimState.FAILED, "failed", f"crashed: {type(exc).__name__}")
        else:
            self.results[rid] = result
            self._end(s, occurrence, rid, ClaimState.FINISHED, "finished", _outcome(result))

    def _end(
        self, s: Schedule, occurrence: datetime, rid: str, state: ClaimState, event: str, detail: str
    ) -> None:
        self.schedules.set_claim(s.name, occurrence, state, run_id=rid)
        self.schedules.record(s.name, occurrence, event, at=self.clock.now(), run_id=rid, detail=detail)
        self._audit(rid, f"schedule.{event}", f"schedule {s.name}: {detail}", outcome=event)

    def _audit(self, rid: str, action: str, detail: str, *, outcome: str = "") -> None:
        if self.audit is not None:
            self.audit.append(
                rid,
                action,
                at=self.clock.now(),
                detail=detail,
                outcome=outcome,
                who=f"scheduler:{self.owner}",
            )

    def _occurrences(self, s: Schedule, lo: datetime, hi: datetime) -> list[datetime]:
        """``occurrences`` in ``(lo, hi]``, from an expansion kept per schedule (passes are frequent)."""
        key = s.spec.model_dump_json() + s.workflow_digest
        span = self._expanded.get(s.name)
        if span is None or span.key != key or lo < span.start or hi > span.end:
            start, end = lo, max(hi, lo + _LOOKAHEAD) + _LOOKAHEAD
            found = occurrences(s.spec.recurrence, self._workflow(s).windows, start, end)
            span = self._expanded[s.name] = _Expansion(key, start, end, tuple(found))
        return [t for t in span.instants if lo < t <= hi]

    def _workflow(self, s: Schedule) -> MaintenanceWorkflow:
        key = s.workflow_digest
        if key not in self._parsed:
            self._parsed[key] = MaintenanceWorkflow.from_json(s.workflow_json)
        return self._parsed[key]

    def _default_engine(self, s: Schedule, inventory: Inventory) -> Engine:
        from sysflow.audit.observer import AuditObserver
        from sysflow.engine.engine import Engine

        observers = [] if self.audit is None else [AuditObserver(self.audit)]
        return Engine(
            inventory, store=self.store, clock=self.clock, lease_wait=s.spec.lease_wait, observers=observers
        )


def next_window(rec: Recurrence, workflow: MaintenanceWorkflow, now: datetime) -> datetime:
    """When the next window of the schedule opens (its group's; else the workflow's groups'; else now)."""
    groups = [rec.group] if rec.group is not None else sorted(workflow.windows.groups)
    starts = [
        found[0]
        for g in groups
        if (found := occurrences(Recurrence(group=g), workflow.windows, now, now + _LOOKAHEAD))
    ]
    return min(starts, default=now)


def _forecast(wf: MaintenanceWorkflow, inv: Inventory, now: datetime) -> str:
    """What will fit, one line per window (the planner's forecast), or why it could not be made."""
    from sysflow.planner.build import plan_pair
    from sysflow.planner.forecast import forecast

    try:
        (p50,) = plan_pair(wf, inv, start=now, horizon=_FORECAST_HORIZON)
    except SysflowError as exc:
        return f"no forecast: {exc}"
    fc = forecast(p50)
    lines = fc.lines() or ["nothing to plan"]
    if fc.deferred:
        lines.append("deferred: " + ", ".join(sorted(fc.deferred)))
    return "\n".join(lines)


def _outcome(result: RunResult) -> str:
    counts: dict[str, int] = {}
    for outcome in result.hosts.values():
        counts[outcome.value] = counts.get(outcome.value, 0) + 1
    parts = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    deferred = sorted(h for h, o in result.hosts.items() if o.value == "deferred")
    tail = f"; deferred: {', '.join(deferred)}" if deferred else ""
    return f"{result.status.value}: {parts}{tail}"
