"""Plan and forecast: what fits, what is deferred and why, the binding constraint; Gantt files."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from sysflow.planner.build import solve_problem
from sysflow.planner.forecast import forecast
from sysflow.planner.gantt import render_gantt
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
    assert "ams uplink MB/s" in fc.binding
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


@pytest.mark.parametrize("suffix", [".png", ".html"])
def test_gantt_files(tmp_path: Path, suffix: str) -> None:
    p = solve_problem(crowded())
    out = render_gantt(p, tmp_path / f"plan{suffix}")
    data = out.read_bytes()
    if suffix == ".png":
        assert data.startswith(b"\x89PNG")
    else:
        text = data.decode()
        assert "<svg" in text
        assert "upgrade@web00" in text
        assert "<script" not in text
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")


def test_gantt_per_group_rows_for_large_plans(tmp_path: Path) -> None:
    big = crowded(70, length=3000)
    p = solve_problem(big)
    out = render_gantt(p, tmp_path / "big.html")
    assert ">web<" in out.read_text()


def test_gantt_rejects_other_formats(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        render_gantt(solve_problem(crowded(1)), tmp_path / "plan.pdf")
