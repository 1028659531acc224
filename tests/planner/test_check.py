"""The checker catches every kind of violation; the problem refuses malformed input."""

from __future__ import annotations

import pytest

from sysflow.planner.check import Violation, ViolationKind, check
from sysflow.planner.decompose import batch, expand
from sysflow.planner.greedy import greedy
from sysflow.planner.problem import Busy, Chain, PlanningProblem, Resource, ResourceKind, Use, Window
from sysflow.planner.solution import Assignment, done_window
from sysflow.planner.timeline import Timeline

W = (Window(0, 50, 60), Window(100, 150, 160))


def chain(host: str, wave: int = 0, durations: tuple[int, ...] = (5, 5), **kw: object) -> Chain:
    n = len(durations)
    return Chain(
        host=host,
        group="g",
        datacenter=None,
        wave=wave,
        stage="fleet",
        ops=tuple(f"t{i}@{host}" for i in range(n)),
        tasks=tuple(f"t{i}" for i in range(n)),
        durations=durations,
        **{"windows": W, **kw},  # type: ignore[arg-type]
    )


def problem(**kw: object) -> PlanningProblem:
    res = (
        Resource("slots", ResourceKind.POOL, 1),
        Resource("rate", ResourceKind.RATE, 1, period=3),
        Resource("budget", ResourceKind.BUDGET, 1),
    )
    chains = (
        chain("a", uses=((Use(0, 1), Use(1, 1)), (Use(0, 1),)), span_uses=(Use(2, 1),)),
        chain("b", wave=1, uses=((Use(0, 1), Use(1, 1)), (Use(0, 1),)), span_uses=(Use(2, 1),), release=2),
    )
    kw = {"gates": (5,), **kw}
    return PlanningProblem(chains, res, **kw)  # type: ignore[arg-type]


def kinds(p: PlanningProblem, a: Assignment) -> set[ViolationKind]:
    return {v.kind for v in check(p, a)}


def test_a_good_plan_passes() -> None:
    p = problem()
    assert check(p, Assignment({"a": (0, 5), "b": (15, 20)})) == []
    assert check(p, greedy(p)) == []  # anything carrying an assignment


def test_each_violation_kind_is_found() -> None:
    p = problem()
    assert kinds(p, Assignment({"a": (0, 5)})) == {ViolationKind.COVERAGE}
    assert ViolationKind.COVERAGE in kinds(p, Assignment({"a": (0, 5), "b": (15, 20), "x": (0,)}))
    assert ViolationKind.COVERAGE in kinds(p, Assignment({"a": (0, 5), "b": (15, 20)}, {"a": "both"}))
    assert ViolationKind.COVERAGE in kinds(p, Assignment({"a": (0,), "b": (15, 20)}))
    assert ViolationKind.ORDER in kinds(p, Assignment({"a": (0, 6), "b": (15, 20)}))
    assert ViolationKind.WINDOW in kinds(p, Assignment({"a": (55, 60), "b": (110, 115)}))
    assert ViolationKind.WINDOW in kinds(p, Assignment({"a": (48, 53), "b": (110, 115)}))
    assert ViolationKind.BARRIER in kinds(p, Assignment({"a": (0, 5), "b": (12, 17)}))
    assert ViolationKind.BARRIER in kinds(p, Assignment({"b": (15, 20)}, {"a": "no room"}))
    assert ViolationKind.CAPACITY in kinds(problem(gates=()), Assignment({"a": (0, 5), "b": (8, 13)}))
    early = problem(gates=())
    assert ViolationKind.RELEASE in kinds(early, Assignment({"a": (20, 25), "b": (0, 5)}))
    split = problem(split_chains=True)
    assert check(split, Assignment({"a": (0, 55), "b": (100, 120)})) != []
    assert ViolationKind.WINDOW not in kinds(split, Assignment({"a": (0, 100), "b": (110, 120)}))
    assert "barrier" in str(Violation(ViolationKind.BARRIER, "m"))
    assert str(Violation(ViolationKind.ORDER, "m", "h")) == "order: h: m"
    with pytest.raises(TypeError):
        check(p, object())


def test_skipped_hosts_keep_their_usage_but_not_their_own_rules() -> None:
    # a started host's measured gap (order) is not reported; its slot still counts against b
    p = problem(gates=())
    gap_and_overlap = Assignment({"a": (0, 6), "b": (8, 13)})
    shared = {ViolationKind.CAPACITY, ViolationKind.BARRIER}  # b overlaps a's slot and its wave
    assert kinds(p, gap_and_overlap) == {ViolationKind.ORDER, *shared}
    skipped = check(p, gap_and_overlap, skip_hosts={"a"})
    assert {v.kind for v in skipped} == shared


def test_usage_that_ended_before_after_is_not_counted() -> None:
    p = problem(gates=())
    overlap_at_8 = Assignment({"a": (0, 5), "b": (8, 13)})  # a's slot (5-10) meets b's (8-13)
    assert ViolationKind.CAPACITY in {v.kind for v in check(p, overlap_at_8, after=9)}
    assert ViolationKind.CAPACITY not in {v.kind for v in check(p, overlap_at_8, after=10)}


def test_background_usage_counts() -> None:
    p = problem(background=(Busy(0, 0, 10, 1),))
    assert ViolationKind.CAPACITY in kinds(p, Assignment({"a": (0, 5), "b": (15, 20)}))
    assert check(p, greedy(p).assignment) == []


def test_problem_validation() -> None:
    with pytest.raises(ValueError):
        Window(5, 4, 10)
    with pytest.raises(ValueError):
        Resource("r", ResourceKind.POOL, 0)
    with pytest.raises(ValueError):
        Resource("r", ResourceKind.RATE, 1)
    with pytest.raises(ValueError):
        chain("x", durations=())
    with pytest.raises(ValueError):
        chain("x", durations=(-1,))
    with pytest.raises(ValueError):
        chain("x", uses=((),))
    with pytest.raises(ValueError):
        PlanningProblem((chain("a"), chain("a")))
    with pytest.raises(ValueError):
        PlanningProblem((chain("a", uses=((Use(5, 1),), ())),))
    budget = (Resource("b", ResourceKind.BUDGET, 1),)
    with pytest.raises(ValueError):
        PlanningProblem((chain("a", uses=((Use(0, 1),), ())),), budget)
    with pytest.raises(ValueError):
        PlanningProblem((chain("a", span_uses=(Use(0, -1),)),), budget)
    p = problem()
    assert p.hosts == 2
    assert p.horizon == 160
    assert p.gate(7) == 0
    assert p.stage_waves() == {"fleet": [0, 1]}
    with pytest.raises(ValueError):
        done_window(p.chains[0], 70)


def test_greedy_defers_with_reasons() -> None:
    res = (Resource("slots", ResourceKind.POOL, 1),)
    chains = (
        chain("long", durations=(100,), uses=((Use(0, 1),),)),
        chain("greedy", durations=(5,), uses=((Use(0, 2),),)),
        chain("nowin", durations=(5,), windows=()),
        chain("late", durations=(5,), uses=((Use(0, 1),),), release=200),
        chain("next", wave=1, durations=(5,)),
    )
    a = greedy(PlanningProblem(chains, res)).assignment
    assert "fits in no window" in a.deferred["long"]
    assert "capacity is 1" in a.deferred["greedy"]
    assert "no maintenance window" in a.deferred["nowin"]
    assert "release" in a.deferred["late"]
    assert "wave barrier" in a.deferred["next"]


def test_timeline_guards_and_reports() -> None:
    t = Timeline(2, [(0, 10), (5, 20), (30, 40)])
    assert t.spans == [(0, 20), (30, 40)]
    t.add(0, 5, 3)
    assert t.over() == [(i, 3) for i in range(5)]
    assert t.peak() == 3
    assert t.busy(0, 40) == 15
    assert t.jump(0, 0, 1) is None
    with pytest.raises(ValueError):
        t.jump(15, 10, 1)
    with pytest.raises(ValueError):
        t.add(-5, 2, 1)


def test_batching_round_trip() -> None:
    res = (Resource("slots", ResourceKind.POOL, 4), Resource("spacing", ResourceKind.RATE, 1, period=2))
    chains = tuple(chain(f"h{i}", durations=(5,), uses=((Use(0, 1),),)) for i in range(10))
    p = PlanningProblem(chains, res)
    b = batch(p, 3)
    assert b.size == 4
    assert sum(c.weight for c in b.problem.chains) == 10
    a = greedy(b.problem).assignment
    full = expand(b, a)
    assert check(p, full) == []
    spaced = PlanningProblem(
        tuple(chain(f"s{i}", durations=(5,), uses=((Use(1, 1),),)) for i in range(4)), res
    )
    assert batch(spaced, 1).size == 1
