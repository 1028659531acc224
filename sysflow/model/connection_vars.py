"""The connection variables an inventory may set (``ansible_port``, ``ansible_host``, ...) and the one
rule that says which values can be used: checked where a file is read (with ``file:line``) and
once more over a whole inventory before a run, never discovered by the run itself."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sysflow.errors import Problem
from sysflow.model.become import BECOME_VARS, become_var_problem

if TYPE_CHECKING:
    from sysflow.model.inventory import Inventory

__all__ = ["CONNECTION_VARS", "connection_var_problem", "inventory_problems"]

_PORT_VARS = frozenset({"ansible_port", "ansible_ssh_port"})
_NAME_VARS = frozenset({"ansible_host", "ansible_ssh_host", "ansible_user", "ansible_ssh_user"})
_TEXT_VARS = frozenset({"ansible_ssh_private_key_file"})
_ARGS_VARS = frozenset({"ansible_ssh_common_args", "ansible_ssh_extra_args"})
CONNECTION_VARS = _PORT_VARS | _NAME_VARS | _TEXT_VARS | _ARGS_VARS
"""The variables :func:`sysflow.model.ssh_config.resolve_connection` reads to reach a host."""
_CHECKED = CONNECTION_VARS | BECOME_VARS  # what inventory_problems checks


def connection_var_problem(key: str, value: Any) -> str | None:
    """Why ``value`` cannot be the connection variable ``key``; None if it can (or is unset, or
    ``key`` is no connection variable). Checked when an inventory is read, so a bad port is a
    ``file:line`` error of ``sysflow validate``, not a failure of the run. The ``ansible_become*``
    variables follow :func:`sysflow.model.become.become_var_problem`."""
    if key in BECOME_VARS:
        return become_var_problem(key, value)
    if value is None or key not in CONNECTION_VARS:
        return None
    if key in _PORT_VARS:
        try:
            port = int(value)
        except (TypeError, ValueError):
            port = 0
        if isinstance(value, bool | float) or not 0 < port < 65536:
            return f"{key} {value!r} is not a TCP port (an integer 1-65535)"
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        return f"{key} must be a string, not {type(value).__name__} {value!r}"
    text = str(value)
    if not text.strip():
        return f"{key} is empty"
    if key in _NAME_VARS and text.split() != [text]:  # a whitespace character anywhere
        return f"{key} {text!r} holds whitespace (a host or user name has none)"
    if key in _ARGS_VARS:
        try:
            shlex.split(text)
        except ValueError as exc:
            return f"{key} {text!r} cannot be split like a shell line: {exc}"
    return None


def inventory_problems(inv: Inventory) -> list[Problem]:
    """Every connection variable (``ansible_port``, ``ansible_host``, ...) that cannot be used,
    wherever it is set: ``all``, ``ungrouped``, a group, a host, ``group_vars/``, ``host_vars/``.

    The file readers report these with their ``file:line`` already; this catches the rest
    (variables directories, inventories built in Python) before a run rather than during it.
    """
    head = f"{inv.source}: " if inv.source else ""
    scopes: list[tuple[str, str, Mapping[str, Any]]] = [("group ", "all", inv.vars)]
    scopes.append(("group ", "ungrouped", inv.ungrouped_vars))
    scopes += [("group ", name, g.vars) for name, g in inv.groups.items()]
    scopes += [("host ", name, h.vars) for name, h in inv.hosts.items()]
    scopes += [("group_vars/", g, v) for g, v in inv.group_vars_dir.items()]
    scopes += [("host_vars/", h, v) for h, v in inv.host_vars_dir.items()]
    problems = []
    for kind, name, variables in scopes:
        for key in _CHECKED.intersection(variables):
            message = connection_var_problem(key, variables[key])
            if message is not None:
                problems.append(Problem(message, f"{head}{kind}{name}"))
    return problems
