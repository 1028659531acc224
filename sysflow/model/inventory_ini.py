"""Ansible INI inventories, read as ansible-core's ``ini`` inventory plugin (2.16-2.19) reads them.

``[group]``, ``[group:vars]``, ``[group:children]``; hosts before any section are ungrouped;
``host:port``; inline ``key=value`` host variables split like a shell line; every value typed with
Python literal syntax as Ansible does (``2222`` is an int, ``True`` a bool, ``yes`` a string;
inline, the shell split removes quotes first, so ``port="2222"`` is an int too). A group named in
``:children`` or ``:vars`` must be declared by a ``[group]`` or ``[group:children]`` section (in
this file or an earlier file of the same directory). A connection variable that cannot be used
(``ansible_port=22x99``, a port past 65535, ``web01:0``) is a problem of its line.
"""

from __future__ import annotations

import ast
import re
import shlex
import warnings
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from sysflow.model.groups import IMPLICIT_GROUPS, UNGROUPED
from sysflow.model.host_ranges import split_port
from sysflow.model.inventory import Inventory, connection_var_problem
from sysflow.model.inventory_builder import GROUP_KEYS, Edge, InventoryBuilder

__all__ = ["ini_value", "literal_value", "parse_ini", "read_ini"]

_SECTION = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$")
_GROUP_NAME = re.compile(r"^([^:\]\s]+)\s*(?:#.*)?$")
_SHELL_SPECIAL = re.compile(r"[\'\"\\#]")  # quotes, escapes, comments: a line without them splits plainly
_SHELL_BLANKS = re.compile(r"[ \t\r\n]+")  # what shlex splits on
_PLAIN_INT = re.compile(r"-?(?:0|[1-9][0-9]*)\Z")  # literal_eval: an int
_PLAIN_TEXT = re.compile(  # literal_eval refuses: a name, a dotted name, a dotted quad
    r"(?:[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*|[0-9]+(?:\.[0-9]+){2,})\Z"
)
_LITERAL_NAMES = frozenset({"True", "False", "None"})


class _Section(Enum):
    """What the lines of the current INI section are."""

    HOSTS = "hosts"
    CHILDREN = "children"
    VARS = "vars"
    SKIPPED = "skipped"  # after a bad header: its lines are not read


@dataclass
class _IniState:
    """Where the INI reader is: the current section and what was declared or referenced."""

    group: str = UNGROUPED
    section: _Section = _Section.HOSTS
    declared: set[str] = field(default_factory=lambda: set(IMPLICIT_GROUPS))
    var_sections: list[tuple[str, int]] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)


def parse_ini(text: str, source: str = "<ini>") -> Inventory:
    """Parse an Ansible INI inventory; raises InventoryError listing every problem."""
    builder = InventoryBuilder(source)
    read_ini(builder, text)
    return builder.finish()


def read_ini(builder: InventoryBuilder, text: str) -> None:
    state = _IniState()
    state.declared.update(builder.inventory.groups)  # declared by earlier files of a directory
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line and line[0] not in "#;":
            _ini_line(builder, state, line, lineno)
    _ini_resolve(builder, state)


def _ini_line(builder: InventoryBuilder, state: _IniState, line: str, lineno: int) -> None:
    m = _SECTION.match(line)
    if m:
        _ini_section(builder, state, m.group(1), m.group(2) or "hosts", lineno)
    elif line.startswith("[") and line.endswith("]"):
        builder.problem(f"invalid section header {line!r}: no spaces or ':' inside a group name", lineno)
        state.section = _Section.SKIPPED
    elif state.section is _Section.HOSTS:
        _ini_hosts(builder, state.group, line, lineno)
    elif state.section is _Section.VARS:
        _ini_vars(builder, state.group, line, lineno)
    elif state.section is _Section.CHILDREN:
        _ini_child(builder, state, line, lineno)


def _ini_section(builder: InventoryBuilder, state: _IniState, group: str, kind: str, lineno: int) -> None:
    state.group, state.section = group, _Section.SKIPPED
    if kind not in GROUP_KEYS:
        builder.problem(
            f"section [{group}:{kind}] has unknown type {kind!r} (hosts, children or vars)", lineno
        )
    elif kind == "children" and group == UNGROUPED:
        builder.problem("the implicit group 'ungrouped' cannot have children", lineno)
    else:
        state.section = _Section(kind)
        if state.section is _Section.VARS:
            state.var_sections.append((group, lineno))
        else:
            state.declared.add(group)
            builder.declare(group)


def _shell_split(line: str) -> list[str]:
    """``shlex.split(line, comments=True)``, without shlex for the usual line (no quotes, escapes or
    comments: then shlex only splits on blanks)."""
    if _SHELL_SPECIAL.search(line) is None:
        return [t for t in _SHELL_BLANKS.split(line) if t]
    return shlex.split(line, comments=True)


def _ini_hosts(builder: InventoryBuilder, group: str, line: str, lineno: int) -> None:
    try:
        tokens = _shell_split(line)
    except ValueError as exc:
        builder.problem(f"cannot parse host line {line!r}: {exc}", lineno)
        return
    if not tokens or not tokens[0]:
        builder.problem(f"no host name in {line!r}", lineno)
        return
    pattern, variables, ok = tokens[0], {}, True
    if pattern.strip() == "---":
        builder.problem("host '---' is not valid: this looks like a YAML file read as INI", lineno)
        return
    if pattern.endswith(":") and split_port(pattern)[1] is None:
        builder.problem(f"host {pattern!r} ends in ':', which is reserved for a port", lineno)
        return
    for token in tokens[1:]:
        key, eq, value = token.partition("=")
        if not eq or not key:
            builder.problem(f"expected key=value host variable, got {token!r}", lineno)
            ok = False
            continue
        variables[key] = ini_value(value)
    port = split_port(pattern)[1]
    for key, value in ([("ansible_port", port)] if port is not None else []) + list(variables.items()):
        problem = connection_var_problem(key, value)
        if problem is not None:
            builder.problem(f"host {pattern}: {problem}", lineno)
    if ok:
        builder.add_hosts(pattern, group, variables, lineno)


def _ini_vars(builder: InventoryBuilder, group: str, line: str, lineno: int) -> None:
    key, eq, value = line.partition("=")
    if not eq or not key.strip():
        builder.problem(f"expected key=value in [{group}:vars], got {line!r}", lineno)
        return
    name, typed = key.strip(), ini_value(value.strip())
    problem = connection_var_problem(name, typed)
    if problem is not None:
        builder.problem(f"[{group}:vars]: {problem}", lineno)
    builder.set_group_vars(group, {name: typed})


def _ini_child(builder: InventoryBuilder, state: _IniState, line: str, lineno: int) -> None:
    m = _GROUP_NAME.match(line)
    if not m:
        builder.problem(f"expected a group name in [{state.group}:children], got {line!r}", lineno)
        return
    state.edges.append(Edge(state.group, m.group(1), lineno))


def _ini_resolve(builder: InventoryBuilder, state: _IniState) -> None:
    """Check :vars and :children references against declared groups, then link the children."""
    for group, lineno in state.var_sections:
        if group not in state.declared:
            builder.problem(f"section [{group}:vars] is not valid for undefined group {group!r}", lineno)
    for edge in state.edges:
        if edge.child not in state.declared:
            builder.problem(
                f"section [{edge.parent}:children] includes undefined group {edge.child!r}", edge.line
            )
        else:
            builder.add_child(edge)


def ini_value(text: str) -> Any:
    """Type an INI value as Ansible does: a Python literal if it is one, else the string."""
    if _PLAIN_INT.match(text):  # the usual values, typed without a parser
        return int(text)
    if _PLAIN_TEXT.match(text) and text not in _LITERAL_NAMES:
        return text
    return literal_value(text)


def literal_value(text: str) -> Any:
    """What Ansible's INI plugin does with a value: ``ini_value`` without its fast paths."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text
    return _plain(value)


def _plain(value: Any) -> Any:
    """Lists for tuples and sets, strings for what variables cannot hold (bytes, ..., complex)."""
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if value is Ellipsis:
        return "..."
    if isinstance(value, complex):
        return str(value)
    return value
