"""A host's variables, layered as Ansible's VariableManager layers them; later layers win.

1. ``all``'s inventory variables, then those of the host's groups sorted by (depth,
   ``ansible_group_priority``, name);
2. ``group_vars/all``, then ``group_vars/<group>`` in the same group order;
3. the host's inventory variables, then ``host_vars/<host>``.

At each level the entries of a ``secrets:`` mapping count as plain variables of that level
(:func:`lifted`), and a ``secrets:`` mapping set again merges with the one already there
(:func:`update_vars`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sysflow.model.groups import ALL, UNGROUPED, depths
from sysflow.model.secrets import SECRETS_KEY

if TYPE_CHECKING:
    from sysflow.model.inventory import Host, Inventory

__all__ = ["DEFAULT_GROUP_PRIORITY", "GROUP_PRIORITY", "GroupLayers", "lifted", "merged_vars", "update_vars"]

GROUP_PRIORITY = "ansible_group_priority"
DEFAULT_GROUP_PRIORITY = 1  # Ansible's default ansible_group_priority

GroupLayers = dict[tuple[str, ...], dict[str, Any]]
"""Layers 1 and 2 already merged, by a host's groups: shared between hosts of the same groups."""


def merged_vars(
    inventory: Inventory, host: Host, layers: GroupLayers, groups: Sequence[str] | None = None
) -> dict[str, Any]:
    """The variables of ``host`` (a host of ``inventory``, in ``groups``: its
    :meth:`~sysflow.model.inventory.Inventory.host_groups` when not given), all three layers merged."""
    groups = tuple(inventory.host_groups(host.name) if groups is None else groups)
    layer = layers.get(groups)
    if layer is None:
        layer = layers[groups] = _group_layer(inventory, groups)
    merged = dict(layer)
    merged.update(lifted(host.vars))
    merged.update(lifted(inventory.host_vars_dir.get(host.name, {})))
    return merged


def _group_layer(inventory: Inventory, groups: tuple[str, ...]) -> dict[str, Any]:
    """Layers 1 and 2 for one set of groups."""
    ordered = sorted(groups, key=lambda g: _precedence_key(inventory, g))
    layer = dict(lifted(inventory.vars))
    for g in ordered:
        layer.update(lifted(_inventory_vars(inventory, g)))
    layer.pop(GROUP_PRIORITY, None)  # Ansible keeps it as the group's priority, not a variable
    for g in (ALL, *ordered):
        layer.update(lifted(inventory.group_vars_dir.get(g, {})))
    return layer


def _inventory_vars(inventory: Inventory, group: str) -> dict[str, Any]:
    return inventory.ungrouped_vars if group == UNGROUPED else inventory.groups[group].vars


def _precedence_key(inventory: Inventory, group: str) -> tuple[int, int, str]:
    try:
        priority = int(_inventory_vars(inventory, group).get(GROUP_PRIORITY, DEFAULT_GROUP_PRIORITY))
    except (TypeError, ValueError):
        priority = DEFAULT_GROUP_PRIORITY
    depth = inventory.cached("depth", lambda: depths(inventory.groups))
    return (depth.get(group, 1), priority, group)


def lifted(values: dict[str, Any]) -> dict[str, Any]:
    """A variables mapping with the entries of its ``secrets:`` mapping lifted to the top level."""
    declared = values.get(SECRETS_KEY)
    if not isinstance(declared, Mapping):
        return values
    out = {k: v for k, v in values.items() if k != SECRETS_KEY}
    out.update(declared)
    return out


def update_vars(target: dict[str, Any], new: Mapping[str, Any]) -> None:
    """``target.update(new)``, except that ``secrets:`` mappings merge rather than replace."""
    old = target.get(SECRETS_KEY)
    target.update(new)
    added = new.get(SECRETS_KEY)
    if isinstance(old, Mapping) and isinstance(added, Mapping):
        target[SECRETS_KEY] = {**old, **added}
