"""Hosts, groups and their variables: the fleet ``Inventory`` and its ``Host`` and ``Group``.

``Inventory`` is built from Python (``add_group``, ``add_host``) or loaded from Ansible INI, YAML or
JSON inventories (``Inventory.load``; the parsers live in :mod:`sysflow.model.inventory_files`).
It follows Ansible's data model so that an inventory means here what it means to ``ansible``:

- ``all`` and ``ungrouped`` are implicit. They are not entries of :attr:`Inventory.groups`; ``all``
  holds every host and its variables are :attr:`Inventory.vars`; ``ungrouped`` holds the hosts that
  belong to no declared group and its variables are :attr:`Inventory.ungrouped_vars`. Group nesting
  is kept acyclic (:mod:`sysflow.model.groups`): a child that would make a group its own ancestor is
  refused with an :class:`~sysflow.errors.InventoryError` naming the cycle.
- A host's variables are layered as Ansible's VariableManager layers them
  (:meth:`Inventory.host_vars`, :mod:`sysflow.model.variables`). ``Host.datacenter``, ``Host.port``
  and friends read these merged variables, so a ``datacenter`` set on a group applies to its hosts.
- ``Inventory.connection`` resolves where and as whom to connect, honouring an OpenSSH client
  config (:mod:`sysflow.model.ssh_config`).
- Host patterns (:meth:`Inventory.select`) follow Ansible's ``InventoryManager.get_hosts``
  (:mod:`sysflow.model.patterns`), in inventory order.
- Secret variables (``*_password``, a ``secrets:`` mapping, ...) are never stored: see
  :mod:`sysflow.model.secrets` for what is secret, :meth:`Inventory.redacted_json` and
  :meth:`Inventory.restore_secrets`.

The Inventory's methods are the API; the work is done by functions of those modules, which this
module re-exports where they were public here before (``ALL``, ``split_host_pattern``, ...).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from sysflow.errors import InventoryError, Problem
from sysflow.model import connection_vars, secrets
from sysflow.model.connection_vars import CONNECTION_VARS, connection_var_problem
from sysflow.model.groups import (
    ALL,
    IMPLICIT_GROUPS,
    UNGROUPED,
    child_problem,
    group_members,
    host_group_index,
)
from sysflow.model.patterns import select_hosts, split_host_pattern, unmatched_terms
from sysflow.model.secrets import (
    SECRET_ENV_PREFIX,
    SECRET_MARKER,
    SECRETS_KEY,
    SecretLookup,
    env_secret_lookup,
)
from sysflow.model.variables import GroupLayers, merged_vars, update_vars

if TYPE_CHECKING:
    from sysflow.model.inventory_files import DynamicSources
    from sysflow.model.ssh_config import ConnectionSettings, SSHConfigSource

__all__ = [
    "ALL",
    "CONNECTION_VARS",
    "SECRETS_KEY",
    "SECRET_ENV_PREFIX",
    "SECRET_MARKER",
    "UNGROUPED",
    "Group",
    "Host",
    "Inventory",
    "SecretLookup",
    "connection_var_problem",
    "env_secret_lookup",
    "split_host_pattern",
]

_T = TypeVar("_T")


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
    problem = connection_var_problem("ansible_port", value)
    if problem is not None:
        raise InventoryError([Problem(problem, f"host {host}")])
    return int(value)


def _member_host(name: str, inventory: Inventory) -> Host:
    """``Host.model_construct(name=name, vars={})`` with ``_inventory`` set, built directly: a
    60,000-host inventory spent a second in pydantic's generic construction (a test holds the two
    to the same result)."""
    host = Host.__new__(Host)
    _set = object.__setattr__
    _set(host, "__dict__", {"name": name, "vars": {}})
    _set(host, "__pydantic_fields_set__", {"name", "vars"})
    _set(host, "__pydantic_extra__", None)
    _set(host, "__pydantic_private__", {"_inventory": inventory, "_resolved": None})
    return host


def _member_set(index: dict[str, tuple[list[str], set[str]]], group: Group) -> set[str]:
    """The set index of ``group.hosts``, rebuilt when the list was replaced or changed behind it."""
    entry = index.get(group.name)
    if entry is None or entry[0] is not group.hosts or len(entry[1]) != len(group.hosts):
        entry = index[group.name] = (group.hosts, set(group.hosts))
    return entry[1]


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
        return (self.hosts, self.groups, self.vars, self.ungrouped_vars, self.group_vars_dir,
                self.host_vars_dir)  # fmt: skip

    __hash__ = None  # type: ignore[assignment]

    def cached(self, key: str, compute: Callable[[], _T]) -> _T:
        """``compute()``, kept under ``key`` until hosts or groups change (membership, patterns)."""
        memo = self._memo  # a private attribute: one read (each costs a pydantic __getattr__)
        if key not in memo:
            memo[key] = compute()
        return cast(_T, memo[key])

    # -- loading ---------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path, dynamic: DynamicSources | None = None) -> Inventory:
        """Load an Ansible inventory file (INI, YAML or JSON, by extension or content) or directory;
        ``dynamic`` reads its dynamic sources (``sysflow.sources.DynamicReader``)."""
        from sysflow.model.inventory_files import load_inventory

        return load_inventory(path, dynamic)

    @classmethod
    def from_yaml_text(cls, text: str, source: str = "<yaml>") -> Inventory:
        """Parse an Ansible YAML inventory; ``source`` names it in problem locations."""
        from sysflow.model.inventory_yaml import parse_yaml

        return parse_yaml(text, source)

    @classmethod
    def from_json_text(cls, text: str, source: str = "<json>") -> Inventory:
        """Parse a JSON inventory with the shape of a YAML one."""
        from sysflow.model.inventory_yaml import parse_json

        return parse_json(text, source)

    @classmethod
    def from_ini_text(cls, text: str, source: str = "<ini>") -> Inventory:
        """Parse an Ansible INI inventory; ``source`` names it in problem locations."""
        from sysflow.model.inventory_ini import parse_ini

        return parse_ini(text, source)

    # -- building -------------------------------------------------------------------------------

    def add_host(self, name: str, groups: Iterable[str] = (), **vars: Any) -> Host:
        """Add (or update) a host; ``vars`` become host variables (``datacenter="ams"``)."""
        known, groups = len(self.hosts), [g for g in groups if g not in IMPLICIT_GROUPS]
        host = self._host(name)
        update_vars(host.vars, vars)
        for g in groups:
            self._add_members(self._group(g), (name,))
        if groups or len(self.hosts) != known:  # the memo holds membership only, never variables
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
        self._add_members(group, hosts)
        self._memo.clear()
        for c in children:
            self.add_child(name, c)
        update_vars(group.vars, vars or {})
        self._memo.clear()
        return group

    def add_child(self, parent: str, child: str) -> None:
        """Make ``child`` a child group of ``parent``, refusing cycles as Ansible does."""
        if parent == ALL:  # every group is already below 'all'
            if child not in IMPLICIT_GROUPS:
                self._group(child)
            return
        problem = child_problem(self.groups, parent, child)
        if problem is not None:
            raise InventoryError([problem])
        self._group(child)
        if child not in (children := self._group(parent).children):
            children.append(child)
        self._memo.clear()

    def _add_implicit(
        self, name: str, hosts: Iterable[str], vars: Mapping[str, Any], children: Iterable[str]
    ) -> Group:
        for h in hosts:
            self._host(h)
        self._memo.clear()
        for c in children:
            self.add_child(name, c)
        target = self.vars if name == ALL else self.ungrouped_vars
        update_vars(target, vars)
        self._memo.clear()
        return Group.model_construct(name=name, hosts=self.group_hosts(name), children=[], vars=target)

    def _host(self, name: str) -> Host:
        """The host named ``name``, added when new (the caller clears ``_memo``: hosts changed)."""
        host = self.hosts.get(name)
        if host is None:
            if not isinstance(name, str) or not name:
                raise InventoryError([Problem(f"host name {name!r} must be a non-empty string", "add_host")])
            host = self.hosts[name] = _member_host(name, self)
        return host

    def _add_members(self, group: Group, hosts: Iterable[str]) -> None:
        """Add ``hosts`` (new ones to the inventory) to ``group.hosts``, each once; a set index
        keeps this O(1) for big groups."""
        members: set[str] | None = None
        for host in hosts:
            self._host(host)
            if members is None:
                members = _member_set(self._members, group)
            if host not in members:
                group.hosts.append(host)
                members.add(host)

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
        return self.cached(f"g:{name}", lambda: group_members(self, name))

    def host_groups(self, name: str) -> list[str]:
        """Groups a host belongs to, directly or through children, in definition order.

        Like Ansible's ``group_names``: ``all`` is left out, ``ungrouped`` is included for hosts
        in no declared group.
        """
        return self.cached("hg", lambda: host_group_index(self)).get(name, [])

    def host_vars(self, name: str) -> dict[str, Any]:
        """Variables of a host as Ansible's VariableManager layers them (:mod:`sysflow.model.variables`):
        ``all`` and the host's groups, then ``group_vars/``, then the host's own and ``host_vars/``."""
        return merged_vars(self, self.host(name), {})

    def all_host_vars(self, names: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """:meth:`host_vars` of many hosts (all by default), sharing the work per set of groups;
        computed afresh on every call, like :meth:`host_vars`."""
        layers: GroupLayers = {}
        hosts = self.hosts if names is None else {n: self.host(n) for n in names}
        index = self.cached("hg", lambda: host_group_index(self))  # what host_groups() reads
        return {name: merged_vars(self, host, layers, index.get(name, ())) for name, host in hosts.items()}

    # -- secrets (sysflow.model.secrets) ----------------------------------------------------------

    def secret_names(self) -> set[str]:
        """Names the inventory declares secret under a ``secrets:`` mapping, at any level."""
        return secrets.secret_names(self)

    def has_secrets(self, declared: Collection[str] = ()) -> bool:
        """Whether any variable holds a secret value (by its name, ``declared`` or a ``secrets:`` map)."""
        return secrets.has_secrets(self, declared)

    def secret_problems(self, declared: Collection[str] = ()) -> list[Problem]:
        """Secrets too short to mask (or a ``secrets`` that is no mapping), by variable and where set."""
        return secrets.secret_problems(self, declared)

    def redacted_json(self, declared: Collection[str] = ()) -> str:
        """This inventory as JSON with every secret value replaced by ``{"$secret": "<name>"}``
        (what the run store keeps; ``declared`` adds names, a workflow's ``secrets:``)."""
        return secrets.redacted_json(self, declared)

    def redacted(self, declared: Collection[str] = ()) -> Inventory:
        """A copy without secret values (references instead): see :meth:`redacted_json`."""
        return Inventory.model_validate_json(self.redacted_json(declared))

    def unresolved_secrets(self) -> list[tuple[str, str]]:
        """(variable, where) of every secret reference still standing in for a value."""
        return secrets.unresolved_secrets(self)

    def restore_secrets(self, lookup: SecretLookup | None = None) -> None:
        """Put secret values back in place of their references (in place), e.g. on resume.
        ``lookup`` maps a variable name to its value (default: ``SYSFLOW_SECRET_<NAME>``). Raises
        :class:`InventoryError` naming every variable without a value (none: left as it is)."""
        secrets.restore_secrets(self, lookup)
        self._memo.clear()

    # -- connection and patterns ------------------------------------------------------------------

    def connection(self, name: str, ssh_config: SSHConfigSource = None) -> ConnectionSettings:
        """How ``ssh`` would connect to a host, from its variables and an OpenSSH client config.

        See :func:`sysflow.model.ssh_config.resolve_connection` for the precedence rules.
        """
        from sysflow.model.ssh_config import resolve_connection

        return resolve_connection(name, self.host_vars(name), ssh_config)

    def connection_problems(self) -> list[Problem]:
        """Every connection variable that cannot be used, wherever it is set (see
        :func:`sysflow.model.connection_vars.inventory_problems`)."""
        return connection_vars.inventory_problems(self)

    def select(self, pattern: str | Iterable[str]) -> list[str]:
        """Host names matching an Ansible host pattern, in inventory order.

        ``all`` / ``*``, host or group names, globs (``web*``), ``~regex``, union ``a:b`` (or
        ``a,b``), intersection ``a:&b``, exclusion ``a:!b``, subscripts ``web[0]``/``web[0:2]``.
        Unions are applied first, then intersections, then exclusions; a pattern made only of
        intersections and exclusions starts from ``all``. A list of patterns is a union.
        Terms that match nothing select nothing; :meth:`unmatched` reports them. As in Ansible, an
        empty list selects nothing while an empty string (no union term) selects ``all``.
        """
        return select_hosts(self, pattern)

    def unmatched(self, pattern: str | Iterable[str]) -> list[str]:
        """The terms of a pattern that match no host and no group name (likely typos)."""
        return unmatched_terms(self, pattern)
