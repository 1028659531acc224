"""Inventory groups as Ansible nests them: the implicit groups, membership, descent and depth.

``all`` and ``ungrouped`` are implicit (never entries of ``Inventory.groups``). Declared groups nest
through ``children`` and are kept acyclic: :func:`child_problem` names the cycle an edge would close.
:func:`depths` gives each group's longest distance from ``all``, which orders variable precedence.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from sysflow.errors import Problem

if TYPE_CHECKING:
    from sysflow.model.inventory import Group, Inventory

__all__ = [
    "ALL",
    "IMPLICIT_GROUPS",
    "UNGROUPED",
    "child_problem",
    "depths",
    "group_members",
    "host_group_index",
]

ALL = "all"
UNGROUPED = "ungrouped"
IMPLICIT_GROUPS = (ALL, UNGROUPED)
_FEW = 8  # a group with fewer than 1/_FEW of the hosts is ordered by position, not by a scan


def child_problem(groups: Mapping[str, Group], parent: str, child: str) -> Problem | None:
    """Why ``child`` cannot become a child group of ``parent`` (None: it can), as Ansible refuses.

    ``ungrouped`` has no children, an implicit group is nobody's child, and no group may become its
    own ancestor (the problem shows the cycle). ``parent`` is not ``all`` (every group is below it).
    """
    if parent == UNGROUPED or child in IMPLICIT_GROUPS:
        return Problem(f"group {child!r} cannot be a child of {parent!r}", f"group {parent}")
    cycle = _cycle_through(groups, parent, child)
    if cycle:
        return Problem(f"group {child!r} would be its own ancestor: {' -> '.join(cycle)}", f"group {parent}")
    return None


def _cycle_through(groups: Mapping[str, Group], parent: str, child: str) -> list[str]:
    """The path child -> ... -> parent -> child if adding the edge closes a cycle, else []."""
    if child == parent:
        return [parent, child]
    path = _descent_path(groups, child, parent)
    return [*path, child] if path else []


def _descent_path(groups: Mapping[str, Group], start: str, goal: str) -> list[str]:
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        name, path = stack.pop()
        if name == goal:
            return path
        if name in seen or name not in groups:
            continue
        seen.add(name)
        stack.extend((c, [*path, c]) for c in reversed(groups[name].children))
    return []


def group_members(inventory: Inventory, name: str) -> list[str]:
    """Every host of a group and of its descendants, in inventory order (uncached)."""
    if name == ALL:
        return list(inventory.hosts)
    if name == UNGROUPED:
        grouped = {h for g in inventory.groups.values() for h in g.hosts}
        return [h for h in inventory.hosts if h not in grouped]
    members: set[str] = set()
    for g in _descendants(inventory.groups, name):
        members.update(inventory.groups[g].hosts)
    if len(members) * _FEW >= len(inventory.hosts):
        return [h for h in inventory.hosts if h in members]
    position = inventory.cached("position", lambda: {h: i for i, h in enumerate(inventory.hosts)})
    return sorted((h for h in members if h in position), key=position.__getitem__)  # few: no scan


def _descendants(groups: Mapping[str, Group], name: str) -> list[str]:
    """The group and every group below it (each once), if it is declared."""
    seen: list[str] = []
    stack = [name]
    while stack:
        g = stack.pop()
        if g in groups and g not in seen:
            seen.append(g)
            stack.extend(groups[g].children)
    return seen


def host_group_index(inventory: Inventory) -> dict[str, list[str]]:
    """Each host's groups in definition order, ``ungrouped`` last and ``all`` left out (uncached)."""
    index: dict[str, list[str]] = {h: [] for h in inventory.hosts}
    for g in inventory.groups:
        for h in inventory.group_hosts(g):
            index[h].append(g)
    for h in inventory.group_hosts(UNGROUPED):
        index[h].append(UNGROUPED)
    return index


def depths(groups: Mapping[str, Group]) -> dict[str, int]:
    """Longest distance from ``all`` of every group (top-level groups and ``ungrouped`` at depth 1)."""
    depth = dict.fromkeys(groups, 1)
    for g in _topological(groups):
        for c in groups[g].children:
            if c in depth:
                depth[c] = max(depth[c], depth[g] + 1)
    depth[UNGROUPED] = 1
    return depth


def _topological(groups: Mapping[str, Group]) -> list[str]:
    """Groups with parents before children (cycles, if forced in by hand, are cut)."""
    order: list[str] = []
    state: dict[str, int] = {}
    for root in groups:
        stack: list[tuple[str, bool]] = [(root, False)]
        while stack:
            g, done = stack.pop()
            if done:
                state[g] = 2
                order.append(g)
            elif state.get(g, 0) == 0 and g in groups:
                state[g] = 1
                stack.append((g, True))
                stack.extend((c, False) for c in groups[g].children)
    return order[::-1]
