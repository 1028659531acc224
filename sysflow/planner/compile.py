"""Compile a workflow and an inventory into the operation graph, collecting every problem first.

``compile_workflow(workflow, inventory)`` resolves each task's targets, cuts the targeted hosts into
rollout waves (deterministically), checks everything that needs the inventory, and only then builds
the :class:`~sysflow.planner.graph.OpGraph`:

* one :class:`Operation` per host × task; edges for ``depends_on`` on the same host. A dependency a
  host does not run (its targets leave the host out) is bridged to that task's own dependencies;
* a ``run_once`` task is a wave hook: one operation per wave that holds at least one of its target
  hosts, on the pseudo-host ``@wave<N>`` (N counts from 1; ``Operation.wave`` counts from 0, like
  ``OpGraph.waves``). Per-host tasks that depend on a hook wait for it; a hook that depends on a
  per-host task waits for that task on every host of the wave. Hooks have group ``ungrouped``;
* a :class:`Gate` node ``gate:<w>`` between wave ``w`` and ``w + 1``: the last operations of wave
  ``w`` point to it, it points to the first operations of wave ``w + 1``.

Waves: ``waves`` takes the listed groups/patterns in order; ``canary`` puts the first N hosts (or P%,
rounded down, at least 1) in wave 1 and the rest in wave 2; ``rolling`` cuts the batches Ansible's
``serial`` cuts (:func:`~sysflow.model.serial.serial_batches`: percentages of all targeted hosts
truncated as Ansible does, at least 1; 0 or less takes all remaining hosts; the last size repeats);
``blue_green`` deploys ``green`` first, then ``blue``. Hosts are ordered by ``ordering``
(inventory order, sorted by name, or shuffled with ``seed``) before cutting and inside each wave.

The hot path builds plain frozen dataclasses from a per-host-signature template and hands NetworkX
whole lists (``add_nodes_from``/``add_edges_from``), so 50,000 operations compile in well under 1.5 s.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sysflow.errors import Problem, WorkflowError
from sysflow.model.inventory import Inventory
from sysflow.model.serial import serial_batches
from sysflow.model.workflow import MaintenanceWorkflow, Ordering, RolloutStrategy, Task, resolve_count
from sysflow.model.workflow_checks import task_order
from sysflow.planner.bandwidth import with_bandwidth
from sysflow.planner.become import with_become
from sysflow.planner.graph import Gate, Operation, OpGraph, op_id
from sysflow.planner.rendered import with_rendered_templates

__all__ = ["UNGROUPED", "compile_workflow", "hook_host", "primary_group"]

UNGROUPED = "ungrouped"
_IMPLICIT_GROUPS = frozenset({"all", UNGROUPED})


def hook_host(wave: int) -> str:
    """The pseudo-host of the run-once operations of wave ``wave`` (0-based): ``@wave1`` for 0."""
    return f"@wave{wave + 1}"


def primary_group(groups: Sequence[str]) -> str:
    """The first of a host's groups in inventory order (``all`` skipped), else ``ungrouped``."""
    for g in groups:
        if g != "all":
            return g
    return UNGROUPED


def compile_workflow(workflow: MaintenanceWorkflow, inventory: Inventory) -> OpGraph:
    """The operation graph of ``workflow`` over ``inventory``; WorkflowError lists every problem."""
    ctx = _Context(workflow, inventory)
    problems = [*workflow.problems(), *ctx.target_problems()]
    waves = _assign_waves(ctx, problems)
    problems.extend(_inventory_problems(ctx, waves))
    if problems:
        raise WorkflowError(problems)
    graph = with_become(_Builder(ctx, waves).build(), workflow, inventory)
    return with_bandwidth(with_rendered_templates(graph, workflow, inventory), workflow)


# -- context: targets and the order of hosts ------------------------------------------------------------


@dataclass
class _Context:
    workflow: MaintenanceWorkflow
    inventory: Inventory
    order: list[Task] = field(init=False)
    targets: dict[str, set[str]] = field(init=False)
    in_scope: list[str] = field(init=False)
    branch_targets: dict[str, set[str]] = field(init=False)  # on_failure tasks: run only as branches

    def __post_init__(self) -> None:
        by_id: dict[str, Task] = {}
        for t in self.workflow.tasks:
            by_id.setdefault(t.id, t)
        branches = {name for t in self.workflow.tasks for name in t.on_failure}
        self.order = [by_id[i] for i in task_order(self.workflow) if i not in branches]
        self.branch_targets = {
            t.id: set(self.inventory.select(t.targets)) for t in self.workflow.tasks if t.id in branches
        }
        self.targets = {t.id: set(self.inventory.select(t.targets)) for t in self.order}
        host_tasks = [t for t in self.order if not t.run_once] or self.order
        chosen = set().union(*(self.targets[t.id] for t in host_tasks)) if host_tasks else set()
        self.in_scope = [h for h in self.inventory.hosts if h in chosen]

    def locate(self, path: str) -> str:
        return self.workflow.locate(path)

    def problem(self, message: str, path: str) -> Problem:
        return Problem(message, self.locate(path))

    def target_problems(self) -> Iterator[Problem]:
        seen: set[str] = set()
        for i, task in enumerate(self.workflow.tasks):
            if task.id in seen:
                continue
            seen.add(task.id)
            for term in self.inventory.unmatched(task.targets):
                yield self.problem(
                    f"task {task.id!r}: target {term!r} matches no host or group", f"tasks[{i}].targets"
                )
            hosts = self.targets.get(task.id, self.branch_targets.get(task.id))
            if not hosts and not self.inventory.unmatched(task.targets):
                yield self.problem(f"task {task.id!r} targets no host", f"tasks[{i}].targets")
            delegate = task.delegate_host
            if delegate is not None and delegate not in self.inventory.hosts:
                yield self.problem(
                    f"task {task.id!r}: delegate_to {delegate!r} is not a host of the inventory "
                    "(localhost: the controller)",
                    f"tasks[{i}].delegate_to",
                )

    def ordered(self, hosts: Iterable[str]) -> list[str]:
        rollout = self.workflow.rollout
        out = list(hosts)
        if rollout.ordering is Ordering.SORTED:
            out.sort()
        elif rollout.ordering is Ordering.SHUFFLE:
            random.Random(rollout.seed).shuffle(out)
        return out


# -- waves -------------------------------------------------------------------------------------------------


def _assign_waves(ctx: _Context, problems: list[Problem]) -> list[list[str]]:
    strategy = ctx.workflow.rollout.strategy
    if strategy is RolloutStrategy.CANARY:
        return _canary_waves(ctx, problems)
    if strategy is RolloutStrategy.ROLLING:
        return _rolling_waves(ctx)
    if strategy is RolloutStrategy.BLUE_GREEN:
        return _blue_green_waves(ctx, problems)
    return _explicit_waves(ctx, problems)


def _explicit_waves(ctx: _Context, problems: list[Problem]) -> list[list[str]]:
    spec = ctx.workflow.rollout.groups
    if spec is None:
        return [ctx.ordered(ctx.in_scope)] if ctx.in_scope else []
    specs = [(f"rollout.groups[{n}]", f"wave {n + 1}", p) for n, p in enumerate(spec)]
    return _pattern_waves(ctx, specs, problems, "rollout.groups")


def _pattern_waves(
    ctx: _Context, specs: Sequence[tuple[str, str, Sequence[str]]], problems: list[Problem], whole: str
) -> list[list[str]]:
    """Waves from (path, label, patterns) specs; ``whole`` locates "hosts in no wave"."""
    scope = set(ctx.in_scope)
    owner: dict[str, int] = {}
    waves: list[list[str]] = []
    typos = False
    for n, (path, label, patterns) in enumerate(specs):
        for term in ctx.inventory.unmatched(patterns):
            typos = True
            problems.append(ctx.problem(f"{label}: {term!r} matches no host or group", path))
        selected = ctx.inventory.select(patterns)
        twice = [h for h in selected if h in owner]
        if twice:
            first = specs[owner[twice[0]]][1]
            problems.append(ctx.problem(f"{label}: {_names(twice)} already in {first}", path))
        wave = [h for h in selected if h not in owner and h in scope]
        owner.update((h, n) for h in wave)
        if selected and not wave and not twice:
            problems.append(ctx.problem(f"{label}: no host of it is targeted by any task", path))
        waves.append(ctx.ordered(wave))
    missing = [h for h in ctx.in_scope if h not in owner]
    if missing and not typos:  # a typo explains the missing hosts; say it once
        problems.append(ctx.problem(f"targeted hosts in no wave: {_names(missing)}", whole))
    return [w for w in waves if w]


def _names(hosts: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(hosts[:limit])
    more = f" and {len(hosts) - limit} more" if len(hosts) > limit else ""
    return f"{shown}{more}"


def _canary_waves(ctx: _Context, problems: list[Problem]) -> list[list[str]]:
    hosts = ctx.ordered(ctx.in_scope)
    size = resolve_count(ctx.workflow.rollout.canary_size, len(hosts), minimum=1)
    if size > len(hosts) and hosts:
        problems.append(
            ctx.problem(
                f"canary_size {size} is larger than the {len(hosts)} targeted hosts", "rollout.canary_size"
            )
        )
    return [w for w in (hosts[:size], hosts[size:]) if w]


def _rolling_waves(ctx: _Context) -> list[list[str]]:
    return serial_batches(ctx.ordered(ctx.in_scope), ctx.workflow.rollout.serial)


def _blue_green_waves(ctx: _Context, problems: list[Problem]) -> list[list[str]]:
    rollout = ctx.workflow.rollout
    if not rollout.green or not rollout.blue:
        return [ctx.ordered(ctx.in_scope)] if ctx.in_scope else []  # reported by workflow checks
    specs = [("rollout.green", "green set", rollout.green), ("rollout.blue", "blue set", rollout.blue)]
    return _pattern_waves(ctx, specs, problems, "rollout")


# -- checks that need the inventory ------------------------------------------------------------------


def _inventory_problems(ctx: _Context, waves: list[list[str]]) -> list[Problem]:
    checks = (_group_names, _thresholds, _verification_targets, _host_vars, _secret_vars)
    return [p for check in checks for p in check(ctx, waves)]


def _secret_vars(ctx: _Context, waves: list[list[str]]) -> list[Problem]:
    """Secrets too short to mask (named with where they are set, never shown)."""
    return ctx.inventory.secret_problems(ctx.workflow.secrets)


def _host_vars(ctx: _Context, waves: list[list[str]]) -> Iterator[Problem]:
    """Template variables (``{{ vars.x }}``, ``when: vars.x``) undefined on a targeted host."""
    from sysflow.model.conditional_checks import host_var_problems

    cache: dict[str, dict[str, Any]] = {}

    def host_vars(host: str) -> dict[str, Any]:
        if host not in cache:
            cache[host] = ctx.inventory.host_vars(host)
        return cache[host]

    return host_var_problems(ctx.workflow, {**ctx.targets, **ctx.branch_targets}, host_vars)


def _known_group(ctx: _Context, name: str) -> bool:
    return name in ctx.inventory.groups or name in _IMPLICIT_GROUPS


def _group_names(ctx: _Context, waves: list[list[str]]) -> Iterator[Problem]:
    wf = ctx.workflow
    for name in wf.windows.groups:
        if not _known_group(ctx, name):
            yield ctx.problem(f"window for unknown group {name!r}", f"windows.groups.{name}")
    for k, pool in enumerate(wf.parallelism.pools):
        for j, name in enumerate(pool.groups or []):
            if not _known_group(ctx, name):
                yield ctx.problem(
                    f"pool {pool.name!r} names unknown group {name!r}", f"parallelism.pools[{k}].groups[{j}]"
                )
    budget = wf.parallelism.disruption_budget
    for j, name in enumerate(budget.groups or [] if budget else []):
        if not _known_group(ctx, name):
            yield ctx.problem(
                f"disruption budget names unknown group {name!r}",
                f"parallelism.disruption_budget.groups[{j}]",
            )
    for k, route in enumerate(wf.notifications):
        for j, name in enumerate(route.groups or []):
            if not _known_group(ctx, name):
                yield ctx.problem(
                    f"notification route names unknown group {name!r}", f"notifications[{k}].groups[{j}]"
                )


def _thresholds(ctx: _Context, waves: list[list[str]]) -> Iterator[Problem]:
    rollout = ctx.workflow.rollout
    total = len(ctx.in_scope)
    for key in ("max_failures", "failure_budget"):
        value = getattr(rollout, key)
        if isinstance(value, int) and value > total > 0:
            yield ctx.problem(f"{key} {value} exceeds the {total} targeted hosts", f"rollout.{key}")
    if isinstance(rollout.approval, list):
        for j, number in enumerate(rollout.approval):
            if number > len(waves):
                yield ctx.problem(
                    f"approval for wave {number}, but there are {len(waves)} waves", f"rollout.approval[{j}]"
                )


def _verification_targets(ctx: _Context, waves: list[list[str]]) -> Iterator[Problem]:
    for name, spec in ctx.workflow.verifications.items():
        for term in ctx.inventory.unmatched(spec.targets):
            yield ctx.problem(
                f"verification {name!r}: target {term!r} matches no host or group",
                f"verifications.{name}.targets",
            )
        drift = spec.drift
        if drift is not None and drift.group is not None and not _known_group(ctx, drift.group):
            yield ctx.problem(
                f"verification {name!r}: drift group {drift.group!r} is unknown",
                f"verifications.{name}.drift.group",
            )
        if (
            drift is not None
            and drift.golden_host is not None
            and drift.golden_host not in ctx.inventory.hosts
        ):
            yield ctx.problem(
                f"verification {name!r}: golden host {drift.golden_host!r} is not in the inventory",
                f"verifications.{name}.drift.golden_host",
            )


# -- building the graph ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Step:
    """One task of a host signature: its position and the positions it waits for."""

    task: Task
    index: int
    preds: tuple[int, ...]
    hooks: tuple[str, ...]  # run-once task ids it waits for
    demands: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class _Template:
    """The operations of every host that runs the same set of tasks, by position in its chain."""

    steps: tuple[_Step, ...]
    edges: tuple[tuple[int, int], ...]
    hook_edges: tuple[tuple[str, int], ...]
    roots: tuple[int, ...]  # no predecessor at all
    hook_waiters: tuple[int, ...]  # no predecessor on the host, but waits for run-once hooks
    leaves: tuple[int, ...]

    @classmethod
    def of(cls, steps: list[_Step]) -> _Template:
        used = {p for s in steps for p in s.preds}
        return cls(
            steps=tuple(steps),
            edges=tuple((p, s.index) for s in steps for p in s.preds),
            hook_edges=tuple((h, s.index) for s in steps for h in s.hooks),
            roots=tuple(s.index for s in steps if not s.preds and not s.hooks),
            hook_waiters=tuple(s.index for s in steps if not s.preds and s.hooks),
            leaves=tuple(s.index for s in steps if s.index not in used),
        )


@dataclass(frozen=True, slots=True)
class _HostFacts:
    groups: tuple[str, ...]
    group: str
    datacenter: str | None
    segment: str | None


class _Builder:
    """Builds the OpGraph from a checked context and its waves."""

    def __init__(self, ctx: _Context, waves: list[list[str]]) -> None:
        self.ctx = ctx
        self.waves = waves
        self.host_tasks = [t for t in ctx.order if not t.run_once]
        self.hooks = [t for t in ctx.order if t.run_once]
        self.by_id = {t.id: t for t in ctx.order}
        self.templates: dict[tuple[bool, ...], _Template] = {}
        self.facts = _FactCache(ctx.inventory)
        self.ops: dict[str, Operation] = {}
        self.chains: dict[str, tuple[str, ...]] = {}
        self.edges: list[tuple[str, str]] = []

    def build(self) -> OpGraph:
        gates = self._gates()
        previous_leaves: list[str] = []
        for w, hosts in enumerate(self.waves):
            roots, leaves = self._wave(w, hosts)
            if w > 0:
                gate = gates[w - 1].id
                self.edges.extend((leaf, gate) for leaf in previous_leaves)
                self.edges.extend((gate, root) for root in roots)
            previous_leaves = leaves
        return OpGraph(
            name=self.ctx.workflow.name,
            edges=tuple(self.edges),
            ops=self.ops,
            chains=self.chains,
            waves=tuple(tuple(w) for w in self.waves),
            gates=tuple(gates),
            host_wave={h: w for w, hosts in enumerate(self.waves) for h in hosts},
        )

    def _gates(self) -> list[Gate]:
        rollout = self.ctx.workflow.rollout
        names = tuple(self.ctx.workflow.verifications)
        gates = []
        for w in range(len(self.waves) - 1):
            bake = rollout.canary_bake if rollout.strategy is RolloutStrategy.CANARY and w == 0 else 0.0
            cutover = rollout.cutover_task if rollout.strategy is RolloutStrategy.BLUE_GREEN else None
            gates.append(
                Gate(
                    wave=w,
                    verification_tasks=tuple(rollout.verification_tasks),
                    verifications=names,
                    pause=rollout.pause_between_waves + bake,
                    approval=rollout.needs_approval(w + 2),
                    cutover_task=cutover,
                )
            )
        return gates

    def _wave(self, w: int, hosts: list[str]) -> tuple[list[str], list[str]]:
        """Add the operations of wave ``w``; return its first (root) and last (leaf) op ids."""
        hook_ids, hook_edges = self._hook_ops(w, hosts)
        waiting = {dst for _, dst in hook_edges}
        roots = [oid for oid in hook_ids.values() if oid not in waiting]
        has_succ = {src for src, _ in hook_edges}
        ops, edges, chains = self.ops, self.edges, self.chains
        leaves: list[str] = []
        for host in hosts:
            tpl = self._template(host)
            facts = self.facts.get(host)
            ids = [op_id(host, s.task.id) for s in tpl.steps]
            chains[host] = tuple(ids)
            for s, oid in zip(tpl.steps, ids, strict=True):
                ops[oid] = _operation(oid, host, s, w, facts)
            edges.extend([(ids[a], ids[b]) for a, b in tpl.edges])
            roots.extend([ids[i] for i in tpl.roots])
            leaves.extend([ids[i] for i in tpl.leaves])
            for hook, i in tpl.hook_edges:
                if hook in hook_ids:
                    edges.append((hook_ids[hook], ids[i]))
                    has_succ.add(hook_ids[hook])
            roots.extend(
                [ids[i] for i in tpl.hook_waiters if not any(h in hook_ids for h in tpl.steps[i].hooks)]
            )
        edges.extend(hook_edges)
        leaves.extend(oid for oid in hook_ids.values() if oid not in has_succ)
        return roots, leaves

    def _hook_ops(self, w: int, hosts: list[str]) -> tuple[dict[str, str], list[tuple[str, str]]]:
        """Create the run-once operations of wave ``w``: (task id -> op id, edges into them)."""
        label = hook_host(w)
        members = set(hosts)
        hook_ids = {t.id: op_id(label, t.id) for t in self.hooks if members & self.ctx.targets[t.id]}
        edges: list[tuple[str, str]] = []
        for i, (tid, oid) in enumerate(hook_ids.items()):
            task = self.by_id[tid]
            self.ops[oid] = _operation(
                oid, label, _Step(task, i, (), (), _demands(task)), w, _HOOK_FACTS, run_once=True
            )
            for dep in task.depends_on:
                edges.extend(self._hook_dep_edges(dep, oid, hook_ids, hosts))
        if hook_ids:
            self.chains[label] = tuple(hook_ids.values())
        return hook_ids, edges

    def _hook_dep_edges(
        self, dep: str, oid: str, hook_ids: dict[str, str], hosts: list[str]
    ) -> list[tuple[str, str]]:
        if dep in hook_ids:
            return [(hook_ids[dep], oid)]
        task = self.by_id.get(dep)
        if task is None or task.run_once:
            return []
        targets = self.ctx.targets[dep]
        return [(op_id(h, dep), oid) for h in hosts if h in targets]

    def _template(self, host: str) -> _Template:
        signature = tuple(host in self.ctx.targets[t.id] for t in self.host_tasks)
        tpl = self.templates.get(signature)
        if tpl is None:
            tpl = self.templates[signature] = self._make_template(signature)
        return tpl

    def _make_template(self, signature: tuple[bool, ...]) -> _Template:
        present = [t for t, on in zip(self.host_tasks, signature, strict=True) if on]
        position = {t.id: i for i, t in enumerate(present)}
        steps = []
        for i, t in enumerate(present):
            preds: set[int] = set()
            hooks: set[str] = set()
            self._resolve(t.id, position, preds, hooks, set())
            steps.append(_Step(t, i, tuple(sorted(preds)), tuple(sorted(hooks)), _demands(t)))
        return _Template.of(steps)

    def _resolve(
        self, tid: str, position: dict[str, int], preds: set[int], hooks: set[str], seen: set[str]
    ) -> None:
        """Nearest dependencies of ``tid`` that this host runs (bridging absent tasks)."""
        for dep in self.by_id[tid].depends_on:
            task = self.by_id.get(dep)
            if task is None or dep in seen:
                continue
            seen.add(dep)
            if task.run_once:
                hooks.add(dep)
            elif dep in position:
                preds.add(position[dep])
            else:
                self._resolve(dep, position, preds, hooks, seen)


_HOOK_FACTS = _HostFacts((), UNGROUPED, None, None)


def _operation(
    oid: str, host: str, step: _Step, wave: int, facts: _HostFacts, *, run_once: bool = False
) -> Operation:
    task = step.task
    # positional: this runs once per operation, and keyword passing costs a third of the time
    return Operation(
        oid, host, task.id, wave, step.index, facts.group, facts.groups, facts.datacenter, facts.segment,
        task.run, task.estimate, task.timeout, task.retries, task.rollback, step.demands, run_once, task.local,
        task.idempotent, task.check, task.retry_delay, None,
        task.upload, task.delegate_host, reboot=task.reboot_spec, download=task.download_for(host),
    )  # fmt: skip


def _demands(task: Task) -> tuple[tuple[str, float], ...]:
    return tuple(sorted(task.resources.items()))


class _FactCache:
    """Groups, primary group, datacenter and segment per host; group vars merged once per group set."""

    def __init__(self, inventory: Inventory) -> None:
        self.inventory = inventory
        self.depth = _group_depths(inventory)
        self.by_groups: dict[tuple[str, ...], _HostFacts] = {}

    def get(self, host: str) -> _HostFacts:
        groups = tuple(self.inventory.host_groups(host))
        shared = self.by_groups.get(groups)
        if shared is None:
            shared = self.by_groups[groups] = self._shared(groups)
        own = self.inventory.hosts[host].vars
        if "datacenter" not in own and "segment" not in own:
            return shared
        dc = own.get("datacenter", shared.datacenter)
        seg = own.get("segment", dc if "datacenter" in own else shared.segment)
        return _HostFacts(shared.groups, shared.group, _opt_str(dc), _opt_str(seg))

    def _shared(self, groups: tuple[str, ...]) -> _HostFacts:
        """Facts of a host that sets neither datacenter nor segment itself."""
        named = tuple(g for g in groups if g != "all")
        merged = self._group_vars(named)
        dc = merged.get("datacenter")
        seg = merged.get("segment", dc)
        return _HostFacts(named, primary_group(named), _opt_str(dc), _opt_str(seg))

    def _group_vars(self, groups: tuple[str, ...]) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for g in sorted(groups, key=lambda name: self.depth.get(name, 0)):
            group = self.inventory.groups.get(g)  # implicit groups (ungrouped) may have no object
            if group is not None:
                merged.update(group.vars)
        return merged


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _group_depths(inventory: Inventory) -> dict[str, int]:
    """Nesting depth of each group (parents first when group vars are merged)."""
    parents: dict[str, list[str]] = {g: [] for g in inventory.groups}
    for group in inventory.groups.values():
        for child in group.children:
            parents.setdefault(child, []).append(group.name)
    depth: dict[str, int] = {}

    def level(g: str, trail: frozenset[str]) -> int:
        if g not in depth:
            ups = [p for p in parents.get(g, []) if p not in trail]
            depth[g] = 1 + max((level(p, trail | {g}) for p in ups), default=0)
        return depth[g]

    for name in inventory.groups:
        level(name, frozenset())
    return depth
