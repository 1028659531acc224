"""The condition language: what it accepts, what it refuses, and what it evaluates to."""

from __future__ import annotations

import re

import pytest

from sysflow.errors import WorkflowError
from sysflow.model.conditions import ConditionError, Reference, Version, parse_condition
from sysflow.model.workflow import MaintenanceWorkflow

CTX = {
    "vars": {"tier": "gold", "replicas": 3, "zones": ["a", "b"]},
    "facts": {"os_family": "RedHat", "kernel": "5.14.0-427.el9.x86_64", "distribution_version": "9.4"},
    "results": {"disk": {"stdout": "91% used\n", "rc": 0, "ok": True}},
    "host": {"name": "web01", "groups": ["web"]},
}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("facts.os_family == 'RedHat'", True),
        ("facts.os_family in ['Debian', 'Ubuntu']", False),
        ("not (vars.replicas > 2) or vars.tier == 'gold'", True),
        ("vars.replicas >= 3 and vars.replicas < 4", True),
        ("1 < vars.replicas < 3", False),
        ("'web' in host.groups", True),
        ("'c' not in vars.zones", True),
        ("vars['tier'] != 'silver'", True),
        ("vars.zones[0] == 'a'", True),
        ("matches(results.disk.stdout, '^9[0-9]%')", True),
        ("matches(results.disk.stdout, '^[0-8][0-9]%')", False),
        ("version(facts.distribution_version) >= '9.2'", True),
        ("version(facts.kernel) < '5.14.0-503.el9'", True),
        ("version('1.2') == version('1.2')", True),
        ("results.disk.ok is True and -1 < 0", True),
        ("true and not false and none is None", True),
    ],
)
def test_expressions_evaluate_over_the_context(expr: str, expected: bool) -> None:
    assert parse_condition(expr).evaluate(CTX) is expected


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("open('/etc/passwd')", "calling 'open' is not allowed"),
        ("vars.__class__", "names starting with _"),
        ("().__class__.__bases__", "not allowed"),
        ("__import__('os').system('id')", "is not allowed (only matches() and version())"),
        ("vars.tier.upper()", "calling 'vars.tier.upper' is not allowed"),
        ("[x for x in vars.zones]", "ListComp is not allowed"),
        ("lambda: 1", "Lambda is not allowed"),
        ("os.system", "unknown name 'os'"),
        ("vars.replicas + 1 > 2", "BinOp is not allowed"),
        ("facts.os_family ==", "invalid expression"),
        ("   ", "empty expression"),
        ("matches(vars.tier)", "takes 2 argument(s)"),
        ("version(x='1')", "no keyword arguments"),
        ("matches(vars.tier, '(')", "bad regex"),
        ("b'x' == vars.tier", "literal b'x' is not allowed"),
    ],
)
def test_anything_beyond_the_language_is_refused_at_parse_time(expr: str, message: str) -> None:
    with pytest.raises(ConditionError, match=re.escape(message)):
        parse_condition(expr)


def test_missing_keys_and_bad_comparisons_are_errors_not_false() -> None:
    with pytest.raises(ConditionError, match=r"facts.nope is undefined"):
        parse_condition("facts.nope == 1").evaluate(CTX)
    with pytest.raises(ConditionError, match="cannot compare"):
        parse_condition("vars.tier > 3").evaluate(CTX)
    with pytest.raises(ConditionError, match="index 5 out of range"):
        parse_condition("vars.zones[5] == 'a'").evaluate(CTX)
    with pytest.raises(ConditionError, match="cannot look up"):
        parse_condition("vars.replicas.x == 1").evaluate(CTX)
    with pytest.raises(ConditionError, match="'result' is not defined here"):
        parse_condition("result.ok", frozenset({"result"})).evaluate({})


def test_dynamic_regex_errors_surface_at_evaluation() -> None:
    cond = parse_condition("matches(vars.tier, vars.pattern)")
    with pytest.raises(ConditionError, match="bad regex"):
        cond.evaluate({"vars": {"tier": "x", "pattern": "("}})


def test_references_name_what_a_condition_reads() -> None:
    cond = parse_condition(
        "facts.os_family == 'Debian' and vars['tier'] == results.x.stdout and vars[host.name]"
    )
    refs = set(cond.references())
    assert {Reference("facts", "os_family"), Reference("vars", "tier"), Reference("results", "x")} <= refs
    assert Reference("vars", None) in refs


def test_versions_compare_as_packages() -> None:
    assert Version("1.10") > Version("1.9")
    assert Version("2.0-1") == "2.0-1"
    assert hash(Version("1")) == hash(Version("1"))


def test_workflow_conditions_are_checked_at_load_with_the_file_position() -> None:
    text = """name: wf
tasks:
  - id: ok
    run: "true"
    when: facts.os_family == 'Debian'
  - id: calls
    run: "true"
    when: __import__('os').system('id') == 0
  - id: broken
    run: "true"
    until: result.rc ==
"""
    with pytest.raises(WorkflowError) as err:
        MaintenanceWorkflow.from_yaml(text)
    lines = [str(p) for p in err.value.problems]
    assert any("<string>:8:5" in line and "is not allowed (only matches()" in line for line in lines), lines
    assert any("<string>:11:5" in line and "invalid expression" in line for line in lines)
    assert len(lines) == 2
