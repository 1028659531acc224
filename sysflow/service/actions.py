"""What the API does to runs and schedules: authorize, act through the existing mechanism, audit.

Approve, pause, resume and cancel write the same run-store controls as ``sysflow approve``,
``pause``, ``resume`` and ``cancel`` (:mod:`sysflow.cli.control`); the run's worker reads them as a
``sysflow run`` does. Reject is a cancel whose reason names who rejected and why. A start is checked
as ``sysflow validate`` checks (the same problems, file:line) before a worker starts it.

Every action, taken or refused, is one audit record naming the actor (``alice (token 1a2b...)``),
never the token. Four eyes: with the policy on, whoever started a run through the service may not
approve or reject its gates (the audit record of the start says who that was).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sysflow.errors import SysflowError
from sysflow.service.library import Kind, Library
from sysflow.service.roles import Action, allowed
from sysflow.service.tokens import Identity
from sysflow.service.worker import WorkerJob

if TYPE_CHECKING:
    from sysflow.audit.log import AuditLog
    from sysflow.service.config import ServiceConfig
    from sysflow.service.workers import Workers

__all__ = ["Conflict", "Forbidden", "Invalid", "NotFound", "Operations", "ServiceError", "StartRequest"]

START = "service.start"


class ServiceError(SysflowError):
    """An API action that cannot be done; ``status`` is its HTTP status."""

    status = 400

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class Forbidden(ServiceError):
    status = 403


class NotFound(ServiceError):
    status = 404


class Conflict(ServiceError):
    status = 409


class Invalid(ServiceError):
    status = 422


@dataclass(frozen=True, slots=True)
class StartRequest:
    """A run to start from stored inputs; ``simulate`` runs it on the simulator (``pace`` s a jump)."""

    workflow: str
    inventory: str
    simulate: bool = False
    seed: int = 1
    pace: float = 0.0
    start: datetime | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _name_of(actor: str) -> str:
    return actor.split(" (token ", 1)[0]


class Operations:
    """The service's actions on runs and schedules, each authorized and audited."""

    def __init__(self, config: ServiceConfig, audit: AuditLog, workers: Workers) -> None:
        self.config = config
        self.audit = audit
        self.workers = workers
        self.library = Library(config.library)

    def _record(self, who: Identity, run_id: str, action: str, detail: str, outcome: str) -> None:
        self.audit.append(run_id, action, at=_now(), who=who.actor, detail=detail, outcome=outcome)
        self.audit.flush()

    def authorize(self, who: Identity, action: Action, run_id: str = "", what: str = "") -> None:
        """``Forbidden`` (audited) unless ``who``'s role allows ``action``."""
        if not allowed(who.role, action):
            reason = f"role {who.role.value} may not {action.value}"
            self._record(who, run_id, f"service.{what or action.value}", "", f"refused: {reason}")
            raise Forbidden(reason)

    def _control(self, who: Identity, run_id: str, what: str, detail: str, call: object) -> str:
        from sysflow.cli.control import ControlError

        try:
            message = call()  # type: ignore[operator]
        except ControlError as exc:
            self._record(who, run_id, f"service.{what}", detail, f"refused: {exc}")
            raise (NotFound if exc.missing else Conflict)(str(exc)) from None
        self._record(who, run_id, f"service.{what}", detail, "ok")
        return str(message)

    # -- runs -------------------------------------------------------------------------------------

    async def start(self, who: Identity, req: StartRequest) -> str:
        """Validate the stored inputs as ``sysflow validate`` does, then start a worker; the run id."""
        self.authorize(who, Action.START, what="start")
        try:
            workflow = self.library.get(Kind.WORKFLOW, req.workflow)
            inventory = self.library.get(Kind.INVENTORY, req.inventory)
        except SysflowError as exc:
            raise NotFound(str(exc)) from None
        run_id = await asyncio.to_thread(self._checked_run_id, workflow.path, inventory.path)
        detail = (f"workflow {req.workflow} sha256 {workflow.digest}; inventory {req.inventory} sha256 "
                  f"{inventory.digest}" + ("; simulated" if req.simulate else ""))  # fmt: skip
        self._record(who, run_id, START, detail, "ok")
        job = WorkerJob(
            run_id=run_id, workflow=workflow.path, inventory=inventory.path, store=self.config.store,
            simulate=req.simulate, seed=req.seed, pace=req.pace, start=req.start, key=self.config.key,
            known_hosts=self.config.known_hosts,
        )  # fmt: skip
        await self.workers.wait_started(await self.workers.start(job))
        return run_id

    def _checked_run_id(self, workflow: object, inventory: object) -> str:
        from sysflow.cli.inputs import _problem_lines, load_inputs
        from sysflow.engine.stages import new_run_id
        from sysflow.planner.compile import compile_workflow

        try:
            wf, inv = load_inputs(workflow, inventory, None)  # type: ignore[arg-type]
            compile_workflow(wf, inv)
        except (SysflowError, OSError, ValueError) as exc:
            lines = _problem_lines(exc)
            raise Invalid(f"invalid, {len(lines)} problem(s)", lines) from None
        return new_run_id(wf, _now())

    def starter(self, run_id: str) -> str | None:
        """Who started ``run_id`` through the service (their name), from the audit log."""
        for rec in self.audit.query(run=run_id):
            if rec.action == START and rec.outcome == "ok":
                return _name_of(rec.who)
        return None

    def _four_eyes(self, who: Identity, run_id: str, what: str, comment: str) -> None:
        if self.config.four_eyes and self.starter(run_id) == who.name:
            reason = f"four eyes: {who.name} started run {run_id} and may not {what} its gates"
            self._record(who, run_id, f"service.{what}", comment, f"refused: {reason}")
            raise Forbidden(reason)

    def approve(self, who: Identity, run_id: str, wave: int | None, comment: str) -> str:
        from sysflow.cli.control import approve_run, run_views

        self.authorize(who, Action.APPROVE, run_id, "approve")
        self._four_eyes(who, run_id, "approve", comment)
        state = self.config.store

        def call() -> str:
            target = wave or run_views(state, run_id)[0].wave + 1
            return approve_run(state, run_id, target, who.actor)

        return self._control(who, run_id, "approve", comment, call)

    def reject(self, who: Identity, run_id: str, comment: str) -> str:
        from sysflow.cli.control import cancel_run

        self.authorize(who, Action.APPROVE, run_id, "reject")
        self._four_eyes(who, run_id, "reject", comment)
        reason = f"{who.actor}, rejected" + (f": {comment}" if comment else "")
        return self._control(
            who, run_id, "reject", comment, lambda: cancel_run(self.config.store, run_id, reason)
        )

    def pause(self, who: Identity, run_id: str) -> str:
        from sysflow.cli.control import pause_run

        self.authorize(who, Action.STEER, run_id, "pause")
        return self._control(
            who, run_id, "pause", "", lambda: pause_run(self.config.store, run_id, who.actor)
        )

    def resume(self, who: Identity, run_id: str) -> str:
        from sysflow.cli.control import resume_run

        self.authorize(who, Action.STEER, run_id, "resume")
        return self._control(
            who, run_id, "resume", "", lambda: resume_run(self.config.store, run_id, who.actor)
        )

    def cancel(self, who: Identity, run_id: str) -> str:
        from sysflow.cli.control import cancel_run

        self.authorize(who, Action.STEER, run_id, "cancel")
        return self._control(
            who, run_id, "cancel", "", lambda: cancel_run(self.config.store, run_id, who.actor)
        )

    # -- schedules --------------------------------------------------------------------------------

    def schedule(self, who: Identity, name: str, *, pause: bool) -> None:
        from sysflow.engine.store import RunStore
        from sysflow.errors import StoreError
        from sysflow.schedule.schedules import Schedules

        what = "schedule_pause" if pause else "schedule_resume"
        self.authorize(who, Action.STEER, what=what)
        with RunStore(self.config.store) as store:
            try:
                if pause:
                    Schedules(store).pause(name)
                else:
                    Schedules(store).resume(name, now=_now())
            except StoreError as exc:
                self._record(who, "", f"service.{what}", name, f"refused: {exc}")
                raise NotFound(str(exc)) from None
        self._record(who, "", f"service.{what}", name, "ok")
