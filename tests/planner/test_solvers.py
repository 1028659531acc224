"""Greedy and CP-SAT against the checker, each other, brute force and the lower bound."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sysflow.planner.bounds import lower_bound, quality
from sysflow.planner.check import check
from sysflow.planner.cpsat import solve_cpsat
from sysflow.planner.greedy import DispatchRule, greedy
from sysflow.planner.problem import Chain, PlanningProblem, Resource, ResourceKind, Use, Window

from .brute import _options, optimum
from .instances import problems, random_problem

SLOW = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


@settings(SLOW, max_examples=150)
@given(problems(max_hosts=8))
def test_every_greedy_plan_passes_check(p: PlanningProblem) -> None:
    for rule in DispatchRule:
        assert check(p, greedy(p, (rule,)).assignment) == []


@settings(SLOW, max_examples=25)
@given(problems(max_hosts=6))
def test_cpsat_plans_pass_check_and_never_lose_to_greedy(p: PlanningProblem) -> None:
    g = greedy(p)
    r = solve_cpsat(p, time_limit=1.0, num_workers=1, random_seed=7, baseline=g)
    assert check(p, r.assignment) == []
    assert r.score <= g.score


def _tiny(draw_seed: int, split: bool) -> PlanningProblem:
    return random_problem(draw_seed, hosts=2 if split else 3, split=split, horizon=24)


@settings(SLOW, max_examples=15)
@given(st.integers(0, 10**6), st.booleans())
def test_cpsat_matches_brute_force_on_tiny_instances(seed: int, split: bool) -> None:
    p = _tiny(seed, split)
    assume(math.prod(len(_options(p, c)) for c in p.chains) <= 4000)
    best, _ = optimum(p)
    r = solve_cpsat(p, time_limit=2.0, num_workers=1, random_seed=7)
    assert r.score == best


@settings(SLOW, max_examples=25)
@given(st.integers(0, 10**6), st.booleans())
def test_bound_never_exceeds_the_optimum_makespan(seed: int, split: bool) -> None:
    p = _tiny(seed, split)
    assume(math.prod(len(_options(p, c)) for c in p.chains) <= 4000)
    _, best_makespan = optimum(p)
    if best_makespan is not None:
        assert lower_bound(p).makespan <= best_makespan


@pytest.mark.parametrize("split", [False, True])
def test_bound_below_every_complete_greedy_plan(split: bool) -> None:
    for seed in range(200):
        p = random_problem(seed, hosts=5, split=split)
        g = greedy(p)
        if not g.assignment.deferred:
            q = quality(p, g.assignment, lower_bound(p))
            assert lower_bound(p).makespan <= q.makespan
            assert q.ratio >= 1.0


def test_decomposition_stays_feasible_and_matches_hosts() -> None:
    p = random_problem(11, hosts=40)
    r = solve_cpsat(p, time_limit=1.0, num_workers=1, random_seed=7, max_units=8)
    assert r.units <= len(p.chains)
    assert check(p, r.assignment) == []
    assert set(r.assignment.starts) | set(r.assignment.deferred) == {c.host for c in p.chains}


def test_greedy_needs_a_rule() -> None:
    with pytest.raises(ValueError):
        greedy(random_problem(1), ())


def test_cpsat_strictly_improves_on_greedy_somewhere() -> None:
    better = 0
    for seed in range(12):
        p = random_problem(seed, hosts=6)
        g = greedy(p)
        r = solve_cpsat(p, time_limit=1.0, num_workers=1, random_seed=7, baseline=g)
        better += r.score < g.score
    assert better > 0


def test_large_fleets_use_a_shorter_portfolio() -> None:
    from sysflow.planner import greedy as greedy_module

    p = random_problem(5, hosts=8)
    old = greedy_module.LARGE_FLEET
    try:
        greedy_module.LARGE_FLEET = 4
        assert greedy(p).rule in (DispatchRule.SHORTEST_FIRST, DispatchRule.INPUT_ORDER)
    finally:
        greedy_module.LARGE_FLEET = old


def test_greedy_pulls_the_last_host_into_an_earlier_window_of_its_own() -> None:
    # One slot. The short db hosts ask first: db0 in its first window, db1 in its second (20-28),
    # which is the web host's only window this week; list scheduling leaves web0 to next week (1010).
    # The repair moves web0 into 20-30 and db1 to 30-38, still inside its own second window.
    def chain(host: str, group: str, seconds: int, windows: tuple[Window, ...]) -> Chain:
        return Chain(
            host, group, None, 0, "fleet", (f"t@{host}",), ("t",), (seconds,), windows, ((Use(0, 1),),)
        )

    db = (Window(0, 10, 10), Window(20, 40, 40), Window(60, 80, 80))
    web = (Window(20, 30, 30), Window(1000, 1010, 1010))
    p = PlanningProblem(
        (chain("db0", "db", 8, db), chain("db1", "db", 8, db), chain("web0", "web", 10, web)),
        (Resource("max_parallel_servers", ResourceKind.POOL, 1),),
    )
    g = greedy(p, [DispatchRule.SHORTEST_FIRST])
    assert g.assignment.starts == {"db0": (0,), "db1": (30,), "web0": (20,)}
    assert g.score.makespan == 38 and g.score.done_by_window[0] == 2
    assert check(p, g.assignment) == []


def test_cpsat_builds_a_valid_model_for_a_thousand_hosts_over_two_weeks() -> None:
    """The objective's levels are weights in one 64-bit sum: at 1,000 hosts over two weeks they do
    not all fit, and the lowest are left out, never the model (CP-SAT would refuse it as invalid
    and only greedy's plan would come back)."""
    week = 7 * 86_400
    windows = tuple(Window(d * 86_400 + w, d * 86_400 + w + 3 * 3600 - 300, d * 86_400 + w + 3 * 3600)
                    for w in (0, week) for d in (1, 3, 5))  # fmt: skip
    one = (Use(0, 1),)
    chains = tuple(
        Chain(f"h{i}", f"g{i % 4}", None, 0, "fleet", (f"t@h{i}",), ("t",), (300 + i % 7,), windows, (one,))
        for i in range(1000)
    )
    p = PlanningProblem(chains, (Resource("slots", ResourceKind.POOL, 40),))
    r = solve_cpsat(p, time_limit=2.0, num_workers=1, random_seed=7)
    assert r.solver_status in ("OPTIMAL", "FEASIBLE", "UNKNOWN"), r.solver_status
    assert check(p, r.assignment) == []
