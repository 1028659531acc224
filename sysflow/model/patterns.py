"""Ansible host patterns: which hosts of an inventory ``web*:&prod:!web03`` selects.

Selection follows ``InventoryManager.get_hosts``: ``,`` or ``:`` separated terms; unions first, then
``&`` intersections, then ``!`` exclusions; a term is a glob or a ``~regex`` (anchored at the start,
as ``re.match``) over group and host names, or a name, optionally subscripted (``web[0]``,
``web[1:3]``). The one deliberate difference: the result is in inventory order (the order hosts were
first seen), not in match order.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from sysflow.errors import InventoryError, Problem
from sysflow.model.groups import ALL

if TYPE_CHECKING:
    from sysflow.model.inventory import Inventory

__all__ = ["select_hosts", "split_host_pattern", "unmatched_terms"]

# A term followed by an index ``[2]``/``[-1]`` or a range ``[1:3]``/``[1:]`` (Ansible's syntax).
_SUBSCRIPT = re.compile(r"^(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]$")
# Ansible's ':'-separated pattern split: runs of non-separators or whole [..] expressions.
_COLON_TERMS = re.compile(r"(?:[^\s:\[\]]|\[[^\]]*\])+")
_GLOB_CHARS = (".", "?", "*", "[")

Subscript = tuple[int, int | None] | None
"""``(index, None)`` for ``[2]``, ``(start, end)`` for ``[1:3]`` (``-1``: to the end), None: none."""


def select_hosts(inventory: Inventory, pattern: str | Iterable[str]) -> list[str]:
    """Host names matching an Ansible host pattern, in inventory order (see :meth:`Inventory.select`)."""
    if not isinstance(pattern, str):
        pattern = list(pattern)
        if not pattern:
            return []
    chosen: set[str] = set()
    for term in _order_terms(split_host_pattern(pattern)):
        if term in inventory.hosts:
            chosen.add(term)
            continue
        that = set(_match_term(inventory, term))
        if term[0] == "!":
            chosen -= that
        elif term[0] == "&":
            chosen &= that
        else:
            chosen |= that
    return [h for h in inventory.hosts if h in chosen]


def unmatched_terms(inventory: Inventory, pattern: str | Iterable[str]) -> list[str]:
    """The terms of a pattern that match no host and no group name (likely typos)."""
    out: list[str] = []
    for term in split_host_pattern(pattern):
        expr, _ = _split_subscript(term.lstrip("&!"))
        if expr == ALL or term in inventory.hosts:
            continue
        hosts, groups = _enumerate(inventory, expr)
        if not hosts and not groups:
            out.append(term)
    return out


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


def _match_term(inventory: Inventory, term: str) -> list[str]:
    """Hosts of one term without its ``&``/``!`` prefix, subscript applied (cached per inventory)."""
    bare = term[1:] if term[0] in "&!" else term

    def compute() -> list[str]:
        expr, subscript = _split_subscript(bare)
        hosts, _ = _enumerate(inventory, expr)
        return _apply_subscript(hosts, subscript, bare)

    return inventory.cached(f"t:{bare}", compute)


def _enumerate(inventory: Inventory, expr: str) -> tuple[list[str], list[str]]:
    """(hosts, matching group names) of a name, glob or regex, as Ansible enumerates them."""
    rx = _compile_term(expr)
    groups = [g for g in inventory.group_names() if rx.match(g)]
    members: set[str] = set()
    for g in groups:
        members.update(inventory.group_hosts(g))
    if not groups or expr[0] == "~" or any(c in expr for c in _GLOB_CHARS):
        members.update(h for h in inventory.hosts if rx.match(h))
    return [h for h in inventory.hosts if h in members], groups


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


def _split_subscript(term: str) -> tuple[str, Subscript]:
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


def _apply_subscript(hosts: list[str], subscript: Subscript, term: str) -> list[str]:
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
