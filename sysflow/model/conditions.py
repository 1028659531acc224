"""Conditions: a small, safe expression language for ``when:``, ``until:`` and state checks.

An expression is parsed with Python's :mod:`ast` (``mode="eval"``) and every node is checked against
a short allow-list before anything is evaluated: comparisons (``==``, ``<``, ``in``, ...),
``and``/``or``/``not``, literals (strings, numbers, booleans, None, lists, tuples), and names,
attributes and subscripts over the namespaces of the context (``vars``, ``facts``, ``results``,
``host``; state checks add ``json``, ``stdout``, ``rc``). The only calls are the two tests of the
language: ``matches(text, "regex")`` (a :func:`re.search`) and ``version(text)``, whose value
compares as a package version (:func:`sysflow.model.versions.compare_versions`). Nothing else can
be called, no name outside the namespaces exists, and no attribute starting with ``_`` is reachable,
so an expression can read the context and nothing more.

Attributes and subscripts both look keys up in mappings (``facts.os_family`` is
``facts["os_family"]``); a missing key is a :class:`ConditionError` naming the path, never a silent
false.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import total_ordering
from typing import Any

from sysflow.errors import SysflowError

__all__ = [
    "CONTEXT_ROOTS",
    "Condition",
    "ConditionError",
    "Reference",
    "Version",
    "parse_condition",
]

CONTEXT_ROOTS = frozenset({"vars", "facts", "results", "host"})
_FUNCTIONS = frozenset({"matches", "version"})
_CONSTANT_NAMES = {"true": True, "false": False, "none": None, "null": None}

_COMPARE: Mapping[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}
_ALLOWED = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.Compare,
    ast.Constant,
    ast.Name,
    ast.Load,
    ast.Attribute,
    ast.Subscript,
    ast.List,
    ast.Tuple,
    ast.Call,
    *_COMPARE,
)


class ConditionError(SysflowError, ValueError):
    """An expression that is not allowed, does not parse, or cannot be evaluated on this context.

    Part of the one tree (``SysflowError``); a ``ValueError`` so pydantic reports it as a field error.
    """


@dataclass(frozen=True, slots=True)
class Reference:
    """A key read from a namespace: ``vars.backup_dir`` is ``Reference("vars", "backup_dir")``."""

    root: str
    key: str | None  # None: the whole namespace (``host``, or a computed subscript)


@total_ordering
@dataclass(frozen=True, slots=True)
class Version:
    """A version string that compares as a package version (Debian or RPM order, picked by shape)."""

    text: str

    def _cmp(self, other: object) -> int:
        from sysflow.model.versions import compare_versions

        other_text = other.text if isinstance(other, Version) else str(other)
        return compare_versions(self.text, other_text)

    def __eq__(self, other: object) -> bool:
        return self._cmp(other) == 0

    def __lt__(self, other: object) -> bool:
        return self._cmp(other) < 0

    def __hash__(self) -> int:
        return hash(self.text)


@dataclass(frozen=True)
class Condition:
    """A checked expression; :meth:`evaluate` gives its truth over a context."""

    source: str
    tree: ast.Expression
    names: frozenset[str]

    def evaluate(self, context: Mapping[str, Any]) -> bool:
        """The expression's truth over ``context`` (namespace name -> mapping or value)."""
        return bool(self.value(context))

    def value(self, context: Mapping[str, Any]) -> Any:
        """The expression's value over ``context``; ConditionError if something is missing."""
        return _Evaluator(context).eval(self.tree.body)

    def references(self) -> Iterator[Reference]:
        """Every namespace key the expression reads (for checks before a run)."""
        yield from _references(self.tree)


def parse_condition(source: str, names: Sequence[str] | frozenset[str] = CONTEXT_ROOTS) -> Condition:
    """Parse and check ``source``; ``names`` are the namespaces it may read. Raises ConditionError."""
    text = source.strip()
    if not text:
        raise ConditionError("empty expression")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ConditionError(f"invalid expression {text!r}: {exc.msg}") from None
    allowed = frozenset(names)
    for node in ast.walk(tree):
        _check_node(node, allowed)
    return Condition(text, tree, allowed)


def _check_node(node: ast.AST, names: frozenset[str]) -> None:
    if not isinstance(node, _ALLOWED):
        raise ConditionError(f"{type(node).__name__} is not allowed in a condition")
    if isinstance(node, ast.Call):
        _check_call(node)
    elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
        raise ConditionError(f"attribute {node.attr!r} is not allowed (names starting with _ are private)")
    elif isinstance(node, ast.Constant) and isinstance(node.value, bytes | complex | type(...)):
        raise ConditionError(f"literal {node.value!r} is not allowed")
    elif (
        isinstance(node, ast.Name)
        and node.id not in names | _FUNCTIONS
        and node.id.lower() not in _CONSTANT_NAMES
    ):
        known = ", ".join(sorted(names))
        raise ConditionError(f"unknown name {node.id!r} (known: {known})")


def _check_call(node: ast.Call) -> None:
    func = node.func
    if not isinstance(func, ast.Name) or func.id not in _FUNCTIONS:
        shown = ast.unparse(func)
        raise ConditionError(f"calling {shown!r} is not allowed (only matches() and version())")
    if node.keywords:
        raise ConditionError(f"{func.id}() takes no keyword arguments")
    wanted = 2 if func.id == "matches" else 1
    if len(node.args) != wanted:
        raise ConditionError(f"{func.id}() takes {wanted} argument(s), got {len(node.args)}")
    if func.id == "matches":
        pattern = node.args[1]
        if isinstance(pattern, ast.Constant) and isinstance(pattern.value, str):
            try:
                re.compile(pattern.value)
            except re.error as exc:
                raise ConditionError(f"bad regex {pattern.value!r}: {exc}") from None


def _references(tree: ast.AST) -> Iterator[Reference]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute | ast.Subscript) and isinstance(node.value, ast.Name):
            key = _static_key(node)
            yield Reference(node.value.id, key)


def _static_key(node: ast.Attribute | ast.Subscript) -> str | None:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
        return node.slice.value
    return None


class _Evaluator:
    def __init__(self, context: Mapping[str, Any]) -> None:
        self.context = context

    def eval(self, node: ast.expr) -> Any:
        method: Callable[[Any], Any] = getattr(self, f"_{type(node).__name__}")
        return method(node)

    def _BoolOp(self, node: ast.BoolOp) -> Any:
        if isinstance(node.op, ast.And):
            return all(self.eval(v) for v in node.values)
        return any(self.eval(v) for v in node.values)

    def _UnaryOp(self, node: ast.UnaryOp) -> Any:
        value = self.eval(node.operand)
        return (not value) if isinstance(node.op, ast.Not) else -value

    def _Compare(self, node: ast.Compare) -> bool:
        left = self.eval(node.left)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = self.eval(comparator)
            try:
                if not _COMPARE[type(op)](left, right):
                    return False
            except TypeError as exc:
                raise ConditionError(f"cannot compare {left!r} and {right!r}: {exc}") from None
            left = right
        return True

    def _Constant(self, node: ast.Constant) -> Any:
        return node.value

    def _List(self, node: ast.List) -> list[Any]:
        return [self.eval(e) for e in node.elts]

    def _Tuple(self, node: ast.Tuple) -> tuple[Any, ...]:
        return tuple(self.eval(e) for e in node.elts)

    def _Name(self, node: ast.Name) -> Any:
        if node.id in self.context:
            return self.context[node.id]
        if node.id.lower() in _CONSTANT_NAMES:
            return _CONSTANT_NAMES[node.id.lower()]
        raise ConditionError(f"{node.id!r} is not defined here")

    def _Attribute(self, node: ast.Attribute) -> Any:
        return _lookup(self.eval(node.value), node.attr, node)

    def _Subscript(self, node: ast.Subscript) -> Any:
        return _lookup(self.eval(node.value), self.eval(node.slice), node)

    def _Call(self, node: ast.Call) -> Any:
        assert isinstance(node.func, ast.Name)  # checked at parse time
        args = [self.eval(a) for a in node.args]
        if node.func.id == "version":
            return Version(str(args[0]))
        try:
            return re.search(str(args[1]), str(args[0])) is not None
        except re.error as exc:
            raise ConditionError(f"bad regex {args[1]!r}: {exc}") from None


def _lookup(container: Any, key: Any, node: ast.expr) -> Any:
    """``container[key]``; errors name the expression's path (unparsed only then: it is slow)."""
    if isinstance(container, Mapping):
        if key in container:
            return container[key]
        raise ConditionError(f"{ast.unparse(node)} is undefined")
    if isinstance(container, list | tuple | str) and isinstance(key, int):
        try:
            return container[key]
        except IndexError:
            raise ConditionError(f"{ast.unparse(node)}: index {key} out of range") from None
    raise ConditionError(f"{ast.unparse(node)}: cannot look up {key!r} in a {type(container).__name__}")
