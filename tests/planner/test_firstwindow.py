"""The first-window stage of CP-SAT: more hosts in their first window than greedy, always feasible."""

from __future__ import annotations

import math
from dataclasses import replace

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sysflow.planner.bounds import first_window_bound
from sysflow.planner.check import check
from sysflow.planner.cpsat import solve_cpsat
from sysflow.planner.firstwindow import _first_range, _WindowModel, improve_first_window
from sysflow.planner.greedy import greedy
from sysflow.planner.problem import Chain, PlanningProblem, Resource, ResourceKind, Use, Window
from sysflow.planner.solution import hosts_done_per_window, score

from .brute import _options, optimum
from .instances import problems, random_problem

WINDOWS = (Window(0, 10, 10), Window(20, 30, 30))


def _chain(i: int, wave: int, duration: int, windows: tuple[Window, ...] = WINDOWS) -> Chain:
    return Chain(
        host=f"h{i}",
        group="g",
        datacenter="d",
        wave=wave,
        stage="g",
        ops=(f"up@h{i}",),
        tasks=("up",),
        durations=(duration,),
        windows=windows,
        uses=((Use(0, 1),),),
    )


def barrier_trap() -> PlanningProblem:
    """Two slots. Wave 0 is 1, 1, 4: shortest first ends it at 5, longest first at 4. Wave 1 is a
    6 and twelve 1s: longest first wastes a slot on the 6. Best: wave 0 longest first, then the
    twelve 1s in [4, 10]; no single dispatch rule does both."""
    chains = [_chain(0, 0, 1), _chain(1, 0, 1), _chain(2, 0, 4), _chain(3, 1, 6)]
    chains += [_chain(4 + i, 1, 1) for i in range(12)]
    return PlanningProblem(tuple(chains), (Resource("slots", ResourceKind.POOL, 2),))


def test_beats_every_dispatch_rule_when_waves_need_different_rules() -> None:
    p = barrier_trap()
    g = greedy(p)
    r = improve_first_window(p, g.assignment, time_limit=5.0, num_workers=1, random_seed=3)
    assert r is not None
    assert check(p, r.assignment) == []
    assert hosts_done_per_window(p, g.assignment)[0] < 15
    assert r.first_window == 15
    assert hosts_done_per_window(p, r.assignment) == [15, 1]


def test_solve_cpsat_keeps_the_first_window_plan() -> None:
    p = barrier_trap()
    g = greedy(p)
    r = solve_cpsat(p, time_limit=5.0, num_workers=1, random_seed=3, baseline=g, first_window_from=0)
    assert check(p, r.assignment) == []
    assert r.score < g.score
    assert r.score.done_by_window[0] == 15


def test_later_waves_stay_out_when_an_earlier_wave_cannot_fit() -> None:
    wide = (Window(0, 10, 10), Window(20, 40, 40))
    chains = [_chain(0, 0, 12, wide), _chain(1, 0, 2), _chain(2, 1, 1, wide), _chain(3, 1, 1, wide)]
    p = PlanningProblem(tuple(chains), (Resource("slots", ResourceKind.POOL, 2),), gates=(1,))
    r = improve_first_window(p, greedy(p).assignment, time_limit=2.0, num_workers=1)
    assert r is not None
    assert check(p, r.assignment) == []
    assert r.first_window == 1  # only h1 (wave 0) may run in its first window
    assert r.assignment.starts["h2"][0] >= r.assignment.starts["h0"][0] + 12 + 1


def test_nothing_to_do() -> None:
    split = random_problem(3, split=True)
    assert improve_first_window(split, greedy(split).assignment, time_limit=1.0) is None
    p = PlanningProblem((replace(_chain(0, 0, 20), windows=WINDOWS),), (Resource("s", ResourceKind.POOL, 1),))
    assert improve_first_window(p, greedy(p).assignment, time_limit=1.0) is None


def test_single_wave_fleet_uses_one_model() -> None:
    chains = [_chain(i, 0, 1 + i % 3) for i in range(10)]
    p = PlanningProblem(tuple(chains), (Resource("slots", ResourceKind.POOL, 2),))
    g = greedy(p)
    r = improve_first_window(p, g.assignment, time_limit=2.0, num_workers=1)
    assert r is not None
    assert check(p, r.assignment) == []
    assert score(p, r.assignment).done_by_window[0] >= g.score.done_by_window[0]


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True, max_examples=30)
@given(problems(max_hosts=8))
def test_every_first_window_plan_passes_check(p: PlanningProblem) -> None:
    r = improve_first_window(p, greedy(p).assignment, time_limit=0.5, num_workers=1, random_seed=1)
    if r is not None:
        assert check(p, r.assignment) == []
    c = solve_cpsat(p, time_limit=0.5, num_workers=1, random_seed=1, first_window_from=0)
    assert check(p, c.assignment) == []
    assert c.score <= greedy(p).score


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True, max_examples=25)
@given(st.integers(0, 10**6), st.booleans())
def test_first_window_bound_never_below_the_optimum(seed: int, split: bool) -> None:
    p = random_problem(seed, hosts=2 if split else 3, split=split, horizon=24)
    assume(math.prod(len(_options(p, c)) for c in p.chains) <= 4000)
    best, _ = optimum(p)
    assert best.done_by_window[0] <= first_window_bound(p) if best.done_by_window else True


def test_first_window_bound_counts_capacity() -> None:
    p = barrier_trap()
    assert first_window_bound(p) == 15  # 20 slot-seconds: twelve 1s, two 1s and the 4 of wave 0 (18)
    lone = PlanningProblem((_chain(0, 0, 20),), (Resource("s", ResourceKind.POOL, 1),))
    assert first_window_bound(lone) == 0
    weighted = PlanningProblem(
        (replace(_chain(0, 0, 0), weight=3), replace(_chain(1, 0, 4), weight=4)),
        (Resource("s", ResourceKind.POOL, 1),),
    )
    assert first_window_bound(weighted) == 5  # three empty hosts, then two 4s in 10 s


def test_the_count_is_proven_alone_then_kept_by_the_full_objective() -> None:
    # one wave of 3 s chains on two slots in a 10 s window: at most 2 x 3 of them fit
    chains = [_chain(i, 0, 3) for i in range(12)]
    p = PlanningProblem(tuple(chains), (Resource("slots", ResourceKind.POOL, 2),))
    r = improve_first_window(p, greedy(p).assignment, time_limit=5.0, num_workers=1, random_seed=3)
    assert r is not None
    assert check(p, r.assignment) == []
    assert (r.first_window, r.proven) == (6, True)
    assert hosts_done_per_window(p, r.assignment)[0] == 6


def test_the_earlier_waves_end_is_proven_from_their_work() -> None:
    # two slots: wave 0 (two 2 s hosts) ends at 2, wave 1 (eight 3 s hosts) starts at 3 and needs
    # 24 slot-seconds, so it ends at 15 at the earliest; the work cut lets CP-SAT prove it
    chains = [_chain(i, 0, 2, (Window(0, 40, 40),)) for i in range(2)]
    chains += [_chain(2 + i, 1, 3, (Window(0, 40, 40),)) for i in range(8)]
    chains += [_chain(10 + i, 2, 1, (Window(0, 40, 40),)) for i in range(4)]
    p = PlanningProblem(tuple(chains), (Resource("slots", ResourceKind.POOL, 2),), gates=(1, 1))
    lead = [c for c in p.chains if c.wave < 2]
    status, chosen = _WindowModel(p, greedy(p).assignment, lead, makespan=True).solve(5.0, 1, 3)
    assert status == "OPTIMAL"
    assert chosen is not None
    assert max(s[-1] + p.by_host[h].durations[-1] for h, s in chosen.items()) == 15


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True, max_examples=40)
@given(problems(max_hosts=8))
def test_the_work_cuts_never_exclude_a_feasible_plan(p: PlanningProblem) -> None:
    # the greedy plan is feasible, so the earlier-waves model it hints must stay feasible
    g = greedy(p).assignment
    last = {stage: waves[-1] for stage, waves in p.stage_waves().items()}
    lead = [c for c in p.chains if c.wave != last[c.stage] and _first_range(c) is not None]
    assume(lead and not p.split_chains)
    status, _ = _WindowModel(p, g, lead, makespan=True).solve(1.0, 1, 1)
    assert status in ("OPTIMAL", "FEASIBLE")
