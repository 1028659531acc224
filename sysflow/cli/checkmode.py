"""``sysflow run --check --diff``: ask each host what a run would change, and change nothing.

Each task that can tell (every module, and a shell task with its own ``check:``) runs its check on
its hosts instead of itself, through the same path as a run (pre-flight, host keys, become,
delegation, leases, the store): a check exits 0 when the host already is as asked, else it prints
what would change (a file's diff, packages' versions, a mode). A shell task without ``check:``
cannot be asked and is listed as not checked. Checks see the hosts as they are now: a task whose
outcome depends on an earlier task's change reports it as still to come (as Ansible's check mode
does). Windows, approvals and verification do not apply, since nothing changes, and every host is
asked even when others fail.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sysflow.cli.run import Echo, RunSetup, SSHOptions
    from sysflow.engine.result import OpRecord, RunResult
    from sysflow.model.inventory import Inventory
    from sysflow.model.task import Task
    from sysflow.model.workflow import MaintenanceWorkflow

__all__ = ["CHECK_MARK", "check_command", "check_lines", "check_workflow", "verdict"]

CHECK_MARK = "::sysflow check rc="  # the last line of a wrapped check: the check's own exit status


def check_workflow(workflow: MaintenanceWorkflow) -> tuple[MaintenanceWorkflow, list[str]]:
    """The workflow whose tasks run their checks (each reporting its verdict), and the ids of the
    tasks that cannot be checked."""
    from sysflow.model.windows import WindowsConfig
    from sysflow.model.workflow import RolloutSpec

    checkable = {t.id for t in workflow.tasks if t.check}
    tasks = [_check_task(t, checkable) for t in workflow.tasks if t.id in checkable]
    derived = workflow.model_copy(
        update={
            "name": f"{workflow.name}-check",
            "tasks": tasks,
            "rollout": RolloutSpec(max_failures="100%"),
            "verifications": {},
            "windows": WindowsConfig(),
            "notifications": [],
            "state_checks": [],
        }
    )
    return derived, [t.id for t in workflow.tasks if t.id not in checkable]


def _check_task(task: Task, checkable: set[str]) -> Task:
    from sysflow.model.task import Task

    assert task.check is not None
    # the check in a subshell (its `exit` ends only that), then its status for check_lines to read
    wrapped = f"( {task.check}\n)\necho {shlex.quote(CHECK_MARK)}$?\n"
    return Task(
        id=task.id,
        run=wrapped,
        description=f"check of {task.id}",
        targets=task.targets,
        depends_on=[d for d in task.depends_on if d in checkable],
        tags=task.tags,
        when=task.when,
        timeout=task.timeout,
        run_once=task.run_once,
        local=task.local and task.delegate_to is None,
        delegate_to=task.delegate_to,
        become=task.become,
        become_user=task.become_user,
        become_method=task.become_method,
    )


def verdict(record: OpRecord) -> tuple[str, list[str]]:
    """``ok``, ``would change`` or ``failed``, and the lines to show under it."""
    out = record.stdout.rstrip("\n").split("\n") if record.stdout else []
    last = out[-1] if out else ""
    if record.exit_status != 0 or not last.startswith(CHECK_MARK):
        reason = record.error or (record.stderr.strip().splitlines() or ["no verdict"])[-1]
        return "failed", [reason]
    body = out[:-1] + [f"stderr: {line}" for line in record.stderr.strip().splitlines()]
    return ("ok" if last == f"{CHECK_MARK}0" else "would change"), body


def check_lines(result: RunResult, inventory: Inventory, unchecked: list[str]) -> list[str]:
    """Per host and task what the check said, then the totals; nothing was changed."""
    from sysflow.cli.views import printable

    counts = {"ok": 0, "would change": 0, "failed": 0}
    lines: list[str] = []
    by_host: dict[str, list[OpRecord]] = {}
    for record in result.ops.values():
        by_host.setdefault(record.host, []).append(record)
    for host in (h.name for h in inventory):
        for record in by_host.get(host, []):
            if record.start is None:
                continue
            said, body = verdict(record)
            counts[said] += 1
            lines.append(f"{host} | {record.task} | {said}")
            lines.extend(f"  {printable(line)}" for line in body if said != "ok")
    if unchecked:
        lines.append(f"not checked (shell tasks without check:): {', '.join(unchecked)}")
    lines.append(
        f"check {result.run_id}: {counts['would change']} would change, {counts['ok']} ok, "
        f"{counts['failed']} failed; nothing was changed"
    )
    return lines


def check_command(
    workflow: MaintenanceWorkflow, inventory: Inventory, ssh: SSHOptions, setup: RunSetup, echo: Echo
) -> int:
    """Pre-flight, then every host's checks through the run path; 0 when every check could answer."""
    from dataclasses import replace

    from sysflow.cli.preflight import refuse_unless_ready, with_config_known_hosts
    from sysflow.cli.progress import ProgressMode
    from sysflow.cli.run import run_live

    derived, unchecked = check_workflow(workflow)
    if not derived.tasks:
        echo(
            f"nothing to check: no task of {workflow.name} is a module or has check: ({', '.join(unchecked)})"
        )
        return 0
    ssh = with_config_known_hosts(ssh, inventory, inventory.hosts)
    refused = refuse_unless_ready(derived, inventory, ssh, setup.audit, echo)
    if refused is not None:
        return refused
    quiet = replace(setup, mode=ProgressMode.QUIET if setup.mode is not ProgressMode.JSON else setup.mode)
    result = run_live(derived, inventory, ssh, replace(quiet, approve_all=True))
    for line in check_lines(result, inventory, unchecked):
        echo(line)
    return 0 if all(verdict(r)[0] != "failed" for r in result.ops.values() if r.start is not None) else 1
