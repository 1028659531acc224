"""Ansible inventory files, INI, YAML and JSON, read as Ansible reads them.

The parsers mirror ansible-core's ``ini`` and ``yaml`` inventory plugins (2.16-2.19):

- INI: ``[group]``, ``[group:vars]``, ``[group:children]``; hosts before any section are ungrouped;
  ``host:port``; inline ``key=value`` host variables split like a shell line; every value typed
  with Python literal syntax as Ansible does (``2222`` is an int, ``True`` a bool, ``yes`` a
  string; inline, the shell split removes quotes first, so ``port="2222"`` is an int too); a group
  named in ``:children`` or ``:vars`` must be declared by a ``[group]`` or ``[group:children]``
  section (in this file or an earlier file of the same directory).
- YAML (and JSON of the same shape): groups map to ``hosts``, ``children`` and ``vars``; values
  keep their YAML types; ``!unsafe`` reads as a plain string.
- Host ranges: ``web[01:20]`` keeps the zero padding, ``db-[a:f]``, strides ``[1:10:2]``, several
  ranges in one name.
- Directories of inventory files, and ``group_vars/`` / ``host_vars/`` beside the inventory.

Not supported: dynamic inventory scripts and inventory plugins (a file is never executed),
Ansible Vault (secrets come from a credential provider), the TOML format.

Where Ansible only warns, these parsers refuse, because a silently dropped host is worse than a
loud error in a maintenance tool: an unknown key in a YAML group (``host:`` for ``hosts:``), a group
that is not a mapping, a descending range (``web[05:01]``, which Ansible expands to nothing).

Every problem is collected with its ``file:line`` and raised together as one
:class:`~sysflow.errors.InventoryError`.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
import string
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import yaml

from sysflow.errors import InventoryError, Problem
from sysflow.model.inventory import IMPLICIT_GROUPS, UNGROUPED, Inventory
from sysflow.model.loader import InputRefused, check_json_depth, check_text, check_yaml_events, read_bounded

__all__ = [
    "apply_vars_dirs",
    "expand_host_range",
    "inventory_error",
    "load_inventory",
    "parse_host_list",
    "parse_ini",
    "parse_json",
    "parse_yaml",
    "split_port",
]

YAML_SUFFIXES = frozenset({".yml", ".yaml"})
VARS_SUFFIXES = (".yml", ".yaml", ".json")  # Ansible's YAML_FILENAME_EXTENSIONS
# What Ansible skips when it reads an inventory directory (INVENTORY_IGNORE_EXTS and the always-ignored).
IGNORED_SUFFIXES = (
    ".pyc",
    ".pyo",
    ".swp",
    ".bak",
    "~",
    ".rpm",
    ".md",
    ".txt",
    ".rst",
    ".orig",
    ".cfg",
    ".retry",
)
_IGNORED_NAME = re.compile(r"^\.|^host_vars$|^group_vars$|^vars_plugins$")
_NO_VAULT = "secrets come from a credential provider"
JSON_SUFFIXES = frozenset({".json"})
INI_SUFFIXES = frozenset({".ini", ".cfg", ".hosts"})
GROUP_KEYS = ("hosts", "children", "vars")
MAX_NESTING = 64  # deepest YAML group nesting followed before giving up (guards recursive aliases)

_SECTION = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$")
_GROUP_NAME = re.compile(r"^([^:\]\s]+)\s*(?:#.*)?$")
_BRACKETED = re.compile(r"^\[([0-9A-Fa-f:.]+(?:%\w+)?)\](?::(\d+))?$")
_RANGES = re.compile(r"\[[^\]]*\]")
_DIGITS = re.compile(r"[0-9]+")
_YAML_KEY_LINE = re.compile(r"^[^\s\[#;=][^=]*:\s*(?:#.*)?$")


# -- shared pieces ------------------------------------------------------------------------------


class RangeError(ValueError):
    """A host range that cannot be expanded."""


def expand_host_range(pattern: str) -> list[str]:
    """Expand Ansible host ranges: ``web[01:03]`` -> web01, web02, web03; ``db-[a:c]``; ``[1:9:2]``.

    Raises :class:`RangeError` for malformed or descending ranges and non-positive strides.
    """
    if "[" not in pattern:
        return [pattern]
    head, sep, rest = pattern.partition("[")
    body, sep, tail = rest.partition("]")
    if not sep:
        raise RangeError(f"unclosed host range in {pattern!r}")
    return [name for item in _range_items(body, pattern) for name in expand_host_range(head + item + tail)]


def _range_items(body: str, pattern: str) -> list[str]:
    bounds = body.split(":")
    if len(bounds) not in (2, 3):
        raise RangeError(f"host range [{body}] in {pattern!r} must be begin:end or begin:end:step")
    beg, end = bounds[0] or "0", bounds[1]
    step = _range_step(bounds[2] if len(bounds) == 3 else "1", body, pattern)
    if not end:
        raise RangeError(f"host range [{body}] in {pattern!r} must specify an end value")
    if beg in string.ascii_letters and end in string.ascii_letters and len(beg) == len(end) == 1:
        return _letter_range(beg, end, step, body, pattern)
    return _number_range(beg, end, step, body, pattern)


def _range_step(text: str, body: str, pattern: str) -> int:
    if not _DIGITS.fullmatch(text) or int(text) < 1:
        raise RangeError(f"host range [{body}] in {pattern!r} has a bad step {text!r} (a positive integer)")
    return int(text)


def _letter_range(beg: str, end: str, step: int, body: str, pattern: str) -> list[str]:
    i_beg, i_end = string.ascii_letters.index(beg), string.ascii_letters.index(end)
    if i_beg > i_end:
        raise RangeError(f"host range [{body}] in {pattern!r} must have begin <= end")
    return list(string.ascii_letters[i_beg : i_end + 1 : step])


def _number_range(beg: str, end: str, step: int, body: str, pattern: str) -> list[str]:
    if not (_DIGITS.fullmatch(beg) and _DIGITS.fullmatch(end)):
        raise RangeError(f"host range [{body}] in {pattern!r} must be numbers or single letters")
    width = len(beg) if beg[0] == "0" and len(beg) > 1 else 0
    if width and width != len(end):
        raise RangeError(f"host range [{body}] in {pattern!r} must have begin and end of equal width")
    if int(beg) > int(end):
        raise RangeError(f"host range [{body}] in {pattern!r} must have begin <= end")
    return [str(i).zfill(width) for i in range(int(beg), int(end) + 1, step)]


def split_port(pattern: str) -> tuple[str, int | None]:
    """Split ``host:port`` (or ``[v6addr]:port``) as Ansible's ``parse_address`` would.

    Colons inside ``[...]`` ranges do not count; an address with two or more colons is IPv6 and
    has no port; a non-numeric suffix is left as part of the name.
    """
    m = _BRACKETED.match(pattern)
    if m and m.group(1).count(":") >= 2:
        return m.group(1), int(m.group(2)) if m.group(2) else None
    outside = _RANGES.sub("", pattern)
    if outside.count(":") != 1:
        return pattern, None
    head, _, port = pattern.rpartition(":")
    return (head, int(port)) if _DIGITS.fullmatch(port) and head else (pattern, None)


def inventory_error(problems: list[Problem], source: str) -> InventoryError:
    """An InventoryError whose ``source`` is set but not repeated before each located problem."""
    error = InventoryError(problems)
    error.source = source
    return error


@dataclass(frozen=True, slots=True)
class _Edge:
    """A parent -> child group relation and the line that declared it."""

    parent: str
    child: str
    line: int


class _Builder:
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

    def add_child(self, edge: _Edge) -> None:
        try:
            self.inventory.add_child(edge.parent, edge.child)
        except InventoryError as exc:
            for p in exc.problems:
                self.problem(p.message, edge.line)

    def finish(self) -> Inventory:
        if self.problems:
            raise inventory_error(self.problems, self.source)
        return self.inventory


# -- loading a file -----------------------------------------------------------------------------


_Reader = Callable[[_Builder, str], None]


def load_inventory(path: str | Path) -> Inventory:
    """Read an inventory file or directory, then its ``group_vars/`` and ``host_vars/``.

    A file's parser is chosen by extension, else by content. A directory is read as Ansible reads
    one: every file in it (recursively, sorted, skipping hidden files, ``group_vars``,
    ``host_vars`` and Ansible's ignored extensions) into one inventory. ``group_vars/`` and
    ``host_vars/`` beside the file (or inside the directory) are read as Ansible's
    ``host_group_vars`` plugin reads them; :meth:`Inventory.host_vars` layers them.

    Like ``ansible -i``, a string with a comma that names no file is a host list
    (``"web1,web2:2222,"``): its hosts are ungrouped.
    """
    if isinstance(path, str) and "," in path and not Path(path).expanduser().exists():
        return parse_host_list(path)
    root = Path(path).expanduser()
    inventory = Inventory(source=str(root))
    problems: list[Problem] = []
    for file in _inventory_files(root) if root.is_dir() else [root]:
        problems += _read_file(file, inventory)
    if not problems:
        problems += apply_vars_dirs(inventory, root if root.is_dir() else root.parent)
    if problems:
        raise inventory_error(problems, str(root))
    return inventory


def parse_host_list(text: str) -> Inventory:
    """Ansible's ``host_list`` source: comma-separated hosts, each with an optional ``:port``."""
    inventory = Inventory(source="host list")
    for item in text.split(","):
        if item.strip():
            name, port = split_port(item.strip())
            host = inventory.add_host(name)
            if port is not None:
                host.vars["ansible_port"] = port
    return inventory


def _read_file(file: Path, inventory: Inventory) -> list[Problem]:
    builder = _Builder(str(file), inventory)
    try:
        text = read_bounded(file, "inventory file")  # size, NUL and UTF-8 bounded (loader.py)
    except InputRefused as exc:
        return [exc.problem]
    except OSError as exc:
        builder.problem(f"cannot read inventory: {exc}", None)
        return builder.problems
    _reader_for(file, text)(builder, text)
    return builder.problems


def _inventory_files(directory: Path) -> list[Path]:
    files: list[Path] = []
    for entry in sorted(directory.iterdir()):
        if _IGNORED_NAME.search(entry.name) or entry.name.endswith(IGNORED_SUFFIXES):
            continue
        files += _inventory_files(entry) if entry.is_dir() else [entry]
    return files


def _reader_for(file: Path, text: str) -> _Reader:
    suffix = file.suffix.lower()
    if suffix in YAML_SUFFIXES:
        return _read_yaml
    if suffix in JSON_SUFFIXES:
        return _read_json
    if suffix in INI_SUFFIXES:
        return _read_ini
    return _sniff(text)


def _sniff(text: str) -> _Reader:
    """JSON if it opens with ``{``, YAML if its first line is ``---`` or a bare ``key:``, else INI."""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("{"):
            return _read_json
        if line == "---" or _YAML_KEY_LINE.match(line):
            return _read_yaml
        return _read_ini
    return _read_ini


# -- group_vars/ and host_vars/ -----------------------------------------------------------------


def apply_vars_dirs(inventory: Inventory, basedir: Path) -> list[Problem]:
    """Read ``basedir/group_vars/<group>`` and ``basedir/host_vars/<host>`` into the inventory.

    ``<name>`` may be a file (no extension, ``.yml``, ``.yaml`` or ``.json``) or a directory whose
    files are read in sorted order. Returns the problems found (bad YAML, not a mapping, Vault).
    """
    problems: list[Problem] = []
    for group in inventory.group_names():
        for data in _vars_files(basedir / "group_vars", group, problems):
            inventory.group_vars_dir.setdefault(group, {}).update(data)
    for name in inventory.hosts:
        if not name.startswith("/"):  # Ansible skips chroot-style names
            for data in _vars_files(basedir / "host_vars", name, problems):
                inventory.host_vars_dir.setdefault(name, {}).update(data)
    return problems


def _vars_files(directory: Path, name: str, problems: list[Problem]) -> list[dict[str, Any]]:
    if not directory.is_dir():
        return []
    found: list[dict[str, Any]] = []
    for file in _find_vars_files(directory, name):
        data = _read_vars_file(file, problems)
        if data:
            found.append(data)
    return found


def _find_vars_files(directory: Path, name: str) -> list[Path]:
    """Ansible's ``find_vars_files``: ``name`` with the first extension that exists, or a directory."""
    for ext in ("", *VARS_SUFFIXES):
        candidate = directory / f"{name}{ext}"
        if candidate.is_dir():
            return _vars_dir_files(candidate)
        if candidate.exists():
            return [candidate]
    return []


def _vars_dir_files(directory: Path) -> list[Path]:
    files: list[Path] = []
    for entry in sorted(directory.iterdir()):
        if entry.name.startswith(".") or entry.name.endswith("~"):
            continue
        if entry.is_dir() and not entry.suffix:
            files += _vars_dir_files(entry)
        elif entry.is_file() and (not entry.suffix or entry.suffix in VARS_SUFFIXES):
            files.append(entry)
    return files


def _read_vars_file(file: Path, problems: list[Problem]) -> dict[str, Any] | None:
    try:
        text = read_bounded(file, "variables file")
    except InputRefused as exc:
        problems.append(exc.problem)
        return None
    except OSError as exc:
        problems.append(Problem(f"cannot read variables: {exc}", str(file)))
        return None
    if text.lstrip().startswith("$ANSIBLE_VAULT"):
        problems.append(Problem(f"Ansible Vault files are not supported ({_NO_VAULT})", f"{file}:1"))
        return None
    try:
        check_yaml_events(_InventoryLoader(text), str(file))  # depth and alias expansion bounded
        data = yaml.load(text, Loader=_InventoryLoader)  # a SafeLoader: builds no arbitrary objects
    except InputRefused as exc:
        problems.append(exc.problem)
        return None
    except yaml.YAMLError as exc:
        problems.append(_yaml_problem(exc, str(file)))
        return None
    if data is not None and not isinstance(data, dict):
        problems.append(Problem("a variables file must be a mapping", f"{file}:1"))
        return None
    return data


# -- INI ----------------------------------------------------------------------------------------


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
    edges: list[_Edge] = field(default_factory=list)


def parse_ini(text: str, source: str = "<ini>") -> Inventory:
    """Parse an Ansible INI inventory; raises InventoryError listing every problem."""
    builder = _Builder(source)
    _read_ini(builder, text)
    return builder.finish()


def _read_ini(builder: _Builder, text: str) -> None:
    state = _IniState()
    state.declared.update(builder.inventory.groups)  # declared by earlier files of a directory
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line and line[0] not in "#;":
            _ini_line(builder, state, line, lineno)
    _ini_resolve(builder, state)


def _ini_line(builder: _Builder, state: _IniState, line: str, lineno: int) -> None:
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


def _ini_section(builder: _Builder, state: _IniState, group: str, kind: str, lineno: int) -> None:
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


def _ini_hosts(builder: _Builder, group: str, line: str, lineno: int) -> None:
    try:
        tokens = shlex.split(line, comments=True)
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
    if ok:
        builder.add_hosts(pattern, group, variables, lineno)


def _ini_vars(builder: _Builder, group: str, line: str, lineno: int) -> None:
    key, eq, value = line.partition("=")
    if not eq or not key.strip():
        builder.problem(f"expected key=value in [{group}:vars], got {line!r}", lineno)
        return
    builder.set_group_vars(group, {key.strip(): ini_value(value.strip())})


def _ini_child(builder: _Builder, state: _IniState, line: str, lineno: int) -> None:
    m = _GROUP_NAME.match(line)
    if not m:
        builder.problem(f"expected a group name in [{state.group}:children], got {line!r}", lineno)
        return
    state.edges.append(_Edge(state.group, m.group(1), lineno))


def _ini_resolve(builder: _Builder, state: _IniState) -> None:
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


# -- YAML and JSON ------------------------------------------------------------------------------


_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~2x faster


class _InventoryLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """SafeLoader (libyaml's when available) that also reads Ansible's ``!unsafe`` tag as a string."""


def _construct_unsafe(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]


_InventoryLoader.add_constructor("!unsafe", _construct_unsafe)


def parse_yaml(text: str, source: str = "<yaml>") -> Inventory:
    """Parse an Ansible YAML inventory; raises InventoryError listing every problem."""
    builder = _Builder(source)
    _read_yaml(builder, text)
    return builder.finish()


def parse_json(text: str, source: str = "<json>") -> Inventory:
    """Parse a JSON inventory shaped like a YAML one; raises InventoryError listing every problem."""
    builder = _Builder(source)
    _read_json(builder, text)
    return builder.finish()


def _yaml_problem(exc: yaml.YAMLError, source: str) -> Problem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"{source}:{mark.line + 1}" if mark is not None else source
    return Problem(f"bad YAML: {getattr(exc, 'problem', None) or exc}", where)


def _compose(text: str) -> tuple[yaml.Node | None, yaml.SafeLoader]:
    loader = _InventoryLoader(text)
    return loader.get_single_node(), loader


def _read_yaml(builder: _Builder, text: str) -> None:
    try:
        check_text(text, builder.source, "inventory")
        check_yaml_events(_InventoryLoader(text), builder.source)  # depth and alias expansion bounded
    except InputRefused as exc:
        builder.problems.append(exc.problem)
        return
    try:
        root, loader = _compose(text)
    except yaml.YAMLError as exc:
        builder.problems.append(_yaml_problem(exc, builder.source))
        return
    try:
        _YamlReader(builder, loader).read(root)
    finally:
        loader.dispose()


def _read_json(builder: _Builder, text: str) -> None:
    try:
        check_text(text, builder.source, "inventory")
        check_json_depth(text, builder.source)
        check_yaml_events(_InventoryLoader(text), builder.source)  # the tree composed below
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
        root, loader = yaml.representer.SafeRepresenter().represent_data(data), _InventoryLoader("")
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

    def __init__(self, builder: _Builder, loader: yaml.SafeLoader) -> None:
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
        self.builder.add_hosts(pattern, group, variables, _line(key))

    def _child(self, group: str, key: yaml.Node, value: yaml.Node | None) -> None:
        child = self._name(key, "group")
        if child is None:
            return
        self.group(child, value if value is not None else yaml.ScalarNode("tag:yaml.org,2002:null", ""))
        self.builder.add_child(_Edge(group, child, _line(key) or 0))

    def _var(self, group: str, key: yaml.Node, value: yaml.Node | None) -> None:
        name = self._name(key, "variable")
        if name is None:
            return
        data = None if value is None else self._value(value)
        self.builder.set_group_vars(group, {name: data})

    def _value(self, node: yaml.Node) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            reason = getattr(exc, "problem", None) or str(exc)
            if "!vault" in reason:
                reason = f"Ansible Vault values are not supported ({_NO_VAULT})"
            self.builder.problem(f"cannot read value: {reason}", _line(node))
            return None
