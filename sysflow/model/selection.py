"""Narrowing a run to a subset: ``--limit`` hosts, ``--tags``/``--skip-tags``, ``--start-at-task``,
extra vars and a lower ``--forks``; pure functions from (workflow, inventory) to narrowed copies.

Everything here happens before planning, so the planner only ever sees the narrowed inputs:

- a limit keeps the selected hosts (and every group, for windows and limits); a task still runs only
  on hosts its own ``targets`` select in the *full* inventory (subscripts like ``web[0]`` keep their
  meaning), so a limit never adds a host to a task. Rollout batches are cut from the limited set,
  as Ansible's ``serial`` is with ``--limit``.
- a dropped task (tags, start-at) keeps the order it carried: its dependents inherit its
  ``depends_on``, transitively.
- extra vars are laid over every host's variables, above ``host_vars/`` (the highest precedence).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sysflow.errors import InventoryError, Problem, WorkflowError
from sysflow.model.inventory import Group, Host, Inventory
from sysflow.model.workflow import MaintenanceWorkflow, Task

__all__ = [
    "ALWAYS",
    "NEVER",
    "TagSelection",
    "dependency_order",
    "fit_rollout",
    "limit_hosts",
    "limited_inventory",
    "lower_parallelism",
    "pinned_targets",
    "select_tasks",
    "with_extra_vars",
]

ALWAYS = "always"  # runs unless skipped by name
NEVER = "never"  # runs only when one of its tags is asked for
SPECIAL_TAGS = frozenset({"all", "tagged", "untagged", ALWAYS, NEVER})


def limit_hosts(inventory: Inventory, patterns: Sequence[str]) -> list[str]:
    """Hosts matching any of ``patterns`` (Ansible patterns), in inventory order; a pattern that
    matches no host is an error naming it."""
    empty = [p for p in patterns if not inventory.select(p)]
    if empty or not patterns:
        names = ", ".join(repr(p) for p in empty) or "(empty)"
        raise InventoryError([Problem(f"--limit {names} matches no host of the inventory")])
    return inventory.select(list(patterns))


def limited_inventory(inventory: Inventory, hosts: Iterable[str]) -> Inventory:
    """A copy of ``inventory`` with only ``hosts`` (groups, their vars and nesting kept)."""
    keep = set(hosts)
    return Inventory(
        hosts={n: Host(name=n, vars=dict(h.vars)) for n, h in inventory.hosts.items() if n in keep},
        groups={
            n: Group(name=n, hosts=[h for h in g.hosts if h in keep], children=list(g.children), vars=g.vars)
            for n, g in inventory.groups.items()
        },
        vars=inventory.vars,
        ungrouped_vars=inventory.ungrouped_vars,
        group_vars_dir=inventory.group_vars_dir,
        host_vars_dir={n: v for n, v in inventory.host_vars_dir.items() if n in keep},
        source=inventory.source,
    )


def with_extra_vars(inventory: Inventory, extra: Mapping[str, Any]) -> Inventory:
    """A copy whose every host sees ``extra`` over its own variables (Ansible's ``-e``)."""
    if not extra:
        return inventory
    narrowed = limited_inventory(inventory, inventory.hosts)
    for name in narrowed.hosts:
        narrowed.host_vars_dir[name] = {**narrowed.host_vars_dir.get(name, {}), **extra}
    return narrowed


def pinned_targets(
    workflow: MaintenanceWorkflow, inventory: Inventory, hosts: Iterable[str]
) -> MaintenanceWorkflow:
    """Tasks as the limit leaves them: one that targets none of ``hosts`` is dropped (its order
    kept), one with subscripts (``web[0]``) gets the limited hosts it selects in the full
    ``inventory`` (evaluated on the limited set, a subscript could select others)."""
    keep = set(hosts)
    tasks: list[Task] = []
    skipped: set[str] = set()
    for t in workflow.tasks:
        chosen = [h for h in inventory.select(t.targets) if h in keep]
        if not chosen and not t.local and not t.run_once:
            skipped.add(t.id)
        pinned = chosen and any("[" in p for p in t.targets)
        tasks.append(t.model_copy(update={"targets": chosen}) if pinned else t)
    skipped -= _branches_of(workflow, skipped)
    empty = "the limit leaves no task with a host to run on"
    return _drop(_with_tasks(workflow, tasks), skipped, empty)


@dataclass(frozen=True)
class TagSelection:
    """``--tags`` / ``--skip-tags`` (Ansible semantics, with ``all``, ``tagged``, ``untagged``,
    ``always`` and ``never``), and ``--start-at-task``."""

    tags: frozenset[str] = frozenset()
    skip_tags: frozenset[str] = frozenset()
    start_at: str | None = None
    warnings: list[str] = field(default_factory=list)

    def wants(self, task: Task) -> bool:
        """Whether ``task`` runs under these tags."""
        own = set(task.tags)
        if (
            own & self.skip_tags
            or ("tagged" in self.skip_tags and own)
            or ("untagged" in self.skip_tags and not own)
        ):
            return False
        if ALWAYS in own and ALWAYS not in self.skip_tags:
            return True
        asked = self.tags or frozenset({"all"})
        if NEVER in own:
            return bool(own & asked - {"all", "tagged"})
        return bool(
            own & asked or "all" in asked or ("tagged" in asked and own) or ("untagged" in asked and not own)
        )


def dependency_order(workflow: MaintenanceWorkflow) -> list[str]:
    """Task ids in dependency order, ties in file order (what ``--start-at-task`` counts from)."""
    deps = {t.id: list(t.depends_on) for t in workflow.tasks}
    done: list[str] = []
    placed: set[str] = set()
    while len(done) < len(deps):
        progress = False
        for tid, before in deps.items():
            if tid not in placed and all(d in placed or d not in deps for d in before):
                done.append(tid)
                placed.add(tid)
                progress = True
        if not progress:  # a cycle: validation reports it; keep the rest in file order
            done.extend(t for t in deps if t not in placed)
            break
    return done


def select_tasks(workflow: MaintenanceWorkflow, selection: TagSelection) -> MaintenanceWorkflow:
    """The workflow with only the chosen tasks; order through dropped tasks is kept. Unknown
    ``--start-at-task`` is an error listing the task ids; unknown tags are warnings (appended
    to ``selection.warnings``) listing the known tags."""
    ids = [t.id for t in workflow.tasks]
    skipped: set[str] = set()
    if selection.start_at is not None:
        order = dependency_order(workflow)
        if selection.start_at not in order:
            raise WorkflowError(
                [Problem(f"--start-at-task {selection.start_at!r}: no such task; tasks: {', '.join(ids)}")]
            )
        skipped.update(order[: order.index(selection.start_at)])
    known = {tag for t in workflow.tasks for tag in t.tags}
    unknown = sorted((selection.tags | selection.skip_tags) - known - SPECIAL_TAGS)
    if unknown:
        listed = ", ".join(sorted(known)) or "none"
        selection.warnings.append(f"warning: no task has tag(s) {', '.join(unknown)}; known tags: {listed}")
    skipped.update(t.id for t in workflow.tasks if not selection.wants(t))
    skipped -= _branches_of(workflow, skipped)
    empty = "the tags / --start-at-task given leave no task to run"
    return _drop(
        workflow, skipped, "; ".join([empty, *(w.removeprefix("warning: ") for w in selection.warnings)])
    )


def _branches_of(workflow: MaintenanceWorkflow, skipped: set[str]) -> set[str]:
    """Tasks named in ``on_failure`` of a kept task: they go where their task goes."""
    return {b for t in workflow.tasks if t.id not in skipped for b in t.on_failure}


def _drop(workflow: MaintenanceWorkflow, skipped: set[str], empty: str) -> MaintenanceWorkflow:
    by_id = {t.id: t for t in workflow.tasks}

    def inherited(tid: str, seen: set[str]) -> list[str]:
        if tid not in skipped:
            return [tid]
        if tid in seen or tid not in by_id:
            return []
        seen.add(tid)
        return [d for dep in by_id[tid].depends_on for d in inherited(dep, seen)]

    tasks = []
    for t in workflow.tasks:
        if t.id in skipped:
            continue
        deps = list(dict.fromkeys(d for dep in t.depends_on for d in inherited(dep, set())))
        tasks.append(t if deps == t.depends_on else t.model_copy(update={"depends_on": deps}))
    if not tasks:
        raise WorkflowError([Problem(empty)])
    return _with_tasks(workflow, tasks)


def fit_rollout(
    workflow: MaintenanceWorkflow, waves: int, hosts: int
) -> tuple[MaintenanceWorkflow, list[str]]:
    """The rollout fitted to a limited set of ``waves`` and ``hosts``: approvals of waves that no
    longer exist dropped, failure counts above ``hosts`` lowered to it; what changed, as warnings."""
    rollout, notes = workflow.rollout, []
    update: dict[str, Any] = {}
    if isinstance(rollout.approval, list) and any(n > waves for n in rollout.approval):
        update["approval"] = [n for n in rollout.approval if n <= waves]
        gone = ", ".join(str(n) for n in rollout.approval if n > waves)
        notes.append(f"warning: the limit leaves {_count(waves, 'wave')}: no approval before wave {gone}")
    for key in ("max_failures", "failure_budget"):
        value = getattr(rollout, key)
        if isinstance(value, int) and value > hosts > 0:
            update[key] = hosts
            notes.append(
                f"warning: the limit leaves {_count(hosts, 'host')}: {key} {value} lowered to {hosts}"
            )
    if not update:
        return workflow, notes
    return workflow.model_copy(update={"rollout": rollout.model_copy(update=update)}), notes


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def lower_parallelism(
    workflow: MaintenanceWorkflow, forks: int, *, force: bool = False
) -> MaintenanceWorkflow:
    """``--forks N``: at most N hosts at once; above the workflow's own limit only with ``force``."""
    if forks < 1:
        raise WorkflowError([Problem(f"--forks {forks}: must be at least 1")])
    own = workflow.parallelism.max_parallel_servers
    if own is not None and forks > own and not force:
        raise WorkflowError(
            [
                Problem(
                    f"--forks {forks} is above the workflow's max_parallel_servers ({own}); "
                    "add --force to raise it"
                )
            ]
        )
    parallelism = workflow.parallelism.model_copy(update={"max_parallel_servers": forks})
    return _with_tasks(workflow, workflow.tasks, parallelism=parallelism)


def _with_tasks(workflow: MaintenanceWorkflow, tasks: list[Task], **update: Any) -> MaintenanceWorkflow:
    return workflow.model_copy(update={"tasks": tasks, **update})
