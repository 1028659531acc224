"""Each host's copy of a ``template`` task's file, rendered when the run is compiled.

The content is rendered over the host's ``host`` and ``vars`` (what command templates read, minus
facts and registered results, which do not exist before the run) and set as the operation's upload.
A variable a host lacks is a problem naming the task, the host and the template.
"""

from __future__ import annotations

import dataclasses

from sysflow.errors import Problem, WorkflowError
from sysflow.model.inventory import Inventory
from sysflow.model.templates import TemplateError
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.planner.graph import OpGraph, template_host

__all__ = ["with_rendered_templates"]


def with_rendered_templates(graph: OpGraph, workflow: MaintenanceWorkflow, inventory: Inventory) -> OpGraph:
    """``graph`` with each ``template`` operation's upload rendered for its host."""
    # each template is read once, however many hosts it is rendered for
    templates = {
        t.id: (i, t.template, t.template.source())
        for i, t in enumerate(workflow.tasks)
        if t.template is not None
    }
    if not templates:
        return graph
    ops = dict(graph.ops)
    problems: list[Problem] = []
    host_vars: dict[str, dict[str, object]] = {}
    for oid, op in graph.ops.items():
        found = templates.get(op.task)
        if found is None:
            continue
        index, module, source = found
        if op.host not in host_vars:
            host_vars[op.host] = inventory.host_vars(op.host) if op.host in inventory.hosts else {}
        try:
            upload = module.rendered({"host": template_host(op), "vars": host_vars[op.host]}, source)
        except TemplateError as exc:
            where = workflow.locate(f"tasks[{index}].template")
            problems.append(
                Problem(f"task {op.task!r} on host {op.host}: template {module.src}: {exc}", where)
            )
            continue
        ops[oid] = dataclasses.replace(op, upload=upload)
    if problems:
        raise WorkflowError(problems)
    return dataclasses.replace(graph, ops=ops)
