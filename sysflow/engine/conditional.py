"""Conditional, state-aware operations: templates, ``when``, ``register``, ``until`` and ``on_failure``.

A run whose workflow uses any of these gets a :class:`Conditional` (see :meth:`Conditional.wanted`).
For each operation, :meth:`Conditional.prepare` builds the context (``host``, ``vars`` from the
inventory, ``facts`` gathered on demand, ``results`` registered earlier on the same host), evaluates
``when`` (false: the operation is skipped with the reason) and renders the command (the rendered
command is sent; its redacted form is recorded). A template or condition that cannot be evaluated
makes the operation fail with a reason that names the task and the host.

:meth:`Conditional.execute` then runs it: ``until`` repeats the command (``retries`` more times,
``delay`` apart, so bounded) until its condition holds; a failure with ``on_failure`` runs the named
branch tasks on the host in order (each recorded as its own operation ``<branch>@<host>``, with its
own ``when`` and ``register``), then the failed task once more, whose result decides: the host
continues, or fails with what the branch found in the record's reason.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sysflow.clock import Clock
from sysflow.engine.events import EventKind
from sysflow.engine.executor import OpRunner
from sysflow.engine.facts import FactCache
from sysflow.engine.result import OpRecord
from sysflow.engine.states import OpState
from sysflow.engine.tracker import RunTracker
from sysflow.errors import TransportError
from sysflow.model.conditional_checks import task_references
from sysflow.model.conditions import CONTEXT_ROOTS, ConditionError, parse_condition
from sysflow.model.templates import (
    SecretMasker,
    TemplateError,
    is_secret_name,
    is_template,
    render,
    secret_value,
)
from sysflow.model.workflow import MaintenanceWorkflow, Task
from sysflow.planner.graph import Operation, op_id, template_host
from sysflow.transport import CommandResult, Transport

__all__ = ["CONDITION_FALSE", "Conditional", "Prepared", "RenderingTransport"]

CONDITION_FALSE = "condition false: "  # the reason of an operation skipped by its `when`
_DIAGNOSTIC_CHARS = 300  # characters of each branch task's output kept in a failed record's reason


@dataclass(frozen=True, slots=True)
class Prepared:
    """An operation ready to run (``command`` sent, ``recorded`` stored), or why it does not run."""

    command: str
    recorded: str
    secrets: tuple[str, ...] = ()
    skip: str | None = None  # the condition is false: skipped with this reason
    error: str | None = None  # the template or condition could not be evaluated


OnStart = Callable[[int], None]


class Conditional:
    """Per-run state of conditional execution: facts, registered results, and the branch runner."""

    def __init__(
        self,
        workflow: MaintenanceWorkflow,
        host_vars: Callable[[str], Mapping[str, Any]],
        transport: Transport,
        clock: Clock,
        *,
        secret_names: Collection[str] = (),
    ) -> None:
        self.tasks = {t.id: t for t in workflow.tasks}
        # names that are secret beyond the name rule: the workflow's `secrets:`, the inventory's `secrets:` maps
        self.secret_names = frozenset(workflow.secrets) | frozenset(secret_names)
        self.facts = FactCache(transport, clock)
        self.clock = clock
        self.results: dict[str, dict[str, dict[str, Any]]] = {}
        self._host_vars = host_vars
        self._vars: dict[str, Mapping[str, Any]] = {}
        self._needs_facts = {
            t.id: any(ref.root == "facts" for _, ref in task_references(t)) for t in workflow.tasks
        }
        self.secrets = SecretMasker()  # secret values of the hosts seen so far (masked in every output)

    @staticmethod
    def wanted(workflow: MaintenanceWorkflow) -> bool:
        """Whether ``workflow`` uses templates, conditions, registered results or branches."""
        probes = (p.command for v in workflow.verifications.values() for p in v.commands.values())
        return (
            bool(workflow.secrets)
            or any(_conditional(t) for t in workflow.tasks)
            or any(is_template(c) for c in probes)
        )

    # -- context ----------------------------------------------------------------------------------

    def host_vars(self, host: str) -> Mapping[str, Any]:
        """The host's variables; their secret values join those masked in every record of the run."""
        if host not in self._vars:
            values = self._vars[host] = {} if host.startswith("@") else self._host_vars(host)
            for name, value in values.items():
                text = secret_value(value) if is_secret_name(str(name), self.secret_names) else None
                if text is not None:
                    self.secrets.add(text)
        return self._vars[host]

    async def context(self, op: Operation, *, facts: bool) -> dict[str, Any]:
        """What templates and conditions of ``op`` read."""
        host = template_host(op)
        gathered = await self.facts.get(op.host) if facts and not op.host.startswith("@") else {}
        return {
            "host": host,
            "vars": self.host_vars(op.host),
            "facts": gathered,
            "results": self.results.get(op.host, {}),
        }

    async def prepare(self, op: Operation, text: str | None = None) -> Prepared:
        """Evaluate ``when`` and render the command (or ``text``, e.g. a rollback command)."""
        task = self.tasks.get(op.task.removeprefix("rollback:"))
        source = op.command if text is None else text
        where = f"task {op.task!r} on host {op.host}"
        try:
            ctx = await self.context(op, facts=task is not None and self._needs_facts[task.id])
            when = task.when if text is None and task is not None else None
            if when and not parse_condition(when).evaluate(ctx):
                return Prepared(source, source, skip=f"{CONDITION_FALSE}{when}")
            rendered = render(source, ctx, secrets=self.secret_names)
        except (TemplateError, ConditionError) as exc:
            return Prepared(source, source, error=f"{where}: {exc}{self._gather_note(op.host)}")
        self.secrets.update(rendered.secrets)
        return Prepared(rendered.command, rendered.redacted, rendered.secrets)

    def _gather_note(self, host: str) -> str:
        """Why some facts are missing, when their probes failed on ``host``."""
        known = self.facts.known(host) or {}
        errors = known.get("gather_errors") or {}
        if not errors:
            return ""
        return " (fact probes failed: " + "; ".join(f"{k}: {v}" for k, v in errors.items()) + ")"

    def redact(self, record: OpRecord, prepared: Prepared) -> OpRecord:
        """The record as stored: the redacted command, secret values masked in its output."""
        hidden = self.secrets
        if not hidden and record.command == prepared.recorded:
            return record
        return replace(
            record,
            command=prepared.recorded,
            stdout=hidden.mask(record.stdout),
            stderr=hidden.mask(record.stderr),
            error=hidden.mask(record.error) if record.error else record.error,
            reason=hidden.mask(record.reason),
        )

    def register(self, host: str, task_id: str, record: OpRecord | None) -> None:
        """Keep the task's result for later tasks of the host, if the task registers it."""
        task = self.tasks.get(task_id)
        if task is None or not task.register_as:
            return
        self.results.setdefault(host, {})[task.register_as] = _result(record)

    # -- running ----------------------------------------------------------------------------------

    async def execute(
        self, runner: OpRunner, op: Operation, prepared: Prepared, on_start: OnStart, tracker: RunTracker
    ) -> OpRecord:
        """Run ``op`` with its ``until`` loop and, if it fails, its ``on_failure`` branch."""
        record = await self._attempts(runner, op, prepared, on_start)
        task = self.tasks.get(op.task)
        if record.state is OpState.SUCCEEDED or task is None or not task.on_failure:
            return record
        return await self._branch(runner, op, task, prepared, record, on_start, tracker)

    async def _attempts(
        self, runner: OpRunner, op: Operation, prepared: Prepared, on_start: OnStart
    ) -> OpRecord:
        task = self.tasks.get(op.task)
        if task is None or not task.until:
            record = await runner.run_op(op, prepared.command, on_start)
            self.register(op.host, op.task, record)
            return record
        return await self._until(runner, op, task, task.until, prepared, on_start)

    async def _until(
        self, runner: OpRunner, op: Operation, task: Task, until: str, prepared: Prepared, on_start: OnStart
    ) -> OpRecord:
        """Repeat the command until ``until`` holds: at most ``retries + 1`` attempts, ``delay`` apart."""
        condition = parse_condition(until, CONTEXT_ROOTS | {"result"})
        once = replace(op, retries=0)
        attempts = task.retries + 1
        for n in range(1, attempts + 1):
            record = await runner.run_op(once, prepared.command, _numbered(on_start, n))
            self.register(op.host, op.task, record)
            try:
                ctx = await self.context(op, facts=self._needs_facts[task.id])
                holds = condition.evaluate({**ctx, "result": _result(record)})
            except ConditionError as exc:
                return replace(record, state=OpState.FAILED, error=f"until: {exc}", attempts=n)
            if holds:
                return replace(record, state=OpState.SUCCEEDED, error=None, attempts=n)
            if n < attempts:
                await self.clock.sleep(task.delay)
        return replace(
            record,
            state=OpState.FAILED,
            error=f"until {until!r} did not hold after {attempts} attempt(s)",
            attempts=attempts,
        )

    async def _branch(
        self,
        runner: OpRunner,
        op: Operation,
        task: Task,
        prepared: Prepared,
        failed: OpRecord,
        on_start: OnStart,
        tracker: RunTracker,
    ) -> OpRecord:
        tracker.emit(
            EventKind.OP_PROGRESS,
            self.secrets.mask(f"{task.id} failed ({failed.error}); on_failure: {', '.join(task.on_failure)}"),
            host=op.host,
            task=op.task,
            wave=op.wave,
            step="on_failure",
            branch=list(task.on_failure),
        )
        found = [await self._branch_task(runner, op, name, tracker) for name in task.on_failure]
        again = await self._attempts(runner, op, prepared, lambda a: on_start(failed.attempts + a))
        again = replace(again, attempts=failed.attempts + again.attempts)
        names = ", ".join(task.on_failure)
        if again.state is OpState.SUCCEEDED:
            return replace(again, reason=f"recovered after on_failure: {names}")
        return replace(again, reason=f"still failing after on_failure: {names}; " + "; ".join(found))

    async def _branch_task(self, runner: OpRunner, op: Operation, name: str, tracker: RunTracker) -> str:
        """Run one branch task on the failed operation's host; a one-line summary of what it found."""
        branch = self.tasks[name]
        bop = replace(
            op,
            id=op_id(op.host, name),
            task=name,
            command=branch.run,
            timeout=branch.timeout,
            retries=branch.retries,
            rollback=None,
            check=None,
            local=branch.local,
        )
        prepared = await self.prepare(bop)
        tracker.add_op(bop.id, bop.host, name, bop.wave, prepared.recorded)
        if prepared.skip is not None:
            tracker.skip([bop.id], prepared.skip)
            self.register(bop.host, name, None)
            return f"{name}: skipped"
        if prepared.error is not None:
            record = OpRecord(bop.id, bop.host, name, bop.wave, OpState.FAILED, error=prepared.error)
        else:
            tracker.will_start(bop.id, prepared.recorded)
            record = await self._attempts(
                runner, bop, prepared, lambda a: tracker.started(bop.id, prepared.recorded, a)
            )
            record = self.redact(record, prepared)
        tracker.finished(record)
        return f"{name}: {_summary(record)}"


class RenderingTransport:
    """A transport that renders templated commands for their host first (verification probes), and
    masks the run's secret values in what they print (so no report, event or record holds them).

    Probe commands see ``host``, ``vars``, ``facts`` (gathered on demand) and the host's registered
    ``results``; a template that cannot be rendered is a :class:`TransportError` for that probe,
    which the verification layer records as the probe's error.
    """

    def __init__(self, inner: Transport, conditional: Conditional) -> None:
        self.inner = inner
        self.conditional = conditional

    async def run(self, host: str, command: str, **kw: Any) -> CommandResult:
        if not is_template(command):
            return self._masked(host, await self.inner.run(host, command, **kw), command)
        cond = self.conditional
        ctx = {
            "host": {"name": host},
            "vars": cond.host_vars(host),
            "facts": await cond.facts.get(host) if "facts" in command else {},
            "results": cond.results.get(host, {}),
        }
        try:
            rendered = render(command, ctx, secrets=cond.secret_names)
        except TemplateError as exc:
            raise TransportError(f"probe template: {exc}", host=host) from None
        cond.secrets.update(rendered.secrets)
        return self._masked(host, await self.inner.run(host, rendered.command, **kw), rendered.redacted)

    def _masked(self, host: str, result: CommandResult, recorded: str) -> CommandResult:
        """The probe's result as verification sees (and reports, audits, stores) it: the recorded
        command, every known secret value of the run (the host's included) masked in its output."""
        self.conditional.host_vars(host)  # the host's secrets are known before its first task runs
        hidden = self.conditional.secrets
        if not hidden and result.command == recorded:
            return result
        return replace(
            result, command=recorded, stdout=hidden.mask(result.stdout), stderr=hidden.mask(result.stderr)
        )

    async def close(self) -> None:
        await self.inner.close()


def _numbered(on_start: OnStart, n: int) -> OnStart:
    """An ``on_start`` that reports attempt ``n`` (the runner's own count restarts at 1)."""

    def started(_attempt: int) -> None:
        on_start(n)

    return started


def _conditional(task: Task) -> bool:
    templated = any(is_template(x) for x in (task.run, task.rollback, task.check) if x)
    return templated or bool(task.when or task.until or task.register_as or task.on_failure)


def _result(record: OpRecord | None) -> dict[str, Any]:
    if record is None:
        return {"stdout": "", "stderr": "", "rc": None, "ok": False, "failed": False, "skipped": True}
    ok = record.state is OpState.SUCCEEDED
    return {
        "stdout": record.stdout,
        "stderr": record.stderr,
        "rc": record.exit_status,
        "ok": ok,
        "failed": not ok,
        "skipped": False,
    }


def _summary(record: OpRecord) -> str:
    state = "ok" if record.state is OpState.SUCCEEDED else (record.error or "failed")
    output = (record.stdout or record.stderr).strip()[:_DIAGNOSTIC_CHARS]
    return f"{state}" + (f" — {output}" if output else "")
