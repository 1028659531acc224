"""Ansible YAML inventories, and JSON ones of the same shape, read as ansible-core's ``yaml`` plugin.

Groups map to ``hosts``, ``children`` and ``vars``; values keep their YAML types; ``!unsafe`` reads
as a plain string. The reader walks the composed node tree, so every problem knows its line. Where
Ansible only warns, it refuses: an unknown key in a group (``host:`` for ``hosts:``), a group that is
not a mapping, a connection variable that cannot be used (``ansible_port: 22x99``, at the line that
sets it). Text is bounded before it is composed (:mod:`sysflow.model.loader`): size, nesting depth
and alias expansion.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import yaml

from sysflow.errors import Problem
from sysflow.model.host_ranges import split_port
from sysflow.model.inventory import Inventory, connection_var_problem
from sysflow.model.inventory_builder import GROUP_KEYS, Edge, InventoryBuilder
from sysflow.model.loader import InputRefused, check_json_depth, check_text, check_yaml_events

__all__ = [
    "NO_VAULT",
    "InventoryLoader",
    "parse_json",
    "parse_yaml",
    "read_json",
    "read_yaml",
    "yaml_problem",
]

NO_VAULT = "secrets come from a credential provider"  # why Ansible Vault is not read
MAX_NESTING = 64  # deepest YAML group nesting followed before giving up (guards recursive aliases)

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_PLAIN_TAGS = frozenset({_STR, "tag:yaml.org,2002:int", "tag:yaml.org,2002:bool",
                         "tag:yaml.org,2002:null", "tag:yaml.org,2002:float"})  # fmt: skip

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~2x faster


class InventoryLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """SafeLoader (libyaml's when available) that also reads Ansible's ``!unsafe`` tag as a string."""


def _construct_unsafe(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]


InventoryLoader.add_constructor("!unsafe", _construct_unsafe)


def parse_yaml(text: str, source: str = "<yaml>") -> Inventory:
    """Parse an Ansible YAML inventory; raises InventoryError listing every problem."""
    builder = InventoryBuilder(source)
    read_yaml(builder, text)
    return builder.finish()


def parse_json(text: str, source: str = "<json>") -> Inventory:
    """Parse a JSON inventory shaped like a YAML one; raises InventoryError listing every problem."""
    builder = InventoryBuilder(source)
    read_json(builder, text)
    return builder.finish()


def yaml_problem(exc: yaml.YAMLError, source: str) -> Problem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"{source}:{mark.line + 1}" if mark is not None else source
    return Problem(f"bad YAML: {getattr(exc, 'problem', None) or exc}", where)


def _compose(text: str) -> tuple[yaml.Node | None, yaml.SafeLoader]:
    loader = InventoryLoader(text)
    return loader.get_single_node(), loader


def read_yaml(builder: InventoryBuilder, text: str) -> None:
    try:
        check_text(text, builder.source, "inventory")
        check_yaml_events(InventoryLoader(text), builder.source)  # depth and alias expansion bounded
    except InputRefused as exc:
        builder.problems.append(exc.problem)
        return
    try:
        root, loader = _compose(text)
    except yaml.YAMLError as exc:
        builder.problems.append(yaml_problem(exc, builder.source))
        return
    try:
        _YamlReader(builder, loader).read(root)
    finally:
        loader.dispose()


def read_json(builder: InventoryBuilder, text: str) -> None:
    try:
        check_text(text, builder.source, "inventory")
        check_json_depth(text, builder.source)
        check_yaml_events(InventoryLoader(text), builder.source)  # the tree composed below
    except InputRefused as exc:
        builder.problems.append(exc.problem)
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        builder.problem(f"bad JSON: {exc.msg}", exc.lineno)
        return
    try:
        root, loader = _compose(text)  # the same tree, with line numbers
    except yaml.YAMLError:  # JSON that YAML 1.1 cannot read: the same tree without line numbers
        root, loader = yaml.representer.SafeRepresenter().represent_data(data), InventoryLoader("")
    _YamlReader(builder, loader).read(root)


def _line(node: yaml.Node) -> int | None:
    mark = node.start_mark
    return mark.line + 1 if mark is not None else None


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return f"the scalar {node.value!r}"


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _pairs(node: yaml.MappingNode) -> Iterator[tuple[yaml.Node, yaml.Node]]:
    yield from node.value


class _YamlReader:
    """Walks the composed YAML node tree, so every problem knows its line."""

    def __init__(self, builder: InventoryBuilder, loader: yaml.SafeLoader) -> None:
        self.builder = builder
        self.loader = loader
        self.path: list[int] = []

    def read(self, root: yaml.Node | None) -> None:
        if root is None or _is_null(root):
            self.builder.problem("the inventory is empty", 1)
            return
        if not isinstance(root, yaml.MappingNode):
            self.builder.problem(f"an inventory is a mapping of groups, found {_kind(root)}", _line(root))
            return
        for key, _ in _pairs(root):
            if self._scalar(key) == "plugin":
                self.builder.problem(
                    "this is an inventory plugin configuration, not a YAML inventory", _line(key)
                )
                return
        for key, value in _pairs(root):
            name = self._name(key, "group")
            if name is not None:
                self.group(name, value)

    def _scalar(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            return None
        if node.tag == _STR:  # what construct_object makes of it, without its bookkeeping
            return node.value
        return self.loader.construct_object(node)

    def _name(self, node: yaml.Node, what: str) -> str | None:
        value = self._scalar(node)
        if not isinstance(value, str):
            shown = f"{value!r}" if value is not None else f"({_kind(node)})"
            self.builder.problem(f"{what} name {shown} must be a string (quote it)", _line(node))
            return None
        return value

    def group(self, name: str, node: yaml.Node) -> None:
        """One group: declare it, then read its hosts, children and vars."""
        if id(node) in self.path or len(self.path) > MAX_NESTING:
            self.builder.problem(f"group {name!r} nests too deeply (a recursive alias?)", _line(node))
            return
        self.builder.declare(name)
        if _is_null(node):
            return
        if not isinstance(node, yaml.MappingNode):
            self.builder.problem(
                f"group {name!r} must be a mapping of {', '.join(GROUP_KEYS)}; found {_kind(node)}",
                _line(node),
            )
            return
        self.path.append(id(node))
        for key, value in _pairs(node):
            self._section(name, key, value)
        self.path.pop()

    def _section(self, group: str, key: yaml.Node, value: yaml.Node) -> None:
        kind = self._scalar(key)
        if kind not in GROUP_KEYS:
            self.builder.problem(
                f"unknown key {kind!r} in group {group!r} (expected {', '.join(GROUP_KEYS)})", _line(key)
            )
            return
        entries = self._entries(group, kind, value)
        for entry_key, entry_value in entries:
            if kind == "hosts":
                self._host(group, entry_key, entry_value)
            elif kind == "children":
                self._child(group, entry_key, entry_value)
            else:
                self._var(group, entry_key, entry_value)

    def _entries(self, group: str, kind: str, node: yaml.Node) -> list[tuple[yaml.Node, yaml.Node | None]]:
        """A section's (key, value) nodes; a bare string stands for ``{string: null}`` as in Ansible."""
        if _is_null(node):
            return []
        if isinstance(node, yaml.MappingNode):
            return list(_pairs(node))
        if isinstance(node, yaml.ScalarNode) and isinstance(self._scalar(node), str):
            return [(node, None)]
        self.builder.problem(
            f"'{kind}' of group {group!r} must be a mapping, found {_kind(node)}", _line(node)
        )
        return []

    def _host(self, group: str, key: yaml.Node, value: yaml.Node | None) -> None:
        pattern = self._name(key, "host")
        if pattern is None:
            return
        variables: Any = {} if value is None or _is_null(value) else self._value(value)
        if not isinstance(variables, dict):
            self.builder.problem(f"variables of host {pattern!r} must be a mapping", _line(key))
            return
        port = split_port(pattern)[1]
        if port is not None:
            self._check_connection(f"host {pattern}", "ansible_port", port, None, key)
        for name, data in variables.items():
            self._check_connection(f"host {pattern}", name, data, value, key)
        self.builder.add_hosts(pattern, group, variables, _line(key))

    def _check_connection(
        self, owner: str, name: Any, data: Any, mapping: yaml.Node | None, fallback: yaml.Node
    ) -> None:
        """A connection variable that cannot be used is a problem of the line that sets it."""
        problem = connection_var_problem(name, data) if isinstance(name, str) else None
        if problem is None:
            return
        line = _line(fallback)
        if isinstance(mapping, yaml.MappingNode):
            for key_node, _ in _pairs(mapping):
                if isinstance(key_node, yaml.ScalarNode) and key_node.value == name:
                    line = _line(key_node)
        self.builder.problem(f"{owner}: {problem}", line)

    def _child(self, group: str, key: yaml.Node, value: yaml.Node | None) -> None:
        child = self._name(key, "group")
        if child is None:
            return
        self.group(child, value if value is not None else yaml.ScalarNode("tag:yaml.org,2002:null", ""))
        self.builder.add_child(Edge(group, child, _line(key) or 0))

    def _var(self, group: str, key: yaml.Node, value: yaml.Node | None) -> None:
        name = self._name(key, "variable")
        if name is None:
            return
        data = None if value is None else self._value(value)
        self._check_connection(f"group {group}", name, data, None, key)
        self.builder.set_group_vars(group, {name: data})

    def _flat_mapping(self, node: yaml.Node) -> dict[Any, Any] | None:
        """A mapping of plain scalars (the usual host variables) built by the constructors
        ``construct_object`` would call, without its generic walk; None for anything else (nested
        values, merge keys, other tags), which takes the generic path."""
        if not isinstance(node, yaml.MappingNode) or node.tag != _MAP:
            return None
        build, out = self.loader.yaml_constructors, {}
        for key, value in node.value:
            if not (isinstance(key, yaml.ScalarNode) and isinstance(value, yaml.ScalarNode)):
                return None
            if key.tag not in _PLAIN_TAGS or value.tag not in _PLAIN_TAGS:
                return None
            out[build[key.tag](self.loader, key)] = build[value.tag](self.loader, value)
        return out

    def _value(self, node: yaml.Node) -> Any:
        flat = self._flat_mapping(node)
        if flat is not None:
            return flat
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            reason = getattr(exc, "problem", None) or str(exc)
            if "!vault" in reason:
                reason = f"Ansible Vault values are not supported ({NO_VAULT})"
            self.builder.problem(f"cannot read value: {reason}", _line(node))
            return None
