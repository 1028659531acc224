"""The adapter from workflow + inventory to a plan, on the brief's example and the example files."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sysflow.model.inventory import Inventory
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.planner.build import plan, plan_pair
from sysflow.planner.check import check
from sysflow.planner.durations import DurationModel

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MONDAY = datetime(2026, 11, 23, tzinfo=UTC)
WINDOWS = {
    "web_servers": (timedelta(hours=1), timedelta(hours=3)),
    "db_servers": (timedelta(hours=3), timedelta(hours=5)),
    "cache_servers": (timedelta(hours=1), timedelta(hours=5)),
}


def brief() -> tuple[Inventory, MaintenanceWorkflow]:
    """The brief's inventory and workflow (examples/brief.py), built from the model classes."""
    inventory = Inventory()
    inventory.add_group("web_servers", ["web01.example.com", "web02.example.com", "web03.example.com"])
    inventory.add_group("db_servers", ["db01.example.com", "db02.example.com"])
    inventory.add_group("cache_servers", ["cache01.example.com", "cache02.example.com"])
    wf = MaintenanceWorkflow("os_patching")
    wf.add_task("backup", "tar -czf /backup/$(hostname).tar.gz /etc", targets=["*"])
    wf.add_task("update_repos", "apt-get update", targets=["*"])
    wf.add_task("upgrade_packages", "apt-get -y upgrade", targets=["*"], depends_on=["update_repos"])
    wf.add_task("restart_services", "systemctl restart nginx", targets=["web_servers"], depends_on=["upgrade_packages"])  # fmt: skip
    wf.add_task("verify_web", "curl -s http://localhost/health", targets=["web_servers"], depends_on=["restart_services"])  # fmt: skip
    wf.set_progressive_execution({
        "groups": [["web01.example.com"], ["web02.example.com", "web03.example.com"], ["db_servers"], ["cache_servers"]],
        "verification_tasks": ["verify_web"],
        "auto_rollback": True,
    })  # fmt: skip
    wf.set_maintenance_window({"web_servers": "Sunday 01:00-03:00", "db_servers": "Sunday 03:00-05:00", "cache_servers": "Sunday 01:00-05:00"})  # fmt: skip
    wf.set_parallelization({"max_parallel_servers": 10, "max_parallel_per_group": 5, "delay_between_servers": "2s"})  # fmt: skip
    return inventory, wf


@pytest.mark.parametrize("solver", ["greedy", "cpsat"])
def test_brief_example_plans_every_operation_inside_its_groups_window(solver: str) -> None:
    inventory, wf = brief()
    p = plan(wf, inventory, solver=solver, start=MONDAY, time_limit=1.0, num_workers=1)  # type: ignore[arg-type]
    assert check(p.problem, p) == []
    assert not p.deferred
    sunday = MONDAY + timedelta(days=6)
    ops = list(p.ops())
    assert len(ops) == 3 * 5 + 4 * 3
    for op in ops:
        group = next(g for g in WINDOWS if op.host.startswith(g.split("_")[0]))
        lo, hi = (sunday + d for d in WINDOWS[group])
        assert lo <= op.start, (op, group)
        assert op.end <= hi, (op, group)
        assert (op.window_start, op.window_end) == (lo, hi)
    starts = sorted(op.start for op in ops if op.task == "backup")
    assert all((b - a) >= timedelta(seconds=2) for a, b in itertools.pairwise(starts))
    first = {op.host: op.start for op in reversed(ops)}
    last = {op.host: op.end for op in ops}
    waves = [["web01"], ["web02", "web03"], ["db01", "db02"], ["cache01", "cache02"]]
    for before, after in itertools.pairwise(waves):
        end = max(last[f"{h}.example.com"] for h in before)
        assert all(first[f"{h}.example.com"] >= end for h in after)


def test_plan_json_has_the_issue_fields_in_iso_time() -> None:
    inventory, wf = brief()
    p = plan(wf, inventory, start=MONDAY)
    data = p.to_dict()
    for key in (
        "solver",
        "status",
        "objective",
        "lower_bound",
        "excess_s",
        "hosts_done_per_window",
        "ops",
        "deferred",
    ):
        assert key in data
    op = data["ops"][0]
    assert set(op) >= {"host", "task", "wave", "window_start", "window_end", "start", "end"}
    assert datetime.fromisoformat(op["start"]).tzinfo is not None
    assert p.to_json().startswith("{")


def test_p90_durations_are_longer_and_history_moves_the_plan() -> None:
    inventory, wf = brief()
    model = DurationModel()
    for _ in range(20):
        model.observe("upgrade_packages", "web_servers", 600.0)
    p50, p90 = plan_pair(wf, inventory, start=MONDAY, quantiles=(0.5, 0.9), durations=model)
    c50, c90 = p50.problem.by_host["web01.example.com"], p90.problem.by_host["web01.example.com"]
    assert c50.durations[2] >= 500
    assert c90.durations[2] > c50.durations[2]
    assert model.priors == {}  # the caller's model is not changed


def test_example_files_plan_with_group_stages_and_budgets() -> None:
    wf = MaintenanceWorkflow.from_file(EXAMPLES / "patching.yaml")
    inventory = Inventory.load(EXAMPLES / "inventory.ini")
    (p,) = plan_pair(wf, inventory, start=MONDAY, stage="group")
    assert check(p.problem, p) == []
    kinds = {r.kind.value for r in p.problem.resources}
    assert "pool" in kinds
    assert {c.stage for c in p.problem.chains} == {c.group for c in p.problem.chains}


def _hooked(pause: str) -> tuple[Inventory, MaintenanceWorkflow]:
    inventory = Inventory()
    inventory.add_group("web", ["w1", "w2"])
    inventory.add_group("db", ["d1"])
    wf = MaintenanceWorkflow("hooks")
    wf.add_task("update", "apt-get update", expected_duration=30)
    wf.add_task("drain", "lb drain", run_once=True, local=True, expected_duration=100)
    wf.add_task("notify", "chat", run_once=True, local=True, depends_on=["drain"], expected_duration=20)
    wf.add_task("patch", "true", depends_on=["drain", "update"], expected_duration=40)
    wf.add_task(
        "undrain", "lb undrain", run_once=True, local=True, depends_on=["patch"], expected_duration=60
    )
    wf.set_progressive_execution({"groups": [["web"], ["db"]], "pause_between_waves": pause})
    wf.set_maintenance_window({"web": "Sunday 01:00-05:00", "db": "Sunday 01:00-05:00"})
    return inventory, wf


@pytest.mark.parametrize("solver", ["greedy", "cpsat"])
def test_run_once_hooks_take_time_between_waves(solver: str) -> None:
    inventory, wf = _hooked("5m")
    p = plan(wf, inventory, solver=solver, start=MONDAY, time_limit=1.0, num_workers=1)  # type: ignore[arg-type]
    assert check(p.problem, p) == []
    # after wave 0: undrain (60 s); the 5-minute pause; before wave 1: drain then notify (120 s)
    assert p.problem.gates == (60 + 300 + 120, 60)
    first = {c.host: c for c in p.problem.chains}
    assert first["w1"].release == 120  # wave 0 waits for its own drain and notify
    ends = {op.host: op.end for op in p.ops()}
    starts = {op.host: op.start for op in p.ops() if op.task == "update"}
    assert starts["d1"] >= max(ends["w1"], ends["w2"]) + timedelta(seconds=480)


def test_workflow_without_hooks_keeps_plain_gates() -> None:
    inventory, wf = brief()
    p = plan(wf, inventory, start=MONDAY)
    assert all(c.release == 0 for c in p.problem.chains)
    assert len(p.problem.gates) == 4


def test_hosts_share_a_shape_per_group_and_place_but_keep_their_own_instances() -> None:
    inventory = Inventory()
    for i, (group, dc) in enumerate([("web", "ams"), ("web", "fra"), ("web", "ams"), ("db", "ams")]):
        inventory.add_host(f"{group}{i}", [group], datacenter=dc)
    wf = MaintenanceWorkflow.model_validate(
        {
            "name": "shapes",
            "tasks": [
                {"id": "download", "run": "fetch", "expected_duration": "60s", "resources": {"uplink": 50}},
                {"id": "upgrade", "run": "upgrade", "expected_duration": "120s", "depends_on": ["download"]},
            ],
            "windows": {
                "timezone": "UTC",
                "groups": {"web": "Sunday 01:00-05:00", "db": "Sunday 01:00-05:00"},
            },
            "parallelism": {
                "max_parallel_per_group": 2,
                "pools": [{"name": "uplink", "capacity": 100, "scope": "datacenter"}],
                "disruption_budget": {"max_unavailable": 1},
            },
        }
    )
    model = DurationModel().with_priors({"download": 60.0, "upgrade": 120.0})
    for _ in range(20):
        model.observe("upgrade", "db", 600.0)
        model.observe("upgrade", "web", 100.0)
    p = plan(wf, inventory, start=MONDAY, durations=model).problem
    names = {
        c.host: [[p.resources[u.resource].name for u in us] for us in (*c.uses, c.span_uses)]
        for c in p.chains
    }
    assert "uplink[datacenter=fra]" in names["web1"][0] and "uplink[datacenter=ams]" in names["web0"][0]
    assert names["db3"][2] == ["disruption_budget[group=db]"]
    assert names["web2"][2] == ["disruption_budget[group=web]"]
    by_host = {c.host: c for c in p.chains}
    assert by_host["db3"].durations[1] > by_host["web0"].durations[1]  # the db group's own history
    assert by_host["web0"].uses is by_host["web2"].uses  # one shape per group and place, shared
