"""The planning problem's fast copies: re-planning derives thousands of chains and whole problems."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sysflow.planner.check import check
from sysflow.planner.greedy import greedy
from tests.planner.instances import random_problem


def test_a_chain_with_new_durations_equals_dataclasses_replace() -> None:
    problem = random_problem(3)
    chain = problem.chains[0]
    _ = chain.offsets  # cached before the copy: the copy must compute its own
    longer = tuple(d + 5 for d in chain.durations)
    fast = chain.with_durations(longer)
    assert fast == replace(chain, durations=longer)
    assert fast.offsets == replace(chain, durations=longer).offsets
    assert chain.with_release(chain.release + 7) == replace(chain, release=chain.release + 7)


def test_a_chain_refuses_durations_that_do_not_fit_it() -> None:
    chain = random_problem(3).chains[0]
    with pytest.raises(ValueError, match="one per operation"):
        chain.with_durations((*chain.durations, 1))
    with pytest.raises(ValueError, match=">= 0"):
        chain.with_durations((-1, *chain.durations[1:]))


def test_a_derived_problem_plans_like_one_built_from_scratch() -> None:
    problem = random_problem(5, hosts=8)
    _ = problem.by_host, problem.first_window_step  # cached on the original
    fewer = problem.chains[:5]
    derived = problem.derived(fewer)
    assert set(derived.by_host) == {c.host for c in fewer}  # not the original's cache
    assert derived == replace(problem, chains=fewer)
    result = greedy(derived)
    assert result.assignment == greedy(replace(problem, chains=fewer)).assignment
    assert check(derived, result.assignment) == []
