"""The JSON that Ansible's dynamic inventories print (``--list``), read into an :class:`Inventory`.

The shape is Ansible's script contract: each top-level key is a group, either a list of hosts or a
mapping with ``hosts``, ``children`` and ``vars``; ``_meta.hostvars`` maps each host to its
variables. ``ansible-inventory --list --export`` prints the same shape, so one reader serves both
the script source and the plugin source.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sysflow.errors import InventoryError, Problem
from sysflow.model.inventory import Inventory
from sysflow.model.inventory_builder import inventory_error
from sysflow.model.variables import update_vars

__all__ = ["META", "decode", "read_listing"]

META = "_meta"


def decode(text: str, source: str) -> dict[str, Any]:
    """The JSON object a source printed; InventoryError naming ``source`` when it is not one."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise inventory_error([Problem(f"printed invalid JSON: {exc}", source)], source) from None
    if not isinstance(data, dict):
        raise inventory_error([Problem("printed JSON that is not an object", source)], source)
    return data


def read_listing(data: Mapping[str, Any], source: str) -> Inventory:
    """Groups, children, group vars and ``_meta.hostvars`` of a ``--list`` answer."""
    inventory = Inventory(source=source)
    problems: list[Problem] = []
    for name, body in data.items():
        if name != META:
            problems += _read_group(inventory, name, body, source)
    for name, body in data.items():
        if name != META and isinstance(body, Mapping):
            problems += _read_children(inventory, name, body.get("children") or [], source)
    hostvars = _hostvars(data)
    for host, variables in hostvars.items():
        if not isinstance(variables, Mapping):
            problems.append(Problem(f"hostvars of {host!r} are not a mapping", source))
            continue
        update_vars(inventory.add_host(str(host)).vars, dict(variables))
    if problems:
        raise inventory_error(problems, source)
    return inventory


def _hostvars(data: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = data.get(META)
    if isinstance(meta, Mapping) and isinstance(meta.get("hostvars"), Mapping):
        return meta["hostvars"]  # type: ignore[no-any-return]
    return {}


def _read_group(inventory: Inventory, name: str, body: Any, source: str) -> list[Problem]:
    if isinstance(body, list):  # the short form: a group is the list of its hosts
        body = {"hosts": body}
    if not isinstance(body, Mapping):
        return [Problem(f"group {name!r} is neither a list of hosts nor a mapping", source)]
    hosts, variables = body.get("hosts") or [], body.get("vars") or {}
    if not isinstance(hosts, list) or not isinstance(variables, Mapping):
        return [Problem(f"group {name!r}: hosts must be a list and vars a mapping", source)]
    inventory.add_group(name, [str(h) for h in hosts], vars=dict(variables))
    return []


def _read_children(inventory: Inventory, name: str, children: Any, source: str) -> list[Problem]:
    if not isinstance(children, list):
        return [Problem(f"group {name!r}: children must be a list", source)]
    problems: list[Problem] = []
    for child in children:
        try:
            inventory.add_child(name, str(child))
        except InventoryError as exc:
            problems += [Problem(p.message, source) for p in exc.problems]
    return problems
