"""Who each compiled operation runs as: its task's, host's and workflow's become settings resolved
into :attr:`Operation.become` (see :mod:`sysflow.model.become` for the order). Rollback, check and
``until`` commands are copies of their operation, so they run as the same user."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from sysflow.model.become import BECOME_VARS, BecomeSetting, host_setting, resolve_become
from sysflow.model.inventory import Inventory
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.planner.graph import Operation, OpGraph

__all__ = ["inventory_sets_become", "with_become"]


def inventory_sets_become(inventory: Inventory) -> bool:
    """True when any level of the inventory sets an ``ansible_become*`` variable."""
    scopes: list[Mapping[str, Any]] = [inventory.vars, inventory.ungrouped_vars]
    scopes += [g.vars for g in inventory.groups.values()]
    scopes += [h.vars for h in inventory.hosts.values()]
    scopes += [*inventory.group_vars_dir.values(), *inventory.host_vars_dir.values()]
    return any(BECOME_VARS.intersection(scope) for scope in scopes)


def with_become(graph: OpGraph, workflow: MaintenanceWorkflow, inventory: Inventory) -> OpGraph:
    """``graph`` with each remote operation's ``become`` set; the same graph when nothing asks."""
    tasks = {t.id: t.become_setting for t in workflow.tasks}
    play = BecomeSetting(workflow.become, workflow.become_user, workflow.become_method)
    from_hosts = inventory_sets_become(inventory)
    if not (from_hosts or workflow.become or any(s.become for s in tasks.values())):
        return graph
    hosts: dict[str, BecomeSetting] = {}
    if from_hosts:
        names = {op.where for op in graph.ops.values() if op.where in inventory.hosts}
        hosts = {n: host_setting(v) for n, v in inventory.all_host_vars(names).items()}
    ops = {oid: _resolved(op, tasks, hosts, play) for oid, op in graph.ops.items()}
    return dataclasses.replace(graph, ops=ops)


def _resolved(
    op: Operation, tasks: dict[str, BecomeSetting], hosts: dict[str, BecomeSetting], play: BecomeSetting
) -> Operation:
    if op.local or op.run_once:
        return op
    # a delegated step runs on the delegate's connection: the delegate's become settings apply
    user = resolve_become(tasks.get(op.task, BecomeSetting()), hosts.get(op.where, BecomeSetting()), play)
    return op if user is None else dataclasses.replace(op, become=user)
