"""Hosts, groups and their variables, with Ansible's host patterns.

``Inventory`` is built from Python (``add_group``, ``add_host``) or loaded from Ansible INI, YAML or
JSON inventories (``Inventory.load``; the parsers live in :mod:`sysflow.model.inventory_files`).
It follows Ansible's data model so that an inventory means here what it means to ``ansible``:

- ``all`` and ``ungrouped`` are implicit. They are not entries of :attr:`Inventory.groups`; ``all``
  holds every host and its variables are :attr:`Inventory.vars`; ``ungrouped`` holds the hosts that
  belong to no declared group and its variables are :attr:`Inventory.ungrouped_vars`.
- A host's variables are layered as Ansible's VariableManager layers them
  (:meth:`Inventory.host_vars`): ``all``, then its groups ordered by depth,
  ``ansible_group_priority`` and name; then ``group_vars/`` files in the same order; then the
  host's own variables, then ``host_vars/``. ``Host.datacenter``, ``Host.port`` and friends read
  these merged variables, so a ``datacenter`` set on a group applies to its hosts.
- ``Inventory.connection`` resolves where and as whom to connect, honouring an OpenSSH client
  config (:mod:`sysflow.model.ssh_config`).
- Host patterns (:meth:`Inventory.select`) follow ``InventoryManager.get_hosts``: ``,`` or ``:``
  separated terms; unions first, then ``&`` intersections, then ``!`` exclusions; a term is a glob
  or a ``~regex`` (anchored at the start, as ``re.match``) over group and host names, or a name,
  optionally subscripted (``web[0]``, ``web[1:3]``). The one deliberate difference: the result is
  in inventory order (the order hosts were first seen), not in match order.

Group nesting is kept acyclic: a child that would make a group its own ancestor is refused with an
:class:`~sysflow.errors.InventoryError` naming the cycle.

Secrets. A variable is secret when its name says so (``*_password``, ``*_pass``, ``*_token``,
``*_key``, ``secret_*``, ...: :func:`sysflow.model.templates.is_secret_name`), when a workflow
lists it under ``secrets:``, or when the inventory declares it under a ``secrets:`` mapping at any
level (host, group, ``all``, ``group_vars/``, ``host_vars/``)::

    web:
      hosts:
        web1:
          secrets: {db_password: "..."}    # host variable db_password, marked secret
      vars:
        secrets: {api_secret_value: "..."}  # group variable, marked secret

The entries of a ``secrets:`` mapping are ordinary variables of that level (``{{ vars.db_password
}}``): :meth:`Inventory.host_vars` lifts them out of the mapping (they win over a plain variable of
the same name at the same level). A secret is never stored: :meth:`Inventory.redacted_json` (what the
run store keeps) replaces each secret value by the reference ``{"$secret": "<name>"}``, and
:meth:`Inventory.restore_secrets` puts the values back on resume (from the caller, or from the
environment variable ``SYSFLOW_SECRET_<NAME>``), naming every variable it cannot find.
:meth:`Inventory.secret_problems` refuses secrets shorter than
:data:`~sysflow.model.templates.MIN_SECRET_LENGTH` characters, naming the variable and where it is
set, never the value.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import os
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from sysflow.errors import InventoryError, Problem
from sysflow.model.templates import MIN_SECRET_LENGTH, is_secret_name, secret_value

if TYPE_CHECKING:
    from sysflow.model.ssh_config import ConnectionSettings, SSHConfigSource

__all__ = [
    "ALL",
    "SECRETS_KEY",
    "SECRET_ENV_PREFIX",
    "SECRET_MARKER",
    "UNGROUPED",
    "Group",
    "Host",
    "Inventory",
    "SecretLookup",
    "env_secret_lookup",
    "split_host_pattern",
]

ALL = "all"
UNGROUPED = "ungrouped"
IMPLICIT_GROUPS = (ALL, UNGROUPED)
GROUP_PRIORITY = "ansible_group_priority"
DEFAULT_GROUP_PRIORITY = 1  # Ansible's default ansible_group_priority
SECRETS_KEY = "secrets"  # a variables mapping under this key declares secret variables
SECRET_MARKER = "$secret"  # the stored reference of a secret value: {"$secret": "<variable name>"}
SECRET_ENV_PREFIX = "SYSFLOW_SECRET_"  # resume reads a missing secret NAME from SYSFLOW_SECRET_<NAME>

SecretLookup = Callable[[str], "str | None"]
"""Where a redacted secret's value comes back from on resume: variable name -> value (None: unknown)."""

# A term followed by an index ``[2]``/``[-1]`` or a range ``[1:3]``/``[1:]`` (Ansible's syntax).
_SUBSCRIPT = re.compile(r"^(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]$")
# Ansible's ':'-separated pattern split: runs of non-separators or whole [..] expressions.
_COLON_TERMS = re.compile(r"(?:[^\s:\[\]]|\[[^\]]*\])+")
_GLOB_CHARS = (".", "?", "*", "[")


class Host(BaseModel):
    """One managed server: its inventory name and its own variables.

    The connection properties (``address``, ``port``, ...) read the variables merged with those of
    the host's groups when the host belongs to an inventory, and its own variables otherwise.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    name: str = Field(description="Inventory name (what patterns and reports use).")
    vars: dict[str, Any] = Field(default_factory=dict, description="Host variables (ansible_* included).")
    _inventory: Inventory | None = PrivateAttr(default=None)
    _resolved: dict[str, Any] | None = PrivateAttr(default=None)

    def effective_vars(self) -> dict[str, Any]:
        """The host's variables merged with its groups' (Ansible precedence)."""
        if self._inventory is not None and self._inventory.hosts.get(self.name) is self:
            return self._inventory.host_vars(self.name)
        if self._resolved is not None:
            return dict(self._resolved)
        return dict(self.vars)

    def __eq__(self, other: object) -> bool:
        # Compare what the host is, not the inventory it sits in (which would recurse).
        if not isinstance(other, Host):
            return NotImplemented
        return (self.name, self.vars) == (other.name, other.vars)

    __hash__ = None  # type: ignore[assignment]

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Host:
        """A detached copy that keeps the merged variables (its inventory is not copied along)."""
        copied = Host.model_construct(name=self.name, vars=copy.deepcopy(self.vars, memo))
        copied._resolved = self.effective_vars() if self._inventory is not None else self._resolved
        return copied

    def __getstate__(self) -> dict[Any, Any]:
        """Pickle without the inventory, keeping the merged variables (hosts travel to Ray actors)."""
        state = super().__getstate__()
        private = dict(state.get("__pydantic_private__") or {})
        if private.get("_inventory") is not None:
            private["_resolved"] = self.effective_vars()
        private["_inventory"] = None
        state["__pydantic_private__"] = private
        return state

    def _var(self, key: str) -> Any:
        return self.effective_vars().get(key)

    @property
    def address(self) -> str:
        """Where to connect: ``ansible_host`` or the name (ssh_config may map it further)."""
        value = self._var("ansible_host")
        return self.name if value is None else str(value)

    @property
    def port(self) -> int | None:
        """``ansible_port`` as an int, or None when unset."""
        return _as_port(self._var("ansible_port"), self.name)

    @property
    def user(self) -> str | None:
        value = self._var("ansible_user")
        return None if value is None else str(value)

    @property
    def key_file(self) -> str | None:
        value = self._var("ansible_ssh_private_key_file")
        return None if value is None else str(value)

    @property
    def datacenter(self) -> str | None:
        value = self._var("datacenter")
        return None if value is None else str(value)

    @property
    def segment(self) -> str | None:
        """Network segment; defaults to the datacenter."""
        merged = self.effective_vars()
        value = merged.get("segment", merged.get("datacenter"))
        return None if value is None else str(value)


def _as_port(value: Any, host: str) -> int | None:
    if value is None:
        return None
    try:
        port = int(value)
    except (TypeError, ValueError):
        port = -1
    if not 0 < port < 65536 or isinstance(value, bool | float):
        raise InventoryError([Problem(f"ansible_port {value!r} is not a TCP port", f"host {host}")])
    return port


class Group(BaseModel):
    """A named set of hosts with variables; groups nest through ``children``."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    name: str
    hosts: list[str] = Field(default_factory=list, description="Direct member host names, in order.")
    children: list[str] = Field(default_factory=list, description="Child group names.")
    vars: dict[str, Any] = Field(default_factory=dict)


class Inventory(BaseModel):
    """The fleet: hosts and groups, variables, and pattern selection."""

    model_config = ConfigDict(extra="forbid")

    hosts: dict[str, Host] = Field(default_factory=dict)
    groups: dict[str, Group] = Field(
        default_factory=dict, description="Declared groups (never the implicit 'all' and 'ungrouped')."
    )
    vars: dict[str, Any] = Field(default_factory=dict, description="Variables of the implicit 'all' group.")
    ungrouped_vars: dict[str, Any] = Field(
        default_factory=dict, description="Variables of the implicit 'ungrouped' group."
    )
    group_vars_dir: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Variables from group_vars/<group> beside the inventory, by group ('all' included).",
    )
    host_vars_dir: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Variables from host_vars/<host> beside the inventory, by host."
    )
    source: str | None = Field(None, description="File the inventory was loaded from, for messages.")
    _memo: dict[str, Any] = PrivateAttr(default_factory=dict)
    _members: dict[str, tuple[list[str], set[str]]] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        for host in self.hosts.values():
            host._inventory = self

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)
        for host in self.hosts.values():  # unpickled hosts belong to the unpickled inventory
            host._inventory = self

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Inventory:
        copied = super().__deepcopy__(memo)
        for host in copied.hosts.values():  # the copied hosts belong to the copy
            host._inventory = copied
        return copied

    def __eq__(self, other: object) -> bool:
        # Content equality; the memo and the source file name are not part of what the fleet is.
        if not isinstance(other, Inventory):
            return NotImplemented
        return self._content() == other._content()

    def _content(self) -> tuple[Any, ...]:
        return (
            self.hosts,
            self.groups,
            self.vars,
            self.ungrouped_vars,
            self.group_vars_dir,
            self.host_vars_dir,
        )

    __hash__ = None  # type: ignore[assignment]

    # -- loading ---------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path) -> Inventory:
        """Load an Ansible inventory file (INI, YAML or JSON, by extension or content)."""
        from sysflow.model.inventory_files import load_inventory

        return load_inventory(path)

    @classmethod
    def from_yaml_text(cls, text: str, source: str = "<yaml>") -> Inventory:
        """Parse an Ansible YAML inventory; ``source`` names it in problem locations."""
        from sysflow.model.inventory_files import parse_yaml

        return parse_yaml(text, source)

    @classmethod
    def from_json_text(cls, text: str, source: str = "<json>") -> Inventory:
        """Parse a JSON inventory with the shape of a YAML one."""
        from sysflow.model.inventory_files import parse_json

        return parse_json(text, source)

    @classmethod
    def from_ini_text(cls, text: str, source: str = "<ini>") -> Inventory:
        """Parse an Ansible INI inventory; ``source`` names it in problem locations."""
        from sysflow.model.inventory_files import parse_ini

        return parse_ini(text, source)

    # -- building -------------------------------------------------------------------------------

    def add_host(self, name: str, groups: Iterable[str] = (), **vars: Any) -> Host:
        """Add (or update) a host; ``vars`` become host variables (``datacenter="ams"``)."""
        host = self._host(name)
        _update_vars(host.vars, vars)
        for g in groups:
            if g not in IMPLICIT_GROUPS:
                self._add_member(self._group(g), name)
        self._memo.clear()
        return host

    def add_group(
        self,
        name: str,
        hosts: Iterable[str] = (),
        *,
        vars: Mapping[str, Any] | None = None,
        children: Iterable[str] = (),
    ) -> Group:
        """Add (or extend) a group with member hosts, child groups and group variables.

        ``all`` and ``ungrouped`` are accepted as Ansible accepts them: their hosts are simply added,
        their variables land in :attr:`vars` / :attr:`ungrouped_vars`, and the returned Group is a
        view (its ``vars`` is that dict; it is not stored in :attr:`groups`).
        Raises :class:`InventoryError` if a child would make a group its own ancestor.
        """
        if name in IMPLICIT_GROUPS:
            return self._add_implicit(name, hosts, vars or {}, children)
        group = self._group(name)
        for h in hosts:
            self._host(h)
            self._add_member(group, h)
        for c in children:
            self.add_child(name, c)
        _update_vars(group.vars, vars or {})
        self._memo.clear()
        return group

    def add_child(self, parent: str, child: str) -> None:
        """Make ``child`` a child group of ``parent``, refusing cycles as Ansible does."""
        if parent == ALL:  # every group is already below 'all'
            if child not in IMPLICIT_GROUPS:
                self._group(child)
            return
        if parent == UNGROUPED or child in IMPLICIT_GROUPS:
            raise InventoryError(
                [Problem(f"group {child!r} cannot be a child of {parent!r}", f"group {parent}")]
            )
        cycle = self._cycle_through(parent, child)
        if cycle:
            raise InventoryError(
                [
                    Problem(
                        f"group {child!r} would be its own ancestor: {' -> '.join(cycle)}", f"group {parent}"
                    )
                ]
            )
        self._group(child)
        _append_new(self._group(parent).children, child)
        self._memo.clear()

    def _add_implicit(
        self, name: str, hosts: Iterable[str], vars: Mapping[str, Any], children: Iterable[str]
    ) -> Group:
        for h in hosts:
            self._host(h)
        for c in children:
            self.add_child(name, c)
        target = self.vars if name == ALL else self.ungrouped_vars
        _update_vars(target, vars)
        self._memo.clear()
        return Group.model_construct(name=name, hosts=self.group_hosts(name), children=[], vars=target)

    def _cycle_through(self, parent: str, child: str) -> list[str]:
        """The path child -> ... -> parent -> child if adding the edge closes a cycle, else []."""
        if child == parent:
            return [parent, child]
        path = self._descent_path(child, parent)
        return [*path, child] if path else []

    def _descent_path(self, start: str, goal: str) -> list[str]:
        stack: list[tuple[str, list[str]]] = [(start, [start])]
        seen: set[str] = set()
        while stack:
            name, path = stack.pop()
            if name == goal:
                return path
            if name in seen or name not in self.groups:
                continue
            seen.add(name)
            stack.extend((c, [*path, c]) for c in reversed(self.groups[name].children))
        return []

    def _host(self, name: str) -> Host:
        host = self.hosts.get(name)
        if host is None:
            if not isinstance(name, str) or not name:
                raise InventoryError([Problem(f"host name {name!r} must be a non-empty string", "add_host")])
            host = self.hosts[name] = Host.model_construct(name=name, vars={})
            host._inventory = self
            self._memo.clear()
        return host

    def _add_member(self, group: Group, host: str) -> None:
        """Append ``host`` to ``group.hosts`` once; a set index keeps this O(1) for big groups."""
        entry = self._members.get(group.name)
        if entry is None or entry[0] is not group.hosts or len(entry[1]) != len(group.hosts):
            entry = self._members[group.name] = (group.hosts, set(group.hosts))
        if host not in entry[1]:
            group.hosts.append(host)
            entry[1].add(host)

    def _group(self, name: str) -> Group:
        group = self.groups.get(name)
        if group is None:
            group = self.groups[name] = Group(name=name)
            self._memo.clear()
        return group

    # -- queries ---------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.hosts)

    def __iter__(self) -> Iterator[Host]:  # type: ignore[override]
        return iter(self.hosts.values())

    def __contains__(self, name: object) -> bool:
        return name in self.hosts

    def host(self, name: str) -> Host:
        try:
            return self.hosts[name]
        except KeyError:
            raise InventoryError([Problem(f"unknown host {name!r}", self.source or "")]) from None

    def has_group(self, name: str) -> bool:
        """True for declared groups and for the implicit ``all`` and ``ungrouped``."""
        return name in self.groups or name in IMPLICIT_GROUPS

    def group_names(self) -> list[str]:
        """``all``, ``ungrouped`` and every declared group, in definition order."""
        return [*IMPLICIT_GROUPS, *self.groups]

    def group_hosts(self, name: str) -> list[str]:
        """Every host of a group and of its descendants, in inventory order."""
        key = f"g:{name}"
        if key not in self._memo:
            self._memo[key] = self._compute_group_hosts(name)
        result: list[str] = self._memo[key]
        return result

    def _compute_group_hosts(self, name: str) -> list[str]:
        if name == ALL:
            return list(self.hosts)
        if name == UNGROUPED:
            grouped = {h for g in self.groups.values() for h in g.hosts}
            return [h for h in self.hosts if h not in grouped]
        members: set[str] = set()
        for g in self._descendants(name):
            members.update(self.groups[g].hosts)
        return [h for h in self.hosts if h in members]

    def _descendants(self, name: str) -> list[str]:
        """The group and every group below it (each once), if it is declared."""
        seen: list[str] = []
        stack = [name]
        while stack:
            g = stack.pop()
            if g in self.groups and g not in seen:
                seen.append(g)
                stack.extend(self.groups[g].children)
        return seen

    def host_groups(self, name: str) -> list[str]:
        """Groups a host belongs to, directly or through children, in definition order.

        Like Ansible's ``group_names``: ``all`` is left out, ``ungrouped`` is included for hosts
        in no declared group.
        """
        key = "hg"
        if key not in self._memo:
            index: dict[str, list[str]] = {h: [] for h in self.hosts}
            for g in self.groups:
                for h in self.group_hosts(g):
                    index[h].append(g)
            for h in self.group_hosts(UNGROUPED):
                index[h].append(UNGROUPED)
            self._memo[key] = index
        groups: list[str] = self._memo[key].get(name, [])
        return groups

    def host_vars(self, name: str) -> dict[str, Any]:
        """Variables of a host as Ansible's VariableManager layers them; later layers win.

        1. ``all``'s inventory variables, then those of the host's groups sorted by (depth,
           ``ansible_group_priority``, name);
        2. ``group_vars/all``, then ``group_vars/<group>`` in the same group order;
        3. the host's inventory variables, then ``host_vars/<host>``.
        """
        return self._merge_host(self.host(name), {})

    def all_host_vars(self, names: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """:meth:`host_vars` of many hosts (all by default), sharing the work per set of groups.

        Computed afresh on every call, like :meth:`host_vars`; about twice as fast per host.
        """
        layers: dict[tuple[str, ...], dict[str, Any]] = {}
        hosts = self.hosts if names is None else {n: self.host(n) for n in names}
        return {name: self._merge_host(host, layers) for name, host in hosts.items()}

    def _merge_host(self, host: Host, layers: dict[tuple[str, ...], dict[str, Any]]) -> dict[str, Any]:
        groups = tuple(self.host_groups(host.name))
        layer = layers.get(groups)
        if layer is None:
            layer = layers[groups] = self._group_layer(groups)
        merged = dict(layer)
        merged.update(_lifted(host.vars))
        merged.update(_lifted(self.host_vars_dir.get(host.name, {})))
        return merged

    def _group_layer(self, groups: tuple[str, ...]) -> dict[str, Any]:
        """Layers 1 and 2 of :meth:`host_vars` for one set of groups."""
        ordered = sorted(groups, key=self._precedence_key)
        layer = dict(_lifted(self.vars))
        for g in ordered:
            layer.update(_lifted(self.ungrouped_vars if g == UNGROUPED else self.groups[g].vars))
        layer.pop(GROUP_PRIORITY, None)  # Ansible keeps it as the group's priority, not a variable
        for g in (ALL, *ordered):
            layer.update(_lifted(self.group_vars_dir.get(g, {})))
        return layer

    def _precedence_key(self, group: str) -> tuple[int, int, str]:
        group_vars = self.ungrouped_vars if group == UNGROUPED else self.groups[group].vars
        try:
            priority = int(group_vars.get(GROUP_PRIORITY, DEFAULT_GROUP_PRIORITY))
        except (TypeError, ValueError):
            priority = DEFAULT_GROUP_PRIORITY
        return (self._depths().get(group, 1), priority, group)

    def _depths(self) -> dict[str, int]:
        """Longest distance from ``all`` of every group (top-level groups are at depth 1)."""
        if "depth" not in self._memo:
            depth = dict.fromkeys(self.groups, 1)
            order = self._topological_groups()
            for g in order:
                for c in self.groups[g].children:
                    if c in depth:
                        depth[c] = max(depth[c], depth[g] + 1)
            depth[UNGROUPED] = 1
            self._memo["depth"] = depth
        result: dict[str, int] = self._memo["depth"]
        return result

    def _topological_groups(self) -> list[str]:
        """Groups with parents before children (cycles, if forced in by hand, are cut)."""
        order: list[str] = []
        state: dict[str, int] = {}
        for root in self.groups:
            stack: list[tuple[str, bool]] = [(root, False)]
            while stack:
                g, done = stack.pop()
                if done:
                    state[g] = 2
                    order.append(g)
                elif state.get(g, 0) == 0 and g in self.groups:
                    state[g] = 1
                    stack.append((g, True))
                    stack.extend((c, False) for c in self.groups[g].children)
        return order[::-1]

    # -- secrets ---------------------------------------------------------------------------------

    def _var_layers(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every variables mapping of the inventory with where it is set (for messages)."""
        yield f"group {ALL}", self.vars
        yield f"group {UNGROUPED}", self.ungrouped_vars
        for g, group in self.groups.items():
            yield f"group {g}", group.vars
        for g, values in self.group_vars_dir.items():
            yield f"group_vars/{g}", values
        for h, host in self.hosts.items():
            yield f"host {h}", host.vars
        for h, values in self.host_vars_dir.items():
            yield f"host_vars/{h}", values

    def secret_names(self) -> set[str]:
        """Names the inventory declares secret under a ``secrets:`` mapping, at any level."""
        names: set[str] = set()
        for _, values in self._var_layers():
            declared = values.get(SECRETS_KEY)
            if isinstance(declared, Mapping):
                names.update(str(k) for k in declared)
        return names

    def _secrets_of(self, values: Mapping[str, Any], declared: Collection[str]) -> Iterator[tuple[str, Any]]:
        """(name, value) of the secret variables of one mapping (``secrets:`` entries included)."""
        for key, value in values.items():
            if key == SECRETS_KEY and isinstance(value, Mapping):
                yield from ((str(k), v) for k, v in value.items())
            elif is_secret_name(str(key), declared):
                yield str(key), value

    def has_secrets(self, declared: Collection[str] = ()) -> bool:
        """Whether any variable holds a secret value (by its name, ``declared`` or a ``secrets:`` map)."""
        names = set(declared) | self.secret_names()
        return any(
            secret_value(value) is not None
            for _, values in self._var_layers()
            for _, value in self._secrets_of(values, names)
        )

    def secret_problems(self, declared: Collection[str] = ()) -> list[Problem]:
        """Secrets that cannot be masked safely: shorter than ``MIN_SECRET_LENGTH`` characters.

        ``declared`` adds names (a workflow's ``secrets:``). Each problem names the variable and
        where it is set (``host web1``, ``group web``, ``group_vars/all``), never the value. A
        ``secrets`` variable that is not a mapping is a problem too.
        """
        names = set(declared) | self.secret_names()
        problems: list[Problem] = []
        for where, values in self._var_layers():
            declared_here = values.get(SECRETS_KEY)
            if declared_here is not None and not isinstance(declared_here, Mapping):
                problems.append(Problem(f"{SECRETS_KEY!r} must map secret variable names to values", where))
            for name, value in self._secrets_of(values, names):
                text = secret_value(value)
                if text is not None and len(text) < MIN_SECRET_LENGTH:
                    problems.append(
                        Problem(
                            f"secret variable {name!r} is shorter than {MIN_SECRET_LENGTH} characters "
                            "(too short to mask in outputs; use a longer secret, or rename the variable "
                            "if it is not secret)",
                            where,
                        )
                    )
        return problems

    def redacted_json(self, declared: Collection[str] = ()) -> str:
        """This inventory as JSON with every secret value replaced by ``{"$secret": "<name>"}``.

        What the run store keeps: the inventory itself is not changed. ``declared`` adds names (a
        workflow's ``secrets:``) to those marked by their name or a ``secrets:`` mapping.
        """
        names = set(declared) | self.secret_names()
        data = self.model_dump(mode="json")
        data["vars"] = _redact_layer(data["vars"], names)
        data["ungrouped_vars"] = _redact_layer(data["ungrouped_vars"], names)
        for group in data["groups"].values():
            group["vars"] = _redact_layer(group["vars"], names)
        for host in data["hosts"].values():
            host["vars"] = _redact_layer(host["vars"], names)
        for key in ("group_vars_dir", "host_vars_dir"):
            data[key] = {k: _redact_layer(v, names) for k, v in data[key].items()}
        return json.dumps(data, separators=(",", ":"))

    def redacted(self, declared: Collection[str] = ()) -> Inventory:
        """A copy without secret values (references instead): see :meth:`redacted_json`."""
        return Inventory.model_validate_json(self.redacted_json(declared))

    def without_secrets(self, declared: Collection[str] = ()) -> Inventory:
        """The same as :meth:`redacted`."""
        return self.redacted(declared)

    def unresolved_secrets(self) -> list[tuple[str, str]]:
        """(variable, where) of every secret reference still standing in for a value."""
        found: list[tuple[str, str]] = []
        for where, values in self._var_layers():
            found.extend((name, where) for name, _ in _references(values))
        return found

    def restore_secrets(self, lookup: SecretLookup | None = None) -> None:
        """Put secret values back in place of their references (in place), e.g. on resume.

        ``lookup`` maps a variable name to its value (default: :func:`env_secret_lookup`, the
        environment variable ``SYSFLOW_SECRET_<NAME>``). Raises :class:`InventoryError` naming
        every variable (and where it is set) that has no value, so nothing runs with a reference
        in place of a secret. An inventory without references is left as it is.
        """
        lookup = lookup or env_secret_lookup
        problems: list[Problem] = []
        for where, values in self._var_layers():
            for name, holder in _references(values):
                value = lookup(name)
                if value is None:
                    env = _env_name(name)
                    problems.append(
                        Problem(
                            f"secret variable {name!r} is not stored with the run; pass the inventory "
                            f"again or set {env}",
                            where,
                        )
                    )
                else:
                    holder[name] = value
        if problems:
            raise InventoryError(problems)
        self._memo.clear()

    # -- connection ------------------------------------------------------------------------------

    def connection(self, name: str, ssh_config: SSHConfigSource = None) -> ConnectionSettings:
        """How ``ssh`` would connect to a host, from its variables and an OpenSSH client config.

        See :func:`sysflow.model.ssh_config.resolve_connection` for the precedence rules.
        """
        from sysflow.model.ssh_config import resolve_connection

        return resolve_connection(name, self.host_vars(name), ssh_config)

    # -- patterns --------------------------------------------------------------------------------

    def select(self, pattern: str | Iterable[str]) -> list[str]:
        """Host names matching an Ansible host pattern, in inventory order.

        ``all`` / ``*``, host or group names, globs (``web*``), ``~regex``, union ``a:b`` (or
        ``a,b``), intersection ``a:&b``, exclusion ``a:!b``, subscripts ``web[0]``/``web[0:2]``.
        Unions are applied first, then intersections, then exclusions; a pattern made only of
        intersections and exclusions starts from ``all``. A list of patterns is a union.
        Terms that match nothing select nothing; :meth:`unmatched` reports them. As in Ansible, an
        empty list selects nothing while an empty string (no union term) selects ``all``.
        """
        if not isinstance(pattern, str):
            pattern = list(pattern)
            if not pattern:
                return []
        chosen: set[str] = set()
        for term in _order_terms(split_host_pattern(pattern)):
            if term in self.hosts:
                chosen.add(term)
                continue
            that = set(self._match_term(term))
            if term[0] == "!":
                chosen -= that
            elif term[0] == "&":
                chosen &= that
            else:
                chosen |= that
        return [h for h in self.hosts if h in chosen]

    def unmatched(self, pattern: str | Iterable[str]) -> list[str]:
        """The terms of a pattern that match no host and no group name (likely typos)."""
        out: list[str] = []
        for term in split_host_pattern(pattern):
            expr, _ = _split_subscript(term.lstrip("&!"))
            if expr == ALL or term in self.hosts:
                continue
            hosts, groups = self._enumerate(expr)
            if not hosts and not groups:
                out.append(term)
        return out

    def _match_term(self, term: str) -> list[str]:
        """Hosts of one term without its ``&``/``!`` prefix, subscript applied."""
        bare = term[1:] if term[0] in "&!" else term
        key = f"t:{bare}"
        if key not in self._memo:
            expr, subscript = _split_subscript(bare)
            hosts, _ = self._enumerate(expr)
            self._memo[key] = _apply_subscript(hosts, subscript, bare)
        result: list[str] = self._memo[key]
        return result

    def _enumerate(self, expr: str) -> tuple[list[str], list[str]]:
        """(hosts, matching group names) of a name, glob or regex, as Ansible enumerates them."""
        rx = _compile_term(expr)
        groups = [g for g in self.group_names() if rx.match(g)]
        members: set[str] = set()
        for g in groups:
            members.update(self.group_hosts(g))
        if not groups or expr[0] == "~" or any(c in expr for c in _GLOB_CHARS):
            members.update(h for h in self.hosts if rx.match(h))
        return [h for h in self.hosts if h in members], groups


def _lifted(values: dict[str, Any]) -> dict[str, Any]:
    """A variables mapping with the entries of its ``secrets:`` mapping lifted to the top level."""
    declared = values.get(SECRETS_KEY)
    if not isinstance(declared, Mapping):
        return values
    lifted = {k: v for k, v in values.items() if k != SECRETS_KEY}
    lifted.update(declared)
    return lifted


def _update_vars(target: dict[str, Any], new: Mapping[str, Any]) -> None:
    """``target.update(new)``, except that ``secrets:`` mappings merge rather than replace."""
    old = target.get(SECRETS_KEY)
    target.update(new)
    added = new.get(SECRETS_KEY)
    if isinstance(old, Mapping) and isinstance(added, Mapping):
        target[SECRETS_KEY] = {**old, **added}


def _marker(name: str) -> dict[str, str]:
    return {SECRET_MARKER: name}


def _is_marker(value: Any) -> bool:
    return isinstance(value, Mapping) and len(value) == 1 and isinstance(value.get(SECRET_MARKER), str)


def _redact_layer(values: dict[str, Any], names: Collection[str]) -> dict[str, Any]:
    """One variables mapping with its secret values replaced by references (None and empty kept)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key == SECRETS_KEY and isinstance(value, Mapping):
            out[key] = {k: _marker(k) if secret_value(v) is not None else v for k, v in value.items()}
        elif is_secret_name(key, names) and secret_value(value) is not None:
            out[key] = _marker(key)
        else:
            out[key] = value
    return out


def _references(values: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(variable, the mapping that holds it) for each secret reference of one variables mapping."""
    for key, value in list(values.items()):
        if key == SECRETS_KEY and isinstance(value, dict):
            yield from ((str(k), value) for k, v in list(value.items()) if _is_marker(v))
        elif _is_marker(value):
            yield key, values


def _env_name(name: str) -> str:
    return SECRET_ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def env_secret_lookup(name: str) -> str | None:
    """A secret variable's value from the environment: ``SYSFLOW_SECRET_<NAME>`` (upper case,
    other characters than letters and digits as ``_``); None when unset."""
    return os.environ.get(_env_name(name))


def _append_new(items: list[str], item: str) -> None:
    if item not in items:
        items.append(item)


def split_host_pattern(pattern: str | Iterable[str]) -> list[str]:
    """Split a host pattern into terms as Ansible does.

    A list is split element by element. A string with commas splits on commas; otherwise it is
    one term if it is a host address (an IPv6 address, a name with a port), else it splits on
    colons outside ``[...]`` (so ``web[01:03]`` stays whole).
    """
    if not isinstance(pattern, str):
        return [t for p in pattern for t in split_host_pattern(p)]
    if "," in pattern:
        terms = pattern.split(",")
    elif _is_address(pattern.strip()):
        terms = [pattern]
    else:
        terms = _COLON_TERMS.findall(pattern)
    return [t.strip() for t in terms if t.strip()]


def _is_address(text: str) -> bool:
    """A bare or bracketed IPv6 address (which the colon split would break apart)."""
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    return bare.count(":") >= 2 and bool(re.fullmatch(r"[0-9A-Fa-f:.]+(?:%\w+)?", bare))


def _order_terms(terms: Sequence[str]) -> list[str]:
    """Unions, then intersections, then exclusions; no union means ``all``."""
    unions = [t for t in terms if t[0] not in "&!"]
    intersections = [t for t in terms if t[0] == "&"]
    exclusions = [t for t in terms if t[0] == "!"]
    return (unions or [ALL]) + intersections + exclusions


def _compile_term(expr: str) -> re.Pattern[str]:
    try:
        return re.compile(expr[1:] if expr[0] == "~" else fnmatch.translate(expr))
    except re.error as exc:
        raise InventoryError([Problem(f"invalid host pattern {expr!r}: {exc}", "pattern")]) from None


def _split_subscript(term: str) -> tuple[str, tuple[int, int | None] | None]:
    """``web[1:3]`` -> ("web", (1, 3)); ``web[2]`` -> ("web", (2, None)); regexes are left alone."""
    if not term or term[0] == "~":
        return term, None
    m = _SUBSCRIPT.match(term)
    if not m:
        return term, None
    expr, index, start, _sep, end = m.groups()
    if index:
        return expr, (int(index), None)
    return expr, (int(start), int(end) if end else -1)


def _apply_subscript(hosts: list[str], subscript: tuple[int, int | None] | None, term: str) -> list[str]:
    if not hosts or subscript is None:
        return hosts
    start, end = subscript
    try:
        if end:  # Ansible's test: a range ending at 0 behaves as the single index ``start``
            stop = len(hosts) - 1 if end == -1 else end
            return hosts[start : stop + 1]
        return [hosts[start]]
    except IndexError:
        raise InventoryError(
            [Problem(f"no hosts matched the subscripted pattern {term!r}", "pattern")]
        ) from None
