"""What every inventory file reader shares: the builder that fills an Inventory and keeps problems.

A reader (:mod:`sysflow.model.inventory_ini`, :mod:`sysflow.model.inventory_yaml`) feeds an
:class:`InventoryBuilder` hosts, groups, variables and child edges with their line numbers; the
builder expands host ranges, collects every problem as ``file:line`` and raises them together as one
:class:`~sysflow.errors.InventoryError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sysflow.errors import InventoryError, Problem
from sysflow.model.groups import IMPLICIT_GROUPS
from sysflow.model.host_ranges import RangeError, expand_host_range, split_port
from sysflow.model.inventory import Inventory

__all__ = ["GROUP_KEYS", "Edge", "InventoryBuilder", "inventory_error"]

GROUP_KEYS = ("hosts", "children", "vars")  # what a group holds, in INI sections and YAML mappings


def inventory_error(problems: list[Problem], source: str) -> InventoryError:
    """An InventoryError whose ``source`` is set but not repeated before each located problem."""
    error = InventoryError(problems)
    error.source = source
    return error


@dataclass(frozen=True, slots=True)
class Edge:
    """A parent -> child group relation and the line that declared it."""

    parent: str
    child: str
    line: int


class InventoryBuilder:
    """Fills an Inventory while a file is read and collects every problem with its line."""

    def __init__(self, source: str, inventory: Inventory | None = None) -> None:
        self.source = source
        self.inventory = Inventory(source=source) if inventory is None else inventory
        self.problems: list[Problem] = []

    def problem(self, message: str, line: int | None) -> None:
        where = f"{self.source}:{line}" if line else self.source
        self.problems.append(Problem(message, where))

    def declare(self, group: str) -> None:
        if group not in IMPLICIT_GROUPS:
            self.inventory.add_group(group)

    def add_hosts(self, pattern: str, group: str, variables: dict[str, Any], line: int | None) -> None:
        name, port = split_port(pattern)
        try:
            names = expand_host_range(name)
        except RangeError as exc:
            self.problem(str(exc), line)
            return
        for host in names:
            entry = self.inventory.add_host(host, groups=[group])
            if port is not None:
                entry.vars["ansible_port"] = port
            entry.vars.update(variables)  # not as keywords: 'name' and 'groups' are fine variable names

    def set_group_vars(self, group: str, variables: dict[str, Any]) -> None:
        self.inventory.add_group(group, vars=variables)

    def add_child(self, edge: Edge) -> None:
        try:
            self.inventory.add_child(edge.parent, edge.child)
        except InventoryError as exc:
            for p in exc.problems:
                self.problem(p.message, edge.line)

    def finish(self) -> Inventory:
        if self.problems:
            raise inventory_error(self.problems, self.source)
        return self.inventory
