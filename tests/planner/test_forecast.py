"""Plan and forecast: what fits, what is deferred and why, the binding constraint; Gantt files."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sysflow.planner.build import solve_problem
from sysflow.planner.forecast import forecast
from sysflow.planner.gantt import gantt_chart
from sysflow.planner.plan import EPOCH, Plan
from sysflow.planner.problem import Chain, PlanningProblem, Resource, ResourceKind, Use, Window
from sysflow.planner.solution import Assignment

ORIGIN = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)


def crowded(hosts: int = 5, *, origin: datetime | None = ORIGIN, length: int = 100) -> PlanningProblem:
    """One 100 s window, a 1-slot uplink, 40 s per host: two hosts fit, the rest cannot."""
    uplink = Resource("uplink[datacenter=ams]", ResourceKind.POOL, 50, label="ams uplink MB/s")
    window = (Window(0, length - 10, length),)
    chains = tuple(
        Chain(
            host=f"web{i:02d}",
            group="web",
            datacenter="ams",
            wave=0,
            stage="fleet",
            ops=(f"upgrade@web{i:02d}",),
            tasks=("upgrade",),
            durations=(40,),
            windows=window,
            uses=((Use(0, 50),),),
        )
        for i in range(hosts)
    )
    return PlanningProblem(chains, (uplink,), origin=origin)


def test_work_that_cannot_fit_names_deferred_hosts_and_binding_constraint() -> None:
    p = solve_problem(crowded())
    fc = forecast(p, solve_problem(crowded()))
    assert len(p.deferred) == 3
    assert set(fc.deferred) == {"web02", "web03", "web04"}
    assert all("ams uplink MB/s" in r for r in fc.deferred.values())
    # relaxed in turn, twice the uplink finishes four hosts, a window twice as long all five
    assert fc.binding == "maintenance windows"
    (row,) = fc.windows
    assert (row.candidates, row.fit_p50, row.fit_p90) == (5, 2, 2)
    assert row.bottleneck.startswith("ams uplink MB/s at 100%")
    text = "\n".join(fc.lines())
    assert "2 of 5 hosts fit at p50, 2 at p90" in text
    assert "3 hosts deferred" in text
    assert fc.to_dict()["deferred"][0]["host"] == "web02"
    assert '"binding"' in fc.to_json()


def test_forecast_without_p90_and_without_deferrals() -> None:
    p = solve_problem(crowded(2))
    fc = forecast(p)
    assert fc.windows[0].fit_p90 is None
    assert fc.deferred == {}
    assert fc.binding.startswith("ams uplink")
    assert "at p90" not in fc.windows[0].summary()


def test_plan_without_origin_uses_the_epoch_and_reports_quality() -> None:
    p = solve_problem(crowded(2, origin=None))
    assert p.origin == EPOCH
    assert p.seconds_of(p.at(42)) == 42
    d = p.to_dict()
    assert d["hosts_done_per_window"] == [2]
    assert d["makespan_s"] == 80
    assert d["lower_bound_s"] == 80
    assert d["ratio"] == 1.0
    outside = Plan(p.problem, Assignment({"web00": (95,), "web01": (0,)}, {}), "hand", "BROKEN")
    with pytest.raises(ValueError):
        outside.window_of("web00", 0)


def test_gantt_chart_host_lanes() -> None:
    p = solve_problem(crowded())
    ch = gantt_chart(p)
    assert ch.mode == "host"
    assert len(ch.lanes) == len({c.host for c in p.problem.chains if c.host in p.assignment.starts})
    assert len(ch.bars) == sum(len(s) for s in p.assignment.starts.values())
    assert all(ch.lo < b.start < b.end < ch.hi for b in ch.bars)


def test_gantt_chart_group_lanes_with_density_for_large_plans() -> None:
    p = solve_problem(crowded(70, length=3000))
    ch = gantt_chart(p, max_host_lanes=60)
    assert ch.mode == "group"
    assert len(ch.lanes) == len(ch.density) == len(ch.hosts_per_lane) < 70
    assert sum(ch.hosts_per_lane) == len(p.assignment.starts)
    busy = sum(b.end - b.start for b in ch.bars)  # ops in flight integrate back to the busy time
    total = sum(sum(s) for d in ch.density for s in d.values()) * ch.bin_s
    assert total == pytest.approx(busy, rel=1e-6)
