"""compile_workflow: waves per strategy, hooks, bridging, host facts, and inventory-aware checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sysflow.errors import WorkflowError
from sysflow.model.inventory import Inventory
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.planner.compile import UNGROUPED, compile_workflow, hook_host, primary_group
from sysflow.planner.graph import OpGraph, op_id


def fleet(n: int = 10) -> Inventory:
    """``n`` web hosts (half ams, half fra) and two db hosts."""
    inv = Inventory()
    inv.add_group("web", [f"web{i:02d}" for i in range(n)])
    inv.add_group("db", ["db01", "db02"], vars={"datacenter": "fra"})
    for i in range(n):
        inv.add_host(f"web{i:02d}", datacenter="ams" if i < n // 2 else "fra")
    return inv


def workflow(rollout: dict[str, Any] | None = None, **extra: Any) -> MaintenanceWorkflow:
    wf = MaintenanceWorkflow.model_validate({"name": "w", **extra})
    wf.add_task("update", "apt-get update")
    wf.add_task("upgrade", "apt-get -y upgrade", depends_on=["update"])
    if rollout is not None:
        wf.set_progressive_execution(rollout)
    return wf


def sizes(graph: OpGraph) -> list[int]:
    return [len(w) for w in graph.waves]


def problems(wf: MaintenanceWorkflow, inv: Inventory) -> list[str]:
    with pytest.raises(WorkflowError) as info:
        compile_workflow(wf, inv)
    return [str(p) for p in info.value.problems]


def test_default_is_one_wave_in_inventory_order() -> None:
    graph = compile_workflow(workflow(), fleet(4))
    assert graph.waves == (("web00", "web01", "web02", "web03", "db01", "db02"),)
    assert graph.gates == ()
    assert graph.host_wave["db02"] == 0
    assert len(graph) == 12


def test_canary_count_and_percentage() -> None:
    assert sizes(compile_workflow(workflow({"strategy": "canary", "canary_size": 2}), fleet())) == [2, 10]
    assert sizes(compile_workflow(workflow({"strategy": "canary", "canary_size": "25%"}), fleet())) == [3, 9]
    assert sizes(compile_workflow(workflow({"strategy": "canary", "canary_size": "1%"}), fleet())) == [1, 11]
    assert sizes(compile_workflow(workflow({"strategy": "canary", "canary_size": 12}), fleet())) == [12]


def test_canary_bake_goes_to_the_first_gate() -> None:
    graph = compile_workflow(
        workflow({"strategy": "canary", "canary_bake": "10m", "pause_between_waves": 30}), fleet()
    )
    assert graph.gates[0].pause == 630.0


def test_canary_larger_than_fleet_is_a_problem() -> None:
    found = problems(workflow({"strategy": "canary", "canary_size": 50}), fleet())
    assert found == ["rollout.canary_size: canary_size 50 is larger than the 12 targeted hosts"]


def test_rolling_serial_last_value_repeats_and_percentages_round_down() -> None:
    graph = compile_workflow(workflow({"strategy": "rolling", "serial": [1, "10%", "50%"]}), fleet(18))
    assert sizes(graph) == [1, 2, 10, 7]
    assert sizes(compile_workflow(workflow({"strategy": "rolling", "serial": [5]}), fleet())) == [5, 5, 2]
    assert sizes(compile_workflow(workflow({"strategy": "rolling", "serial": ["1%"]}), fleet(2))) == [
        1,
        1,
        1,
        1,
    ]
    assert len(compile_workflow(workflow({"strategy": "rolling"}), fleet(2)).gates) == 3


def test_ordering_sorted_and_seeded_shuffle() -> None:
    inv = Inventory()
    inv.add_group("g", ["c", "a", "b", "d"])
    wf = workflow({"strategy": "rolling", "serial": [2], "ordering": "sorted"})
    assert compile_workflow(wf, inv).waves == (("a", "b"), ("c", "d"))
    first = compile_workflow(workflow({"strategy": "canary", "ordering": "shuffle", "seed": 7}), fleet())
    again = compile_workflow(workflow({"strategy": "canary", "ordering": "shuffle", "seed": 7}), fleet())
    assert first.waves == again.waves
    assert sorted(first.hosts) == sorted(fleet().hosts)


def test_blue_green_deploys_green_first_and_cuts_over_at_the_gate() -> None:
    wf = workflow({"strategy": "blue_green", "green": "web", "blue": ["db"], "cutover_task": "switch"})
    wf.add_task("switch", "lb switch", run_once=True, local=True, targets="web")
    graph = compile_workflow(wf, fleet(2))
    assert graph.waves == (("web00", "web01"), ("db01", "db02"))
    assert graph.gates[0].cutover_task == "switch"
    assert graph.ops["switch@@wave1"].local


def test_blue_green_problems() -> None:
    wf = workflow({"strategy": "blue_green", "green": ["web"], "blue": ["web00", "nothing*"]})
    found = problems(wf, fleet(2))
    assert "rollout.blue: blue set: 'nothing*' matches no host or group" in found
    assert "rollout.blue: blue set: web00 already in green set" in found
    found = problems(workflow({"strategy": "blue_green", "green": ["web"]}), fleet(2))
    assert found == ["rollout: blue_green rollout needs a 'blue' set"]


def test_explicit_waves_problems() -> None:
    wf = workflow({"groups": [["web"], ["web01"]]})
    found = problems(wf, fleet(2))
    assert "rollout.groups[1]: wave 2: web01 already in wave 1" in found
    assert "rollout.groups: targeted hosts in no wave: db01, db02" in found
    inv = fleet(2)
    inv.add_group("spare", ["spare01"])
    wf = workflow({"groups": [["web", "db"], ["spare"]]})
    wf.tasks[0] = wf.tasks[0].model_copy(update={"targets": ["web", "db"]})
    wf.tasks[1] = wf.tasks[1].model_copy(update={"targets": ["web", "db"]})
    assert problems(wf, inv) == ["rollout.groups[1]: wave 2: no host of it is targeted by any task"]


def test_many_overlaps_are_summarised() -> None:
    found = problems(workflow({"groups": [["web"], ["web"]]}), fleet(8))
    assert (
        "rollout.groups[1]: wave 2: web00, web01, web02, web03, web04 and 3 more already in wave 1" in found
    )


def test_targets_matching_nothing() -> None:
    wf = workflow()
    wf.add_task("mail", "true", targets=["mail*"])
    wf.add_task("empty", "true", targets=["web:&db"])
    found = problems(wf, fleet(2))
    assert found == [
        "tasks[2].targets: task 'mail': target 'mail*' matches no host or group",
        "tasks[3].targets: task 'empty' targets no host",
    ]


def test_absent_dependency_is_bridged_to_its_own_dependencies() -> None:
    wf = workflow()
    wf.add_task("restart_web", "systemctl restart nginx", targets="web", depends_on=["upgrade"])
    wf.add_task("web_only", "true", targets="web")
    wf.add_task("after", "true", depends_on=["web_only"])
    graph = compile_workflow(wf, fleet(2))
    edges = set(graph.graph.edges)
    assert ("update@db01", "upgrade@db01") in edges
    assert [op.task for op in graph.chain("db01")] == ["update", "upgrade", "after"]
    assert ("web_only@web00", "after@web00") in edges
    assert not any(dst == "after@db01" for _, dst in edges)


def test_run_once_hooks_wrap_each_wave() -> None:
    wf = workflow({"strategy": "rolling", "serial": [2]})
    wf.add_task("drain", "lb drain", run_once=True, local=True)
    wf.add_task("patch", "true", depends_on=["drain", "upgrade"])
    wf.add_task("undrain", "lb undrain", run_once=True, local=True, depends_on=["patch", "drain"])
    graph = compile_workflow(wf, fleet(2))
    assert len(graph.waves) == 2
    label = hook_host(0)
    assert label == "@wave1"
    assert graph.chains[label] == ("drain@@wave1", "undrain@@wave1")
    edges = set(graph.graph.edges)
    assert ("drain@@wave1", "patch@web00") in edges
    assert ("patch@web01", "undrain@@wave1") in edges
    assert ("drain@@wave1", "undrain@@wave1") in edges
    assert ("undrain@@wave1", "gate:0") in edges
    assert ("gate:0", "drain@@wave2") in edges
    hook = graph.ops["drain@@wave2"]
    assert (hook.run_once, hook.group, hook.wave, hook.host) == (True, UNGROUPED, 1, "@wave2")


def test_predecessors_agree_with_the_networkx_dag_built_only_when_asked() -> None:
    wf = workflow({"strategy": "rolling", "serial": [2]})
    wf.add_task("drain", "lb drain", run_once=True, local=True)
    wf.add_task("patch", "true", depends_on=["drain", "upgrade"])
    graph = compile_workflow(wf, fleet(4))
    assert "graph" not in vars(graph)  # compiling built no DiGraph
    assert set(graph.predecessors("patch@web00")) == {"drain@@wave1", "upgrade@web00"}
    assert graph.predecessors("update@web00") == ()
    dag = graph.graph
    for node in dag.nodes:
        assert graph.predecessors(node) == tuple(dag.predecessors(node))
    assert dag.number_of_nodes() == len(graph) + len(graph.gates)


def test_a_simulated_run_never_imports_networkx() -> None:
    """networkx costs a run 11 MB and 0.1 s of imports: only ``OpGraph.graph`` brings it in."""
    import subprocess
    import sys

    code = (
        "import sys; from sysflow.cli import app; from typer.testing import CliRunner; "
        "r = CliRunner().invoke(app, ['sim', 'examples/demo/patching.yaml', '--hosts', '20']); "
        "assert r.exit_code == 0, r.output; print('networkx' in sys.modules)"
    )
    root = Path(__file__).parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_hook_only_for_waves_holding_its_targets() -> None:
    wf = workflow({"groups": [["web"], ["db"]]})
    wf.add_task("notify_web", "true", run_once=True, targets="web")
    wf.add_task("patch", "true", depends_on=["notify_web"])
    graph = compile_workflow(wf, fleet(2))
    assert "notify_web@@wave1" in graph.ops
    assert "@wave2" not in graph.chains
    assert ("gate:0", "patch@db01") in set(graph.graph.edges)


def test_host_facts_from_host_and_group_vars() -> None:
    inv = Inventory()
    inv.add_group("dc", children=["web"], vars={"datacenter": "ams", "segment": "ams-core"})
    inv.add_group("web", ["w1", "w2", "w3"], vars={"datacenter": "fra"})
    inv.add_host("w2", datacenter="lon")
    inv.add_host("w3", segment="rack9")
    inv.add_host("loner")
    graph = compile_workflow(workflow(), inv)
    w1, w2, w3, loner = (graph.ops[f"update@{h}"] for h in ("w1", "w2", "w3", "loner"))
    assert (w1.group, w1.groups, w1.datacenter, w1.segment) == ("dc", ("dc", "web"), "fra", "ams-core")
    assert (w2.datacenter, w2.segment) == ("lon", "lon")
    assert (w3.datacenter, w3.segment) == ("fra", "rack9")
    assert (loner.group, loner.datacenter, loner.segment) == (UNGROUPED, None, None)
    assert primary_group(["all", "web"]) == "web"


def test_operations_carry_task_settings() -> None:
    wf = MaintenanceWorkflow("w", parallelism={"pools": [{"name": "uplink", "capacity": 100}]})
    wf.add_task("up", "apt-get -y upgrade", timeout="30m", retries=2, rollback="undo", expected_duration="4m",
                resources={"uplink": 40}, local=False)  # fmt: skip
    op = compile_workflow(wf, fleet(1)).ops["up@web00"]
    assert (op.timeout, op.retries, op.rollback, op.expected_duration) == (1800.0, 2, "undo", 240.0)
    assert op.demands == (("uplink", 40.0),)
    assert op.demand("uplink") == 40.0


def test_gates_carry_approvals_pauses_and_verifications() -> None:
    wf = workflow({"strategy": "rolling", "serial": [1], "approval": [3], "pause_between_waves": "1m",
                   "verification_tasks": ["upgrade"]})  # fmt: skip
    wf.add_verification("versions", {"commands": {"v": "uname -r"}})
    gates = compile_workflow(wf, fleet(2)).gates
    assert [g.approval for g in gates] == [False, True, False]
    assert {g.pause for g in gates} == {60.0}
    assert gates[0].verifications == ("versions",)
    assert gates[1].id == "gate:1"


def test_inventory_aware_checks_collect_everything() -> None:
    wf = workflow(
        {"groups": [["web"], ["db"]], "approval": [5], "failure_budget": 99},
        windows={"groups": {"web": "Sun 01:00-02:00", "mail": "Sun 01:00-02:00"}},
        parallelism={
            "pools": [{"name": "p", "capacity": 1, "groups": ["dbs"]}],
            "disruption_budget": {"max_unavailable": 1, "groups": ["cache"]},
        },
        notifications=[{"url": "https://hooks.example.com/x", "groups": ["ops"]}],
        verifications={
            "v": {"targets": ["mail*"], "drift": {"group": "nope", "golden_host": "ghost"}},
        },
    )
    found = problems(wf, fleet(2))
    assert found == [
        "windows.groups.mail: window for unknown group 'mail'",
        "parallelism.pools[0].groups[0]: pool 'p' names unknown group 'dbs'",
        "parallelism.disruption_budget.groups[0]: disruption budget names unknown group 'cache'",
        "notifications[0].groups[0]: notification route names unknown group 'ops'",
        "rollout.failure_budget: failure_budget 99 exceeds the 4 targeted hosts",
        "rollout.approval[0]: approval for wave 5, but there are 2 waves",
        "verifications.v.targets: verification 'v': target 'mail*' matches no host or group",
        "verifications.v.drift.group: verification 'v': drift group 'nope' is unknown",
        "verifications.v.drift.golden_host: verification 'v': golden host 'ghost' is not in the inventory",
    ]


def test_workflow_without_tasks_compiles_to_nothing() -> None:
    graph = compile_workflow(MaintenanceWorkflow("empty"), fleet(1))
    assert (len(graph), graph.waves, graph.hosts) == (0, (), [])


def test_cycle_does_not_stop_other_checks() -> None:
    wf = workflow()
    wf.add_task("a", "true", depends_on=["b"], targets="nowhere")
    wf.add_task("b", "true", depends_on=["a"])
    found = problems(wf, fleet(1))
    assert "tasks[2].depends_on: dependency cycle: a -> b -> a" in found
    assert "tasks[2].targets: task 'a': target 'nowhere' matches no host or group" in found


def test_ten_thousand_operations_compile() -> None:
    inv = Inventory()
    for g in range(20):
        inv.add_group(f"g{g}", [f"h{g}-{i}" for i in range(100)])
    wf = workflow({"strategy": "rolling", "serial": ["10%"]})
    for t in ("a", "b", "c"):
        wf.add_task(t, "true", depends_on=["upgrade"])
    graph = compile_workflow(wf, inv)
    assert len(graph) == 10_000
    assert graph.graph.number_of_nodes() == 10_000 + len(graph.gates)
    assert sizes(graph) == [200] * 10


def test_blue_green_hosts_in_neither_set() -> None:
    found = problems(workflow({"strategy": "blue_green", "green": ["web00"], "blue": ["web01"]}), fleet(2))
    assert found == ["rollout: targeted hosts in no wave: db01, db02"]


# -- properties ------------------------------------------------------------------------------------------

TASK_IDS = ["t0", "t1", "t2", "t3", "t4"]


@st.composite
def random_case(draw: st.DrawFn) -> tuple[MaintenanceWorkflow, Inventory]:
    """A random acyclic workflow (deps only on earlier tasks) over a random fleet, random rollout."""
    inv = Inventory()
    groups = draw(st.integers(1, 4))
    for g in range(groups):
        inv.add_group(f"g{g}", [f"h{g}-{i}" for i in range(draw(st.integers(1, 6)))])
    wf = MaintenanceWorkflow("prop")
    for i, tid in enumerate(TASK_IDS[: draw(st.integers(1, 5))]):
        deps = draw(st.lists(st.sampled_from(TASK_IDS[:i]), unique=True)) if i else []
        targets = draw(st.sampled_from([["all"], ["g0"], [f"g{groups - 1}"], ["g0", f"g{groups - 1}"]]))
        wf.add_task(tid, "true", targets=targets, depends_on=deps, run_once=draw(st.booleans()) and i > 0)
    if all(t.run_once for t in wf.tasks):
        wf.add_task("base", "true")
    strategy = draw(st.sampled_from(["waves", "canary", "rolling"]))
    serial = draw(st.lists(st.sampled_from([1, 2, "10%", "50%"]), min_size=1, max_size=3))
    size = draw(st.sampled_from([1, "20%"]))
    wf.set_progressive_execution({"strategy": strategy, "serial": serial, "canary_size": size})
    return wf, inv


@settings(max_examples=60, deadline=None, derandomize=True)
@given(random_case())
def test_compiled_graph_invariants(case: tuple[MaintenanceWorkflow, Inventory]) -> None:
    import networkx as nx

    wf, inv = case
    graph = compile_workflow(wf, inv)
    assert nx.is_directed_acyclic_graph(graph.graph)
    hosts = graph.hosts
    assert len(hosts) == len(set(hosts))
    assert all(graph.host_wave[h] == w for w, wave in enumerate(graph.waves) for h in wave)
    assert all(graph.waves)
    by_id = {t.id: t for t in wf.tasks}
    for host, chain in graph.chains.items():
        ops = [graph.ops[i] for i in chain]
        assert [op.index for op in ops] == list(range(len(ops)))
        assert all(op.host == host for op in ops)
        position = {op.task: op.index for op in ops}
        for op in ops:
            for dep in by_id[op.task].depends_on:
                if dep in position:  # same-host dependency: an edge path runs from it to op
                    assert nx.has_path(graph.graph, op_id(host, dep), op.id)
    for w in range(1, len(graph.waves)):  # every op of a later wave comes after the gate before it
        for host in graph.waves[w]:
            for oid in graph.chains.get(host, ()):
                assert nx.has_path(graph.graph, f"gate:{w - 1}", oid)
