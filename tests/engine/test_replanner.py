"""The replanner's own decisions: when a re-plan is worth making at all."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from sysflow.engine.adaptive import Replanner
from sysflow.engine.result import OpRecord
from sysflow.engine.states import OpState
from sysflow.planner.greedy import DispatchRule, greedy
from sysflow.planner.plan import Plan
from tests.planner.instances import random_problem


def _plan() -> Plan:
    problem = random_problem(4, hosts=6)
    return Plan(problem, greedy(problem).assignment, "greedy", "FEASIBLE", 0.0, 0.5)


def _records(plan: Plan, started: set[str], slow: float) -> dict[str, OpRecord]:
    out = {}
    for c in plan.problem.chains:
        for op, task, d in zip(c.ops, c.tasks, c.durations, strict=True):
            if c.host in started:
                begin = plan.at(0)
                out[op] = OpRecord(op, c.host, task, c.wave, OpState.SUCCEEDED, "x", begin,
                                   begin + timedelta(seconds=d * slow + 1))  # fmt: skip
            else:
                out[op] = OpRecord(op, c.host, task, c.wave, OpState.PENDING, "x")
    return out


def test_once_every_host_has_started_there_is_nothing_to_replan() -> None:
    plan = _plan()
    replanner = Replanner(plan, every=1)
    records = _records(plan, {c.host for c in plan.problem.chains}, slow=5.0)
    for rec in records.values():
        replanner.observe(rec)
    assert replanner.due(boundary=True)  # far off the plan ...
    assert replanner.replan(records, None, plan.at(10_000)) is None  # ... but nothing is left to move
    assert replanner.versions == 1
    assert not replanner.due(boundary=True)  # and it does not ask again for the same drift


def test_a_drift_with_hosts_left_to_place_gives_a_new_plan() -> None:
    plan = _plan()
    replanner = Replanner(plan, every=1)
    for rec in _records(plan, {c.host for c in plan.problem.chains}, slow=5.0).values():
        replanner.observe(rec)  # what ran elsewhere was five times slower than planned
    records = _records(plan, set(), slow=1.0)  # here nothing has started yet
    swap = replanner.replan(records, None, plan.at(0))
    assert swap is not None
    assert replanner.versions == 2


def test_inside_a_wave_the_replan_keeps_the_dispatch_rule_the_run_follows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # hosts waiting for admission keep their first-come order: trying other orders is wasted work
    import sysflow.planner.replan as replan_module

    tried: list[object] = []

    def spy(problem: Any, rules: Any = None) -> Any:
        tried.append(rules)
        return greedy(problem, rules)

    monkeypatch.setattr(replan_module, "greedy", spy)
    plan = replace(_plan(), rule=DispatchRule.INPUT_ORDER.value)
    for boundary in (False, True):
        replanner = Replanner(plan, every=1)
        for rec in _records(plan, {c.host for c in plan.problem.chains}, slow=5.0).values():
            replanner.observe(rec)
        swap = replanner.replan(_records(plan, set(), slow=1.0), None, plan.at(0), boundary=boundary)
        assert swap is not None
    assert tried == [(DispatchRule.INPUT_ORDER,), None]  # in the wave: its rule; at a boundary: all
    assert swap.plan.rule in {r.value for r in DispatchRule}
