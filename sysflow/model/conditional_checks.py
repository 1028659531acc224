"""Checks of templates, conditions and branches before a run, each located at its ``file:line:col``.

Without an inventory (:func:`conditional_problems`, part of ``MaintenanceWorkflow.problems``):
``on_failure`` names that are not tasks, branch tasks that others depend on, ``results.X`` where no
task registers ``X``, ``facts.X`` that no fact gatherer provides, ``host.X`` that is not a host field.
With an inventory (:func:`host_var_problems`, part of ``compile_workflow``): every ``vars.X`` a task
reads must be defined for every host the task targets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Set
from typing import TYPE_CHECKING, Any

from sysflow.errors import Problem
from sysflow.model.conditions import CONTEXT_ROOTS, Reference, parse_condition
from sysflow.model.templates import TemplateError, template_references

if TYPE_CHECKING:
    from sysflow.model.workflow import MaintenanceWorkflow, Task

__all__ = [
    "FACT_NAMES",
    "HOST_FIELDS",
    "branch_tasks",
    "conditional_note",
    "conditional_problems",
    "host_var_problems",
    "task_references",
]

FACT_NAMES = frozenset(
    {
        "os_family",
        "distribution",
        "distribution_version",
        "distribution_major_version",
        "os_release",
        "kernel",
        "pkg_mgr",
        "service_mgr",
        "processor_count",
        "memtotal_mb",
        "memfree_mb",
        "disk_total_mb",
        "disk_free_mb",
    }
)
HOST_FIELDS = frozenset({"name", "groups", "group", "datacenter", "segment", "wave"})
_TEMPLATED = ("run", "rollback", "check")


def branch_tasks(wf: MaintenanceWorkflow) -> set[str]:
    """Tasks named in some ``on_failure``: they run only as branches, never in the normal chain."""
    return {name for t in wf.tasks for name in t.on_failure}


def task_references(task: Task) -> Iterator[tuple[str, Reference]]:
    """(field, reference) for every namespace key the task's templates and conditions read."""
    for field in _TEMPLATED:
        source = getattr(task, field)
        if source:
            for ref in template_references(source):
                yield field, ref
    for field, names in (("when", CONTEXT_ROOTS), ("until", CONTEXT_ROOTS | {"result"})):
        source = getattr(task, field)
        if source:
            for ref in parse_condition(source, names).references():
                yield field, ref


def conditional_problems(wf: MaintenanceWorkflow) -> list[Problem]:
    """Every problem of branches and references that can be seen without an inventory."""
    return [*_branch_problems(wf), *_reference_problems(wf), *_probe_problems(wf)]


def _probe_problems(wf: MaintenanceWorkflow) -> Iterator[Problem]:
    """Verification probe commands are templates too: they must parse and name known namespaces."""
    for name, spec in wf.verifications.items():
        for probe, cmd in spec.commands.items():
            try:
                template_references(cmd.command)
            except TemplateError as exc:
                where = wf.locate(f"verifications.{name}.commands.{probe}")
                yield Problem(f"verification {name!r}, probe {probe!r}: {exc}", where)


def _branch_problems(wf: MaintenanceWorkflow) -> Iterator[Problem]:
    known = {t.id: t for t in wf.tasks}
    branches = branch_tasks(wf)
    for i, task in enumerate(wf.tasks):
        for j, name in enumerate(task.on_failure):
            path = f"tasks[{i}].on_failure[{j}]"
            if name not in known:
                yield Problem(f"task {task.id!r}: on_failure names unknown task {name!r}", wf.locate(path))
            elif name == task.id:
                yield Problem(f"task {task.id!r}: on_failure names the task itself", wf.locate(path))
            elif known[name].run_once:
                yield Problem(f"task {task.id!r}: on_failure task {name!r} is run_once", wf.locate(path))
        for j, dep in enumerate(task.depends_on):
            if dep in branches and task.id not in branches:
                yield Problem(
                    f"task {task.id!r} depends on {dep!r}, which only runs as an on_failure branch",
                    wf.locate(f"tasks[{i}].depends_on[{j}]"),
                )


def _reference_problems(wf: MaintenanceWorkflow) -> Iterator[Problem]:
    registered = {t.register_as for t in wf.tasks if t.register_as}
    checks: Mapping[str, tuple[Set[str], str]] = {
        "results": (registered, "no task registers it"),
        "facts": (FACT_NAMES, f"known facts: {', '.join(sorted(FACT_NAMES))}"),
        "host": (HOST_FIELDS, f"host fields: {', '.join(sorted(HOST_FIELDS))}"),
    }
    for i, task in enumerate(wf.tasks):
        seen: set[tuple[str, str, str]] = set()
        for field, ref in task_references(task):
            known = checks.get(ref.root)
            if known is None or ref.key is None or ref.key in known[0]:
                continue
            if (field, ref.root, ref.key) not in seen:
                seen.add((field, ref.root, ref.key))
                yield Problem(
                    f"task {task.id!r}: {ref.root}.{ref.key} is undefined ({known[1]})",
                    wf.locate(f"tasks[{i}].{field}"),
                )


def host_var_problems(
    wf: MaintenanceWorkflow,
    targets: Mapping[str, Set[str]],
    host_vars: Callable[[str], Mapping[str, Any]],
) -> Iterator[Problem]:
    """``vars.X`` a task reads that is undefined on some host it targets (``targets``: task -> hosts)."""
    for i, task in enumerate(wf.tasks):
        wanted: dict[str, str] = {}
        for field, ref in task_references(task):
            if ref.root == "vars" and ref.key is not None:
                wanted.setdefault(ref.key, field)
        if not wanted:
            continue
        for key, field in wanted.items():
            missing = sorted(h for h in targets.get(task.id, ()) if key not in host_vars(h))
            if missing:
                shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
                yield Problem(
                    f"task {task.id!r}: vars.{key} is undefined on host {shown}",
                    wf.locate(f"tasks[{i}].{field}"),
                )


def conditional_note(wf: MaintenanceWorkflow) -> str | None:
    """The forecast's note on tasks decided at run time (their time is reserved as if they ran)."""
    decided = [t.id for t in wf.tasks if t.when or t.until]
    branches = sorted(branch_tasks(wf))
    parts = []
    if decided:
        parts.append(f"conditional tasks ({', '.join(decided)}) are planned as if they run")
    if branches:
        parts.append(f"on_failure branches ({', '.join(branches)}) are not planned")
    return "; ".join(parts) + " (decided at run time)" if parts else None
