"""Comparators: judge a probe's before/after values against a :class:`ComparisonSpec` or desired state.

Every judgement is a frozen :class:`Verdict` carrying before, after, expected, an :class:`Outcome`
(PASS / FAIL / INCONCLUSIVE) with the reason, and a readable unified diff. INCONCLUSIVE means the
evidence is missing (a probe failed, no before-snapshot, a value that is not a number or version),
never that the check was lenient.

Kinds: ``equals``, ``not_equals``, ``regex_match``, ``contains``, ``changed``, ``unchanged``,
``version_increase`` / ``version_decrease`` / ``version_equal`` (Debian or RPM ordering),
``less_than`` / ``at_most`` / ``greater_than`` / ``at_least`` (or ``<``, ``<=``, ``>``, ``>=``, and
``==`` / ``!=`` for equals / not_equals), ``between``, ``json_subset``; an
``expected_change`` adds a before → after condition to any of them (the brief's
``regex_match`` + ``version_increase``). ``check_expect`` judges ``{nginx: active, openssl: ">= 3.0.11"}``.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sysflow.model.verification import ComparisonSpec
from sysflow.model.versions import VersionScheme, compare_versions
from sysflow.verify.parsers import Value
from sysflow.verify.probes import Snapshot

__all__ = [
    "Desired",
    "Outcome",
    "Verdict",
    "check_expect",
    "compare_snapshots",
    "compare_values",
    "parse_desired",
    "render_diff",
    "worst",
]

_DIFF_LINES = 200  # lines of unified diff kept per verdict
_CONSTRAINT = re.compile(r"^\s*(>=|<=|==|!=|>|<|=)\s*(\S+)\s*$")
_CHANGE_KINDS = frozenset({"changed", "unchanged", "version_increase", "version_decrease", "version_equal"})


class Outcome(StrEnum):
    """A verdict's result; only PASS is truthy, so ``if verdict.passed:`` reads as it should."""

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"

    def __bool__(self) -> bool:
        return self is Outcome.PASS

    @property
    def severity(self) -> int:
        """0 for PASS, 1 for INCONCLUSIVE, 2 for FAIL."""
        return _SEVERITY[self]


_SEVERITY = {Outcome.PASS: 0, Outcome.INCONCLUSIVE: 1, Outcome.FAIL: 2}


def worst(outcomes: Iterable[Outcome]) -> Outcome:
    """FAIL over INCONCLUSIVE over PASS; nothing at all is PASS."""
    return max(outcomes, key=lambda o: o.severity, default=Outcome.PASS)


@dataclass(frozen=True, slots=True)
class Verdict:
    """One check on one host: what was seen before and after, what was expected, and the outcome."""

    host: str
    check: str
    kind: str
    passed: Outcome
    before: Value = None
    after: Value = None
    expected: Value = None
    reason: str = ""
    diff: str = ""
    verification: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "verification": self.verification,
            "check": self.check,
            "kind": self.kind,
            "passed": self.passed.value,
            "before": self.before,
            "after": self.after,
            "expected": self.expected,
            "reason": self.reason,
            "diff": self.diff,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        return cls(
            host=str(data["host"]),
            check=str(data["check"]),
            kind=str(data["kind"]),
            passed=Outcome(data["passed"]),
            before=data.get("before"),
            after=data.get("after"),
            expected=data.get("expected"),
            reason=str(data.get("reason", "")),
            diff=str(data.get("diff", "")),
            verification=str(data.get("verification", "")),
        )


@dataclass(frozen=True, slots=True)
class _Case:
    """The values one comparator looks at (after any pattern extraction)."""

    spec: ComparisonSpec
    before: Value
    after: Value
    has_before: bool
    scheme: VersionScheme


_Result = tuple[Outcome, str]
_Comparator = Callable[[_Case], _Result]


def _text(value: Value) -> str:
    return value if isinstance(value, str) else json.dumps(value, indent=1, sort_keys=True)


def render_diff(
    before: Value, after: Value, *, before_label: str = "before", after_label: str = "after"
) -> str:
    """A unified diff of two values as text (JSON for structures); empty when they are equal."""
    if before == after:
        return ""
    lines = difflib.unified_diff(
        _text(before).splitlines(), _text(after).splitlines(), before_label, after_label, n=1, lineterm=""
    )
    out = list(lines)
    if len(out) > _DIFF_LINES:
        out = [*out[:_DIFF_LINES], f"... [{len(out) - _DIFF_LINES} more diff lines]"]
    return "\n".join(out)


def _extract(pattern: str | None, value: Value) -> Value:
    if pattern is None or value is None:
        return value
    m = re.search(pattern, _text(value), re.MULTILINE)
    if m is None:
        return None
    return m.group(1) if m.re.groups else m.group(0)


def _same(a: Value, b: Value) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.strip() == b.strip()
    na, nb = _number(a), _number(b)
    if na is not None and nb is not None and not (isinstance(a, str) and isinstance(b, str)):
        return na == nb
    return a == b


def _number(value: Value) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _reference(case: _Case) -> tuple[Value, bool]:
    """What equality kinds compare with: ``expected`` if given, else the before value."""
    if case.spec.expected is not None:
        return case.spec.expected, True
    return case.before, case.has_before


def _equals(case: _Case) -> _Result:
    ref, known = _reference(case)
    if not known:
        return Outcome.INCONCLUSIVE, "no expected value and no before-snapshot"
    if _same(case.after, ref):
        return Outcome.PASS, "equal"
    return Outcome.FAIL, f"{_short(case.after)} != {_short(ref)}"


def _not_equals(case: _Case) -> _Result:
    outcome, reason = _equals(case)
    if outcome is Outcome.INCONCLUSIVE:
        return outcome, reason
    if outcome is Outcome.PASS:
        return Outcome.FAIL, f"value is {_short(case.after)}"
    return Outcome.PASS, "differs"


def _regex_match(case: _Case) -> _Result:
    if case.spec.pattern is not None:
        if case.after is None:
            return Outcome.FAIL, f"pattern {case.spec.pattern!r} did not match"
        if case.spec.expected is not None and not _same(case.after, case.spec.expected):
            return Outcome.FAIL, f"matched {_short(case.after)}, expected {_short(case.spec.expected)}"
        return Outcome.PASS, f"matched {_short(case.after)}"
    if not isinstance(case.spec.expected, str):
        return Outcome.INCONCLUSIVE, "regex_match needs a pattern or a regex in expected"
    if case.after is not None and re.search(case.spec.expected, _text(case.after), re.MULTILINE):
        return Outcome.PASS, f"matches {case.spec.expected!r}"
    return Outcome.FAIL, f"does not match {case.spec.expected!r}"


def _contains(case: _Case) -> _Result:
    want, have = case.spec.expected, case.after
    if isinstance(have, dict) and isinstance(want, dict):
        found = _is_subset(want, have)
    elif isinstance(have, dict | list):
        found = want in have
    elif isinstance(have, str) and want is not None:
        found = _text(want) in have
    else:
        return Outcome.INCONCLUSIVE, f"cannot look for {_short(want)} in {_short(have)}"
    return (Outcome.PASS, "present") if found else (Outcome.FAIL, f"{_short(want)} not found")


def _changed(case: _Case) -> _Result:
    if not case.has_before:
        return Outcome.INCONCLUSIVE, "no before-snapshot"
    if _same(case.before, case.after):
        return Outcome.FAIL, "unchanged"
    return Outcome.PASS, "changed"


def _unchanged(case: _Case) -> _Result:
    outcome, reason = _changed(case)
    if outcome is Outcome.INCONCLUSIVE:
        return outcome, reason
    return (Outcome.PASS, "unchanged") if outcome is Outcome.FAIL else (Outcome.FAIL, "changed")


def _version_kind(direction: int, label: str) -> _Comparator:
    def judge(case: _Case) -> _Result:
        if not case.has_before:
            return Outcome.INCONCLUSIVE, "no before-snapshot"
        pairs = _version_pairs(case)
        if isinstance(pairs, str):
            return Outcome.INCONCLUSIVE, pairs
        results = [_version_step(key, b, a, direction, label, case.scheme) for key, b, a in pairs]
        outcome = worst(r[0] for r in results)
        return outcome, "; ".join(r[1] for r in results if r[0] is outcome)

    return judge


def _version_pairs(case: _Case) -> list[tuple[str, Value, Value]] | str:
    """(name, before, after) version pairs: one for scalars, the selected keys of package maps."""
    before, after = case.before, case.after
    if not isinstance(before, dict) and not isinstance(after, dict):
        return [("", before, after)]
    b = before if isinstance(before, dict) else {}
    a = after if isinstance(after, dict) else {}
    want = case.spec.expected
    keys = [want] if isinstance(want, str) else want if isinstance(want, list) else None
    if keys is None:
        return "name the package(s) to compare in expected"
    return [(str(k), b.get(str(k)), a.get(str(k))) for k in keys]


def _version_step(
    key: str, before: Value, after: Value, direction: int, label: str, scheme: VersionScheme
) -> _Result:
    who = f"{key}: " if key else ""
    if before is None and after is None:
        return Outcome.INCONCLUSIVE, f"{who}no version before or after"
    if after is None:
        ok = direction < 0
        return (Outcome.PASS if ok else Outcome.FAIL), f"{who}{before} → absent"
    if before is None:
        ok = direction > 0
        return (Outcome.PASS if ok else Outcome.FAIL), f"{who}absent → {after}"
    rc = compare_versions(str(before), str(after), scheme)
    if -rc == direction or (direction == 0 and rc == 0):
        return Outcome.PASS, f"{who}{before} → {after} ({label})"
    relation = {-1: "increased", 0: "stayed", 1: "decreased"}[rc]
    return Outcome.FAIL, f"{who}{before} → {after}: {relation}, expected {label}"


def _threshold(op: Callable[[float, float], bool], symbol: str) -> _Comparator:
    def judge(case: _Case) -> _Result:
        value, limit = _number(case.after), _number(case.spec.expected)
        if value is None or limit is None:
            return (
                Outcome.INCONCLUSIVE,
                f"not numbers: {_short(case.after)} {symbol} {_short(case.spec.expected)}",
            )
        ok = op(value, limit)
        return (Outcome.PASS if ok else Outcome.FAIL), f"{value:g} {symbol} {limit:g}" + (
            "" if ok else " is false"
        )

    return judge


def _between(case: _Case) -> _Result:
    low, high = case.spec.low, case.spec.high
    exp = case.spec.expected
    if (low is None or high is None) and isinstance(exp, list) and len(exp) == 2:
        low, high = _number(exp[0]), _number(exp[1])
    value = _number(case.after)
    if value is None or low is None or high is None:
        return Outcome.INCONCLUSIVE, "between needs a number and low/high"
    ok = low <= value <= high
    return (
        Outcome.PASS if ok else Outcome.FAIL
    ), f"{value:g} {'in' if ok else 'outside'} [{low:g}, {high:g}]"


def _is_subset(want: Value, have: Value) -> bool:
    if isinstance(want, dict):
        return isinstance(have, dict) and all(k in have and _is_subset(v, have[k]) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(have, list) and all(any(_is_subset(w, h) for h in have) for w in want)
    return _same(want, have)


def _json_subset(case: _Case) -> _Result:
    have = case.after
    if isinstance(have, str):
        try:
            have = json.loads(have)
        except json.JSONDecodeError:
            return Outcome.INCONCLUSIVE, "value is not JSON"
    if _is_subset(case.spec.expected, have):
        return Outcome.PASS, "expected JSON is a subset"
    return Outcome.FAIL, "expected JSON is not a subset"


_COMPARATORS: dict[str, _Comparator] = {
    "equals": _equals,
    "not_equals": _not_equals,
    "regex_match": _regex_match,
    "contains": _contains,
    "changed": _changed,
    "unchanged": _unchanged,
    "version_increase": _version_kind(1, "increase"),
    "version_decrease": _version_kind(-1, "decrease"),
    "version_equal": _version_kind(0, "equal"),
    "less_than": _threshold(lambda v, t: v < t, "<"),
    "at_most": _threshold(lambda v, t: v <= t, "<="),
    "greater_than": _threshold(lambda v, t: v > t, ">"),
    "at_least": _threshold(lambda v, t: v >= t, ">="),
    "between": _between,
    "json_subset": _json_subset,
}
_ALIASES = {
    "<": "less_than",
    "<=": "at_most",
    ">": "greater_than",
    ">=": "at_least",
    "==": "equals",
    "!=": "not_equals",
}
_COMPARATORS.update({symbol: _COMPARATORS[name] for symbol, name in _ALIASES.items()})


def _change_comparator(change: str, case: _Case) -> _Comparator:
    if change in {"increase", "decrease"}:
        numeric = _number(case.before) is not None and _number(case.after) is not None
        if numeric:
            return _numeric_change(1 if change == "increase" else -1)
        change = f"version_{change}"
    return _COMPARATORS[change]


def _numeric_change(direction: int) -> _Comparator:
    def judge(case: _Case) -> _Result:
        b, a = _number(case.before), _number(case.after)
        assert b is not None
        assert a is not None
        ok = (a - b) * direction > 0
        word = "increase" if direction > 0 else "decrease"
        return (Outcome.PASS if ok else Outcome.FAIL), f"{b:g} → {a:g}" + ("" if ok else f": no {word}")

    return judge


def _scheme(spec: ComparisonSpec, kind_hint: str) -> VersionScheme:
    if spec.version_scheme != "auto":
        return VersionScheme(spec.version_scheme)
    return {"dpkg": VersionScheme.DEBIAN, "rpm": VersionScheme.RPM}.get(kind_hint, VersionScheme.AUTO)


def compare_values(
    spec: ComparisonSpec,
    before: Value,
    after: Value,
    *,
    has_before: bool = True,
    check: str = "",
    host: str = "",
    kind_hint: str = "",
    verification: str = "",
) -> Verdict:
    """Judge ``before`` → ``after`` by ``spec``; ``has_before`` False when no before-snapshot exists."""
    b, a = _extract(spec.pattern, before), _extract(spec.pattern, after)
    case = _Case(spec, b, a, has_before, _scheme(spec, kind_hint))
    results = [_COMPARATORS[spec.type](case)]
    if spec.expected_change and spec.type not in _CHANGE_KINDS:
        results.append(_change_comparator(spec.expected_change, case)(case))
    outcome = worst(r[0] for r in results)
    reason = "; ".join(r[1] for r in results if r[0] is outcome)
    expected: Value = spec.expected if spec.expected is not None else spec.expected_change
    diff = render_diff(b, a) if has_before else ""
    if not diff and spec.expected is not None and outcome is Outcome.FAIL:
        diff = render_diff(spec.expected, a, before_label="expected", after_label="after")
    return Verdict(
        host, check, spec.type, outcome, b if has_before else None, a, expected, reason, diff, verification
    )


def compare_snapshots(
    check: str,
    spec: ComparisonSpec,
    before: Snapshot | None,
    after: Snapshot,
    *,
    verification: str = "",
) -> Verdict:
    """Judge probe ``check`` between two snapshots of one host; a failed probe is INCONCLUSIVE."""
    host = after.host
    kind = after.kinds.get(check, "")
    missing = _missing(check, after, "after") or (before is not None and _missing(check, before, "before"))
    if missing:
        return Verdict(
            host, check, spec.type, Outcome.INCONCLUSIVE, reason=missing, verification=verification
        )
    b = before.values[check] if before is not None else None
    return compare_values(
        spec,
        b,
        after.values[check],
        has_before=before is not None,
        check=check,
        host=host,
        kind_hint=kind,
        verification=verification,
    )


def _missing(check: str, snap: Snapshot, phase: str) -> str:
    if check in snap.errors:
        return f"probe failed {phase}: {snap.errors[check]}"
    if check not in snap.values:
        return f"no {phase} value for probe {check!r}"
    return ""


def _short(value: Value, limit: int = 60) -> str:
    text = _text(value).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class Desired:
    """One desired-state entry: an operator (``>=``, ``==``, ...) and a version, or a literal value."""

    op: str | None
    value: str


def parse_desired(text: str) -> Desired:
    """``">= 3.0.11"`` → Desired(">=", "3.0.11"); ``"active"`` → Desired(None, "active")."""
    m = _CONSTRAINT.match(text)
    if m is None:
        return Desired(None, text.strip())
    return Desired("==" if m.group(1) == "=" else m.group(1), m.group(2))


_OPS: dict[str, Callable[[int], bool]] = {
    ">=": lambda rc: rc >= 0,
    "<=": lambda rc: rc <= 0,
    ">": lambda rc: rc > 0,
    "<": lambda rc: rc < 0,
    "==": lambda rc: rc == 0,
    "!=": lambda rc: rc != 0,
}


def check_expect(expect: Mapping[str, str], snapshot: Snapshot, *, verification: str = "") -> list[Verdict]:
    """Judge a declared desired state against one snapshot, one verdict per entry."""
    return [_check_one(key, desired, snapshot, verification) for key, desired in expect.items()]


def _check_one(key: str, desired: str, snap: Snapshot, verification: str) -> Verdict:
    want = parse_desired(desired)
    found = _lookup(snap, key)
    kind = "desired_version" if want.op else "desired_state"
    if isinstance(found, str):
        return Verdict(
            snap.host,
            key,
            kind,
            Outcome.INCONCLUSIVE,
            expected=desired,
            reason=found,
            verification=verification,
        )
    outcome, reason = _judge_desired(want, found.value, found.scheme)
    diff = (
        ""
        if outcome is Outcome.PASS
        else render_diff(desired, found.value, before_label="expected", after_label="actual")
    )
    return Verdict(snap.host, key, kind, outcome, None, found.value, desired, reason, diff, verification)


@dataclass(frozen=True, slots=True)
class _Found:
    value: Value
    scheme: VersionScheme


def _lookup(snap: Snapshot, key: str) -> _Found | str:
    """Find ``key`` in a snapshot: its own ``expect:`` probe, a probe of that name, or a map entry."""
    for name in (f"expect:{key}", key):
        if name in snap.errors:
            return f"probe failed: {snap.errors[name]}"
        if name in snap.values:
            return _Found(_state_of(snap.values[name]), _kind_scheme(snap.kinds.get(name, "")))
    for name, value in snap.values.items():
        if isinstance(value, dict) and key in value:
            return _Found(_state_of(value[key]), _kind_scheme(snap.kinds.get(name, "")))
    return f"no probe captured {key!r}"


def _state_of(value: Value) -> Value:
    """``systemctl show`` maps stand for their ActiveState."""
    return value.get("ActiveState") if isinstance(value, dict) and "ActiveState" in value else value


def _kind_scheme(kind: str) -> VersionScheme:
    return {"dpkg": VersionScheme.DEBIAN, "rpm": VersionScheme.RPM}.get(kind, VersionScheme.AUTO)


def _judge_desired(want: Desired, value: Value, scheme: VersionScheme) -> _Result:
    if want.op is None:
        ok = value is not None and _same(value, want.value)
        return (Outcome.PASS if ok else Outcome.FAIL), f"is {_short(value)}, want {want.value}"
    if value is None:
        return Outcome.FAIL, f"not installed, want {want.op} {want.value}"
    if not isinstance(value, str):
        return Outcome.INCONCLUSIVE, f"not a version: {_short(value)}"
    ok = _OPS[want.op](compare_versions(value, want.value, scheme))
    return (Outcome.PASS if ok else Outcome.FAIL), f"{value} {want.op} {want.value}" + (
        "" if ok else " is false"
    )
