"""The one writer of a run's records: every run-scoped write to the ``RunStore`` goes through here.

The engine (the run's row, its first plan, its durations), the rollout (position, gates, approvals,
plans, status), the tracker (operation records, write-ahead) and the host leases all call one
:class:`RunRecorder`, so the order and batching of a run's writes are decided in one place: writes
of one loop tick share a commit (:meth:`RunRecorder.durable`), and an operation is committed as
running before its command is sent. Without a store every method does nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from datetime import datetime

from sysflow.clock import Clock
from sysflow.engine.result import OpRecord
from sysflow.engine.states import RunStatus
from sysflow.engine.store import DEFAULT_OWNER_TTL, Owner, RunStore
from sysflow.planner.durations import DurationModel
from sysflow.planner.plan import Plan

__all__ = ["RunRecorder"]


class RunRecorder:
    """Writes one run's rows (run, operations, gates, plans, leases, ownership) to its store."""

    def __init__(self, store: RunStore | None, run_id: str, clock: Clock | None = None) -> None:
        self.store = store
        self.run_id = run_id
        self._clock = clock
        self._commit: asyncio.Future[None] | None = None

    def _at(self, at: datetime | None) -> datetime:
        if at is not None:
            return at
        if self._clock is None:
            return datetime.now().astimezone()
        return self._clock.now()

    # -- the run ----------------------------------------------------------------------------------

    def create(
        self,
        workflow: str,
        workflow_json: str,
        inventory_json: str,
        ops: Iterable[OpRecord],
        *,
        at: datetime,
        owner: Owner | None = None,
    ) -> None:
        """Record the new run and all its operations (pending), durably; ``owner`` owns it."""
        if self.store is not None:
            self.store.create_run(
                self.run_id, workflow, workflow_json, inventory_json, ops, at=at, owner=owner
            )

    def set_status(self, status: RunStatus, *, reason: str = "", at: datetime | None = None) -> None:
        if self.store is not None:
            self.store.set_status(self.run_id, status, at=self._at(at), reason=reason)

    def set_position(self, wave: int, *, failed_wave: int | None = None, reason: str = "") -> None:
        """The wave the rollout is at (and, once it stops, the wave that failed and why)."""
        if self.store is not None:
            self.store.set_position(self.run_id, wave, failed_wave=failed_wave, reason=reason)

    def gate(self, wave: int, kind: str, passed: bool | None, reasons: Sequence[str]) -> None:
        """A gate verdict or an approval (``kind``) for ``wave``, committed at once."""
        if self.store is not None:
            self.store.gate(self.run_id, wave, kind, passed, reasons, at=self._at(None))

    def add_plan(self, plan: Plan, reason: str, *, at: datetime | None = None) -> None:
        """A plan version (serialised only when there is a store: plans of big runs are large)."""
        if self.store is not None:
            self.store.add_plan(self.run_id, plan.to_json(indent=None), reason, at=self._at(at))

    def save_durations(self, name: str, model: DurationModel) -> None:
        """The durations learned by the run, kept for the workflow's next run."""
        if self.store is not None:
            self.store.save_durations(name, model.to_json(), at=self._at(None))

    # -- ownership --------------------------------------------------------------------------------

    def claim(self, owner: Owner, *, ttl: float = DEFAULT_OWNER_TTL) -> Owner | None:
        """Take the run over for ``owner`` (``RunOwned`` while a live controller owns it)."""
        if self.store is None:
            return None
        return self.store.claim_run(self.run_id, owner, ttl=ttl)

    def claim_token(self) -> str | None:
        """This process's claim on the run (None: not owned here); a read."""
        return None if self.store is None else self.store.claim_token(self.run_id)

    def heartbeat(self) -> bool:
        """Refresh the owner's heartbeat; False when the run is no longer owned here."""
        return self.store is not None and self.store.heartbeat(self.run_id)

    def disown(self) -> None:
        if self.store is not None:
            self.store.disown(self.run_id)

    # -- operations -------------------------------------------------------------------------------

    def add_op(self, record: OpRecord) -> None:
        """An operation created while running (an ``on_failure`` branch task)."""
        if self.store is not None:
            self.store.add_op(self.run_id, record)

    def op_started(self, op_id: str, *, at: datetime, attempt: int, command: str) -> None:
        """Write-ahead: the operation runs (committed by :meth:`durable` before its command is sent)."""
        if self.store is not None:
            self.store.op_started(self.run_id, op_id, at=at, attempt=attempt, command=command)

    def op_record(self, record: OpRecord) -> None:
        """The operation's record as it is now; buffered until the next commit."""
        if self.store is not None:
            self.store.op_record(self.run_id, record)

    # -- leases -----------------------------------------------------------------------------------

    def take_leases(self, hosts: Sequence[str], *, now: float, ttl: float) -> dict[str, str]:
        """Lease ``hosts`` to the run atomically; on conflict nothing is taken: host -> holder."""
        if self.store is None:
            return {}
        return self.store.take_leases(self.run_id, hosts, now=now, ttl=ttl)

    def renew_leases(self, *, now: float, ttl: float) -> None:
        if self.store is not None:
            self.store.renew_leases(self.run_id, now=now, ttl=ttl)

    def release_leases(self) -> None:
        if self.store is not None:
            self.store.release_leases(self.run_id)

    # -- commits ----------------------------------------------------------------------------------

    def commit(self) -> None:
        """Make every write so far durable, now."""
        if self.store is not None:
            self.store.commit()

    async def durable(self) -> None:
        """Wait until every store write so far is committed; writes of one loop tick share a commit."""
        if self.store is None:
            return
        if self._commit is None:
            loop = asyncio.get_running_loop()
            self._commit = loop.create_future()
            loop.call_soon(self._flush)
        await asyncio.shield(self._commit)

    def _flush(self) -> None:
        future, self._commit = self._commit, None
        assert self.store is not None
        assert future is not None
        try:
            self.store.commit()
        except Exception as exc:  # the store failing must stop the run, not be ignored
            future.set_exception(exc)
        else:
            future.set_result(None)
