"""Hosts, groups and their variables, with Ansible-style host patterns.

``Inventory`` is built from Python (``add_group``, ``add_host``) or loaded from Ansible INI/YAML
inventories (``Inventory.load``). Host order is the order hosts were first seen, as Ansible keeps it.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from sysflow.errors import InventoryError, Problem

__all__ = ["Group", "Host", "Inventory"]

ALL = "all"
UNGROUPED = "ungrouped"


class Host(BaseModel):
    """One managed server: its inventory name, connection settings and variables."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    name: str = Field(description="Inventory name (what patterns and reports use).")
    vars: dict[str, Any] = Field(default_factory=dict, description="Host variables (ansible_* included).")

    @property
    def address(self) -> str:
        """Where to connect: ``ansible_host`` or the name (ssh_config may map it further)."""
        return str(self.vars.get("ansible_host", self.name))

    @property
    def port(self) -> int | None:
        port = self.vars.get("ansible_port")
        return int(port) if port is not None else None

    @property
    def user(self) -> str | None:
        user = self.vars.get("ansible_user")
        return str(user) if user is not None else None

    @property
    def key_file(self) -> str | None:
        key = self.vars.get("ansible_ssh_private_key_file")
        return str(key) if key is not None else None

    @property
    def datacenter(self) -> str | None:
        dc = self.vars.get("datacenter")
        return str(dc) if dc is not None else None

    @property
    def segment(self) -> str | None:
        """Network segment; defaults to the datacenter."""
        seg = self.vars.get("segment", self.vars.get("datacenter"))
        return str(seg) if seg is not None else None


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
    groups: dict[str, Group] = Field(default_factory=dict)
    source: str | None = Field(None, description="File the inventory was loaded from, for messages.")
    _memo: dict[str, Any] = PrivateAttr(default_factory=dict)

    # -- building -------------------------------------------------------------------------------

    def add_host(self, name: str, groups: Iterable[str] = (), **vars: Any) -> Host:
        """Add (or update) a host; ``vars`` become host variables (``datacenter="ams"``)."""
        host = self.hosts.get(name)
        if host is None:
            host = self.hosts[name] = Host(name=name)
        host.vars.update(vars)
        for g in groups:
            group = self._group(g)
            if name not in group.hosts:
                group.hosts.append(name)
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
        """Add (or extend) a group with member hosts, child groups and group variables."""
        if name in (ALL,):
            raise InventoryError([Problem(f"{name!r} is implicit and cannot be defined", f"group {name}")])
        group = self._group(name)
        for h in hosts:
            if h not in self.hosts:
                self.hosts[h] = Host(name=h)
            if h not in group.hosts:
                group.hosts.append(h)
        for c in children:
            self._group(c)
            if c not in group.children:
                group.children.append(c)
        group.vars.update(vars or {})
        self._memo.clear()
        return group

    def _group(self, name: str) -> Group:
        group = self.groups.get(name)
        if group is None:
            group = self.groups[name] = Group(name=name)
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

    def group_hosts(self, name: str) -> list[str]:
        """Every host of a group and of its descendants, in inventory order."""
        key = f"g:{name}"
        if key not in self._memo:
            if name == ALL:
                members: set[str] = set(self.hosts)
            else:
                members = set()
                seen: set[str] = set()
                stack = [name]
                while stack:
                    g = self.groups.get(stack.pop())
                    if g is None or g.name in seen:
                        continue
                    seen.add(g.name)
                    members.update(g.hosts)
                    stack.extend(g.children)
            self._memo[key] = [h for h in self.hosts if h in members]
        result: list[str] = self._memo[key]
        return result

    def host_groups(self, name: str) -> list[str]:
        """Every group a host belongs to, directly or through children, in definition order."""
        key = "hg"
        if key not in self._memo:
            index: dict[str, list[str]] = {h: [] for h in self.hosts}
            for g in self.groups:
                for h in self.group_hosts(g):
                    index[h].append(g)
            self._memo[key] = index
        groups: list[str] = self._memo[key].get(name, [])
        return groups

    def host_vars(self, name: str) -> dict[str, Any]:
        """Variables of a host: group vars (parents before children, in order), then host vars."""
        merged: dict[str, Any] = {}
        for g in self._groups_by_depth(self.host_groups(name)):
            merged.update(self.groups[g].vars)
        merged.update(self.host(name).vars)
        return merged

    def _groups_by_depth(self, groups: list[str]) -> list[str]:
        depth: dict[str, int] = {}

        def level(g: str, trail: frozenset[str] = frozenset()) -> int:
            if g not in depth:
                parents = [p.name for p in self.groups.values() if g in p.children and p.name not in trail]
                depth[g] = 1 + max((level(p, trail | {g}) for p in parents), default=0)
            return depth[g]

        return sorted(groups, key=level)

    # -- patterns --------------------------------------------------------------------------------

    def select(self, pattern: str | Iterable[str]) -> list[str]:
        """Host names matching an Ansible host pattern, in inventory order.

        ``all`` / ``*``, host or group names, globs (``web*``), ``~regex``, union ``a:b`` (or
        ``a,b``), intersection ``a:&b``, exclusion ``a:!b``. A list of patterns is a union.
        Terms that match nothing select nothing; :meth:`unmatched` reports them.
        """
        parts = [pattern] if isinstance(pattern, str) else list(pattern)
        terms = [t for p in parts for t in _split_pattern(p)]
        chosen: set[str] = set()
        plain = [t for t in terms if not t.startswith(("&", "!"))]
        for t in plain:
            chosen.update(self._term(t))
        for t in terms:
            if t.startswith("&"):
                chosen &= set(self._term(t[1:]))
        for t in terms:
            if t.startswith("!"):
                chosen -= set(self._term(t[1:]))
        return [h for h in self.hosts if h in chosen]

    def unmatched(self, pattern: str | Iterable[str]) -> list[str]:
        """The terms of a pattern that match no host or group (likely typos)."""
        parts = [pattern] if isinstance(pattern, str) else list(pattern)
        return [t for p in parts for t in _split_pattern(p) if not self._term(t.lstrip("&!"))]

    def _term(self, term: str) -> list[str]:
        if term in (ALL, "*"):
            return list(self.hosts)
        if term in self.groups:
            return self.group_hosts(term)
        if term in self.hosts:
            return [term]
        if term.startswith("~"):
            rx = re.compile(term[1:])
            names = [h for h in self.hosts if rx.search(h)]
            groups = [g for g in self.groups if rx.search(g)]
        else:
            names = [h for h in self.hosts if fnmatch.fnmatchcase(h, term)]
            groups = [g for g in self.groups if fnmatch.fnmatchcase(g, term)]
        out = set(names)
        for g in groups:
            out.update(self.group_hosts(g))
        return [h for h in self.hosts if h in out]


def _split_pattern(pattern: str) -> list[str]:
    """Split ``a:b:&c:!d`` / ``a,b`` into terms, leaving IPv6-free colons in regexes alone."""
    text = pattern.strip()
    if text.startswith("~"):
        return [text]
    sep = "," if "," in text else ":"
    return [t.strip() for t in text.split(sep) if t.strip()]
