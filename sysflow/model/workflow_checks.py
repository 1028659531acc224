"""Whole-workflow checks that need no inventory: duplicate ids, unknown task names, cycles, pools.

Each check returns :class:`~sysflow.errors.Problem` values located through
``MaintenanceWorkflow.locate`` (``file:line:col`` for loaded files, the field path otherwise), so a
caller can gather every problem before raising once. ``task_order`` gives the stable topological order
the compiler uses.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from sysflow.errors import Problem
from sysflow.model.parallelism import PoolSpec
from sysflow.model.workflow import RolloutStrategy

if TYPE_CHECKING:
    from sysflow.model.workflow import MaintenanceWorkflow

__all__ = ["find_cycles", "task_order", "workflow_problems"]


def workflow_problems(wf: MaintenanceWorkflow) -> list[Problem]:
    """Every problem of ``wf`` that can be seen without an inventory, in file order."""
    checks = (
        _duplicate_ids,
        _unknown_dependencies,
        _cycles,
        _rollout_names,
        _verification_names,
        _resources,
        _rate_limit_tasks,
        _conditional,
    )
    return [p for check in checks for p in check(wf)]


def _conditional(wf: MaintenanceWorkflow) -> list[Problem]:
    from sysflow.model.conditional_checks import conditional_problems

    return conditional_problems(wf)


def _problem(wf: MaintenanceWorkflow, message: str, path: str) -> Problem:
    return Problem(message, wf.locate(path))


def _duplicate_ids(wf: MaintenanceWorkflow) -> Iterator[Problem]:
    seen: dict[str, int] = {}
    for i, task in enumerate(wf.tasks):
        if task.id in seen:
            first = wf.locate(f"tasks[{seen[task.id]}].id")
            yield _problem(wf, f"duplicate task id {task.id!r} (first defined at {first})", f"tasks[{i}].id")
        else:
            seen[task.id] = i


def _unknown_dependencies(wf: MaintenanceWorkflow) -> Iterator[Problem]:
    known = {t.id for t in wf.tasks}
    for i, task in enumerate(wf.tasks):
        for j, dep in enumerate(task.depends_on):
            if dep not in known:
                path = f"tasks[{i}].depends_on[{j}]"
                yield _problem(wf, f"task {task.id!r} depends on unknown task {dep!r}", path)


def find_cycles(deps: dict[str, list[str]]) -> list[list[str]]:
    """Dependency cycles of a task -> depends_on map, each as ``[a, b, ..., a]``, each reported once."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    cycles: list[list[str]] = []
    for root in deps:
        if root in state:
            continue
        stack: list[tuple[str, Iterator[str]]] = [(root, iter(deps[root]))]
        state[root] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif child not in deps or state.get(child) == 2:
                continue
            elif state.get(child) == 1:
                trail = [n for n, _ in stack]
                cycles.append([*trail[trail.index(child) :], child])
            else:
                state[child] = 1
                stack.append((child, iter(deps[child])))
    return cycles


def _cycles(wf: MaintenanceWorkflow) -> Iterator[Problem]:
    deps = _deps(wf)
    index = {t.id: i for i, t in reversed(list(enumerate(wf.tasks)))}
    for cycle in find_cycles(deps):
        head = cycle[0]
        text = " -> ".join(cycle)
        yield _problem(wf, f"dependency cycle: {text}", f"tasks[{index[head]}].depends_on")


def _deps(wf: MaintenanceWorkflow) -> dict[str, list[str]]:
    deps: dict[str, list[str]] = {}
    for task in wf.tasks:
        deps.setdefault(task.id, []).extend(task.depends_on)
    return deps


def task_order(wf: MaintenanceWorkflow) -> list[str]:
    """Task ids in a topological order that keeps declaration order where dependencies allow.

    Unknown dependencies are ignored and tasks caught in a cycle go last (both are reported by
    :func:`workflow_problems`).
    """
    deps = _deps(wf)
    done: dict[str, None] = {}
    pending = list(deps)
    progress = True
    while pending and progress:
        progress = False
        for tid in list(pending):
            if all(d in done or d not in deps for d in deps[tid]):
                done[tid] = None
                pending.remove(tid)
                progress = True
                break
    return [*done, *pending]


def _rollout_names(wf: MaintenanceWorkflow) -> Iterator[Problem]:
    known = {t.id for t in wf.tasks}
    rollout = wf.rollout
    for j, name in enumerate(rollout.verification_tasks):
        if name not in known:
            yield _problem(wf, f"unknown verification task {name!r}", f"rollout.verification_tasks[{j}]")
    if rollout.cutover_task is not None and rollout.cutover_task not in known:
        yield _problem(wf, f"unknown cutover task {rollout.cutover_task!r}", "rollout.cutover_task")
    if rollout.strategy is RolloutStrategy.BLUE_GREEN:
        for side in ("blue", "green"):
            if not getattr(rollout, side):
                yield _problem(wf, f"blue_green rollout needs a {side!r} set", "rollout")
    elif rollout.strategy is not RolloutStrategy.WAVES and rollout.groups is not None:
        yield _problem(
            wf, f"'groups' waves are for the waves strategy, not {rollout.strategy}", "rollout.groups"
        )


def _verification_names(wf: MaintenanceWorkflow) -> Iterator[Problem]:
    known = {t.id for t in wf.tasks}
    for name, spec in wf.verifications.items():
        for key in ("before_tasks", "after_tasks"):
            for j, task in enumerate(getattr(spec, key)):
                if task not in known:
                    path = f"verifications.{name}.{key}[{j}]"
                    yield _problem(wf, f"verification {name!r} names unknown task {task!r}", path)
        for probe in spec.comparisons:
            if probe not in spec.commands:
                path = f"verifications.{name}.comparisons.{probe}"
                yield _problem(wf, f"comparison {probe!r} has no probe command of that name", path)


def _resources(wf: MaintenanceWorkflow) -> Iterator[Problem]:
    pools: dict[str, PoolSpec] = {}
    for spec in wf.parallelism.pools:
        pools.setdefault(spec.name, spec)
    seen: set[str] = set()
    for k, spec in enumerate(wf.parallelism.pools):
        if spec.name in seen:
            yield _problem(wf, f"duplicate pool name {spec.name!r}", f"parallelism.pools[{k}].name")
        seen.add(spec.name)
    for i, task in enumerate(wf.tasks):
        for name, demand in task.resources.items():
            path = f"tasks[{i}].resources.{name}"
            pool = pools.get(name)
            if pool is None:
                yield _problem(wf, f"task {task.id!r} demands unknown pool {name!r}", path)
            elif demand > pool.capacity:
                msg = f"task {task.id!r} demands {demand:g} of pool {name!r}, above its capacity {pool.capacity:g}"
                yield _problem(wf, msg, path)


def _rate_limit_tasks(wf: MaintenanceWorkflow) -> Iterator[Problem]:
    known = {t.id for t in wf.tasks}
    for k, limit in enumerate(wf.parallelism.rate_limits):
        for j, name in enumerate(limit.tasks or []):
            if name not in known:
                path = f"parallelism.rate_limits[{k}].tasks[{j}]"
                yield _problem(wf, f"rate limit {limit.name!r} names unknown task {name!r}", path)
