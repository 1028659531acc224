"""Ansible inventory sources, read as Ansible reads them: files, directories and host lists.

A file is read by the parser of its format, chosen by extension, else by content:
:mod:`sysflow.model.inventory_ini` (INI) or :mod:`sysflow.model.inventory_yaml` (YAML and JSON),
both mirroring ansible-core's plugins (2.16-2.19); host names may hold ranges
(:mod:`sysflow.model.host_ranges`). A directory is read file by file into one inventory, then
``group_vars/`` and ``host_vars/`` beside the inventory (:func:`apply_vars_dirs`).

Dynamic sources (inventory scripts, inventory plugins, HTTP CMDBs) are read by a
:class:`DynamicSources` the caller passes in (:mod:`sysflow.sources` provides it): a file it claims
is read by it and merged into the inventory like any other file; without it a file is never
executed. Not supported: Ansible Vault (secrets come from a credential provider), the TOML format.

Where Ansible only warns, these parsers refuse, because a silently dropped host is worse than a
loud error in a maintenance tool: an unknown key in a YAML group (``host:`` for ``hosts:``), a group
that is not a mapping, a descending range (``web[05:01]``, which Ansible expands to nothing).

Every problem is collected with its ``file:line`` and raised together as one
:class:`~sysflow.errors.InventoryError`. The names this module held before the parsers had modules
of their own (``parse_ini``, ``expand_host_range``, ...) are re-exported here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import yaml

from sysflow.errors import InventoryError, Problem
from sysflow.model.bulk import bulk_build
from sysflow.model.groups import ALL, UNGROUPED
from sysflow.model.host_ranges import RangeError, expand_host_range, split_port
from sysflow.model.inventory import Inventory
from sysflow.model.inventory_builder import InventoryBuilder, inventory_error
from sysflow.model.inventory_ini import ini_value, parse_ini, read_ini
from sysflow.model.inventory_yaml import (
    NO_VAULT,
    InventoryLoader,
    parse_json,
    parse_yaml,
    read_json,
    read_yaml,
    yaml_problem,
)
from sysflow.model.loader import InputRefused, check_yaml_events, read_bounded
from sysflow.model.variables import update_vars

__all__ = [
    "DynamicSources",
    "RangeError",
    "apply_vars_dirs",
    "expand_host_range",
    "ini_value",
    "inventory_error",
    "load_inventory",
    "merge_inventory",
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
JSON_SUFFIXES = frozenset({".json"})
INI_SUFFIXES = frozenset({".ini", ".cfg", ".hosts"})
_YAML_KEY_LINE = re.compile(r"^[^\s\[#;=][^=]*:\s*(?:#.*)?$")


_Reader = Callable[[InventoryBuilder, str], None]


class DynamicSources(Protocol):
    """Reads the files of an inventory that are not static: scripts, plugin configs, CMDB configs."""

    def claims(self, file: Path) -> bool:
        """Whether ``file`` is a dynamic source this reader reads (instead of a static parser)."""
        ...

    def read(self, file: Path) -> Inventory:
        """The inventory the source describes; raises InventoryError naming ``file``."""
        ...


def load_inventory(path: str | Path, dynamic: DynamicSources | None = None) -> Inventory:
    """Read an inventory file or directory, then its ``group_vars/`` and ``host_vars/``.

    A file's parser is chosen by extension, else by content. A directory is read as Ansible reads
    one: every file in it (recursively, sorted, skipping hidden files, ``group_vars``,
    ``host_vars`` and Ansible's ignored extensions) into one inventory. ``group_vars/`` and
    ``host_vars/`` beside the file (or inside the directory) are read as Ansible's
    ``host_group_vars`` plugin reads them; :meth:`Inventory.host_vars` layers them.

    Like ``ansible -i``, a string with a comma that names no file is a host list
    (``"web1,web2:2222,"``): its hosts are ungrouped. Files ``dynamic`` claims are read by it and
    merged in (:func:`merge_inventory`), in the same sorted order as the static files.
    """
    if isinstance(path, str) and "," in path and not Path(path).expanduser().exists():
        return parse_host_list(path)
    with bulk_build():  # a large inventory is a million objects that all live on
        return _load(Path(path).expanduser(), dynamic)


def _load(root: Path, dynamic: DynamicSources | None) -> Inventory:
    inventory = Inventory(source=str(root))
    problems: list[Problem] = []
    for file in _inventory_files(root) if root.is_dir() else [root]:
        if dynamic is not None and dynamic.claims(file):
            problems += _read_dynamic(dynamic, file, inventory)
        else:
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
    builder = InventoryBuilder(str(file), inventory)
    try:
        text = read_bounded(file, "inventory file")  # size, NUL and UTF-8 bounded (loader.py)
    except InputRefused as exc:
        return [exc.problem]
    except OSError as exc:
        builder.problem(f"cannot read inventory: {exc}", None)
        return builder.problems
    _reader_for(file, text)(builder, text)
    return builder.problems


def _read_dynamic(dynamic: DynamicSources, file: Path, inventory: Inventory) -> list[Problem]:
    try:
        merge_inventory(inventory, dynamic.read(file))
    except InventoryError as exc:
        return list(exc.problems)
    return []


def merge_inventory(target: Inventory, other: Inventory) -> None:
    """Add ``other``'s hosts, groups, children and variables to ``target``, as Ansible merges the
    sources of one inventory: later sources add members and override variables of the same name."""
    target.add_group(ALL, other.hosts, vars=other.vars)  # every host, in order, in one call
    for name, host in other.hosts.items():
        update_vars(target.hosts[name].vars, host.vars)  # not as keywords: 'name' is a fine variable
    target.add_group(UNGROUPED, vars=other.ungrouped_vars)
    for name, group in other.groups.items():
        target.add_group(name, group.hosts, vars=group.vars)
    for name, group in other.groups.items():
        for child in group.children:
            target.add_child(name, child)


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
        return read_yaml
    if suffix in JSON_SUFFIXES:
        return read_json
    if suffix in INI_SUFFIXES:
        return read_ini
    return _sniff(text)


def _sniff(text: str) -> _Reader:
    """JSON if it opens with ``{``, YAML if its first line is ``---`` or a bare ``key:``, else INI."""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("{"):
            return read_json
        if line == "---" or _YAML_KEY_LINE.match(line):
            return read_yaml
        return read_ini
    return read_ini


# -- group_vars/ and host_vars/ -----------------------------------------------------------------


def apply_vars_dirs(inventory: Inventory, basedir: Path) -> list[Problem]:
    """Read ``basedir/group_vars/<group>`` and ``basedir/host_vars/<host>`` into the inventory.

    ``<name>`` may be a file (no extension, ``.yml``, ``.yaml`` or ``.json``) or a directory whose
    files are read in sorted order. Returns the problems found (bad YAML, not a mapping, Vault).
    """
    problems: list[Problem] = []
    groups, hosts = basedir / "group_vars", basedir / "host_vars"
    for group in inventory.group_names() if groups.is_dir() else ():
        for data in _vars_files(groups, group, problems):
            inventory.group_vars_dir.setdefault(group, {}).update(data)
    for name in inventory.hosts if hosts.is_dir() else ():
        if not name.startswith("/"):  # Ansible skips chroot-style names
            for data in _vars_files(hosts, name, problems):
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
        problems.append(Problem(f"Ansible Vault files are not supported ({NO_VAULT})", f"{file}:1"))
        return None
    try:
        check_yaml_events(InventoryLoader(text), str(file))  # depth and alias expansion bounded
        data = yaml.load(text, Loader=InventoryLoader)  # a SafeLoader: builds no arbitrary objects
    except InputRefused as exc:
        problems.append(exc.problem)
        return None
    except yaml.YAMLError as exc:
        problems.append(yaml_problem(exc, str(file)))
        return None
    if data is not None and not isinstance(data, dict):
        problems.append(Problem("a variables file must be a mapping", f"{file}:1"))
        return None
    return data
