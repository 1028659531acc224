"""``sysflow inventory list|graph|host``: the merged inventory, static files and dynamic sources.

``list`` prints JSON in the shape of ``ansible-inventory --list`` (groups with their direct hosts and
children, ``_meta.hostvars`` with each host's merged variables), so the two can be compared;
``graph`` prints the group tree as ``ansible-inventory --graph`` does; ``host`` prints one host's
variables. Secret values are replaced by references (``{"$secret": NAME}``), never printed.
``--refresh`` asks remote sources (CMDBs) again instead of using their cache.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from sysflow.cli.inputs import _fail, _problem_lines
from sysflow.errors import SysflowError
from sysflow.model.groups import ALL, UNGROUPED
from sysflow.model.inventory import Inventory

__all__ = ["graph_lines", "inventory_app", "listing"]

inventory_app = typer.Typer(
    name="inventory",
    help="Show the merged inventory: static files, inventory scripts, plugins and CMDBs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

InventoryOpt = Annotated[Path, typer.Option("--inventory", "-i", help="Inventory file or directory.")]
RefreshOpt = Annotated[bool, typer.Option("--refresh", help="Ask CMDBs again instead of their cache.")]


def _load(path: Path, refresh: bool) -> Inventory:
    from sysflow.sources import DynamicReader, load_inventory  # httpx only when a command runs

    reader = DynamicReader(refresh=refresh)
    try:
        inventory = load_inventory(path, reader)
    except (SysflowError, OSError) as exc:
        raise _fail(_problem_lines(exc), f"cannot load inventory {path}") from None
    for warning in reader.warnings:
        typer.echo(f"warning: {warning}", err=True)
    return inventory.redacted()


def listing(inventory: Inventory) -> dict[str, Any]:
    """``ansible-inventory --list``'s shape: groups, children, and merged hostvars under ``_meta``."""
    out: dict[str, Any] = {"_meta": {"hostvars": inventory.all_host_vars()}}
    top = [g for g in inventory.groups if not any(g in p.children for p in inventory.groups.values())]
    ungrouped = [h for h in inventory.hosts if inventory.host_groups(h) == [UNGROUPED]]
    out[ALL] = {"children": [UNGROUPED, *top]}  # as ansible-inventory: ungrouped even when empty
    if ungrouped:
        out[UNGROUPED] = {"hosts": ungrouped}
    for name, group in inventory.groups.items():
        body: dict[str, Any] = {}
        if group.hosts:
            body["hosts"] = list(group.hosts)
        if group.children:
            body["children"] = list(group.children)
        out[name] = body
    return out


def graph_lines(inventory: Inventory, group: str = ALL) -> list[str]:
    """The group tree as ``ansible-inventory --graph`` draws it."""
    lines = [f"@{group}:"]
    _graph(inventory, group, 1, lines)
    return lines


def _graph(inventory: Inventory, group: str, depth: int, lines: list[str]) -> None:
    pad = "  |" * (depth - 1) + "  |--"
    if group == ALL:
        ungrouped = [h for h in inventory.hosts if inventory.host_groups(h) == [UNGROUPED]]
        children = [
            g for g in inventory.groups if not any(g in p.children for p in inventory.groups.values())
        ]
        children = [UNGROUPED, *children] if ungrouped else children
        hosts: list[str] = []
    elif group == UNGROUPED:
        children, hosts = [], [h for h in inventory.hosts if inventory.host_groups(h) == [UNGROUPED]]
    else:
        children, hosts = inventory.groups[group].children, inventory.groups[group].hosts
    for child in sorted(children):
        lines.append(f"{pad}@{child}:")
        _graph(inventory, child, depth + 1, lines)
    lines.extend(f"{pad}{h}" for h in sorted(hosts))


@inventory_app.command("list")
def list_command(inventory: InventoryOpt, refresh: RefreshOpt = False) -> None:
    """Every group and host with merged variables, as JSON (the shape of ansible-inventory --list)."""
    typer.echo(json.dumps(listing(_load(inventory, refresh)), indent=2, sort_keys=True, default=str))


@inventory_app.command("graph")
def graph_command(
    inventory: InventoryOpt,
    group: Annotated[str, typer.Argument(help="Group to draw from.")] = ALL,
    refresh: RefreshOpt = False,
) -> None:
    """The group tree with its hosts (as ansible-inventory --graph)."""
    inv = _load(inventory, refresh)
    if not inv.has_group(group):
        raise _fail([f"error: no group {group!r}"], f"cannot graph {inventory}")
    typer.echo("\n".join(graph_lines(inv, group)))


@inventory_app.command("host")
def host_command(
    inventory: InventoryOpt,
    name: Annotated[str, typer.Argument(help="Inventory host name.")],
    refresh: RefreshOpt = False,
) -> None:
    """One host's merged variables and groups, as JSON."""
    inv = _load(inventory, refresh)
    if name not in inv:
        raise _fail([f"error: unknown host {name!r}"], f"in inventory {inventory}")
    body = {"vars": inv.host_vars(name), "groups": inv.host_groups(name)}
    typer.echo(json.dumps(body, indent=2, sort_keys=True, default=str))
