"""The workflow model: the brief's Python API, the same workflow as YAML, round-trips, field paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sysflow.errors import WorkflowError
from sysflow.model.inventory import Inventory
from sysflow.model.loader import yaml_positions
from sysflow.model.workflow import (
    DEFAULT_EXPECTED_DURATION,
    ExpiryPolicy,
    MaintenanceWorkflow,
    RolloutSpec,
    RolloutStrategy,
    Task,
    Workflow,
    resolve_count,
)
from sysflow.model.workflow_checks import find_cycles, task_order
from sysflow.planner.compile import compile_workflow
from sysflow.planner.graph import OpGraph

DATA = Path(__file__).parent / "data"
EXAMPLES = Path(__file__).parents[2] / "examples"
WEB = ["web01.example.com", "web02.example.com", "web03.example.com"]


def brief_inventory() -> Inventory:
    inventory = Inventory()
    inventory.add_group("web_servers", WEB)
    inventory.add_group("db_servers", ["db01.example.com", "db02.example.com"])
    inventory.add_group("cache_servers", ["cache01.example.com", "cache02.example.com"])
    return inventory


def brief_workflow() -> MaintenanceWorkflow:
    """The brief's example, as written there."""
    workflow = MaintenanceWorkflow("os_patching")
    workflow.add_task("backup", "tar -czf /backup/$(hostname)-$(date +%Y%m%d).tar.gz /etc", targets=["*"])
    workflow.add_task("update_repos", "apt-get update", targets=["*"])
    workflow.add_task("upgrade_packages", "apt-get -y upgrade", targets=["*"], depends_on=["update_repos"])
    workflow.add_task("restart_services", "systemctl restart nginx", targets=["web_servers"], depends_on=["upgrade_packages"])  # fmt: skip
    workflow.add_task("verify_web", "curl -s http://localhost/health | grep -q 'OK'", targets=["web_servers"], depends_on=["restart_services"])  # fmt: skip
    workflow.set_progressive_execution({
        "groups": [["web01.example.com"], ["web02.example.com", "web03.example.com"], ["db_servers"], ["cache_servers"]],
        "verification_tasks": ["verify_web"],
        "auto_rollback": True,
    })  # fmt: skip
    workflow.add_verification("verify_package_versions", {
        "before_tasks": ["backup"], "after_tasks": ["upgrade_packages"],
        "commands": {"package_versions": "dpkg -l | grep -E 'openssl|bash|kernel'"},
        "comparisons": {"package_versions": {"type": "regex_match", "pattern": r"ii\s+openssl\s+(\S+)", "expected_change": "version_increase"}},
    })  # fmt: skip
    workflow.set_maintenance_window({"web_servers": "Sunday 01:00-03:00", "db_servers": "Sunday 03:00-05:00", "cache_servers": "Sunday 01:00-05:00"})  # fmt: skip
    workflow.set_parallelization({"max_parallel_servers": 10, "max_parallel_per_group": 5, "delay_between_servers": "2s"})  # fmt: skip
    return workflow


def graph_shape(graph: OpGraph) -> tuple[object, ...]:
    return (graph.waves, graph.gates, dict(graph.ops), dict(graph.chains), sorted(graph.graph.edges))


def test_brief_example_builds_and_compiles() -> None:
    graph = compile_workflow(brief_workflow(), brief_inventory())
    assert len(graph.waves) == 4
    assert len(graph.hosts) == 7
    assert graph.waves[1] == ("web02.example.com", "web03.example.com")
    web = ["backup", "update_repos", "upgrade_packages", "restart_services", "verify_web"]
    for host in WEB:
        assert [op.task for op in graph.chain(host)] == web
    for host in ("db01.example.com", "db02.example.com", "cache01.example.com", "cache02.example.com"):
        assert [op.task for op in graph.chain(host)] == ["backup", "update_repos", "upgrade_packages"]
    assert len(graph) == 3 * 5 + 4 * 3
    assert [g.verification_tasks for g in graph.gates] == [("verify_web",)] * 3


def test_brief_dependencies_are_same_host_edges_and_gates_separate_waves() -> None:
    graph = compile_workflow(brief_workflow(), brief_inventory())
    edges = set(graph.graph.edges)
    assert ("update_repos@db01.example.com", "upgrade_packages@db01.example.com") in edges
    assert ("upgrade_packages@web02.example.com", "restart_services@web02.example.com") in edges
    assert ("verify_web@web01.example.com", "gate:0") in edges
    assert ("gate:0", "backup@web02.example.com") in edges
    assert ("gate:2", "update_repos@cache01.example.com") in edges
    op = graph.ops["restart_services@web01.example.com"]
    assert (op.group, op.wave, op.index, op.expected_duration) == (
        "web_servers",
        0,
        3,
        DEFAULT_EXPECTED_DURATION,
    )


def test_brief_as_yaml_compiles_to_the_same_graph() -> None:
    from_file = Workflow.from_yaml(DATA / "brief.yaml")
    assert from_file == brief_workflow()
    inventory = brief_inventory()
    assert graph_shape(compile_workflow(from_file, inventory)) == graph_shape(
        compile_workflow(brief_workflow(), inventory)
    )


@pytest.mark.parametrize("make", [brief_workflow, lambda: Workflow.from_file(EXAMPLES / "patching.yaml")])
def test_round_trip_yaml_and_json(make: object) -> None:
    assert callable(make)
    wf = make()
    assert Workflow.from_yaml(wf.to_yaml()) == wf
    assert Workflow.from_json(wf.to_json()) == wf
    assert Workflow.from_json(wf.to_json(indent=None)) == wf


def test_from_file_picks_json_by_suffix(tmp_path: Path) -> None:
    path = tmp_path / "wf.json"
    path.write_text(brief_workflow().to_json())
    assert Workflow.from_file(path) == brief_workflow()
    assert Workflow.from_json(str(path)).source == str(path)


def test_loaded_workflow_keeps_positions() -> None:
    wf = Workflow.from_yaml(DATA / "brief.yaml")
    assert wf.locate("tasks[2].depends_on") == f"{DATA / 'brief.yaml'}:13:5"
    assert wf.locate("tasks[2].depends_on[0]").endswith(":13:18")
    assert wf.locate("tasks[2].nothing").endswith(":13:5") is False
    assert wf.locate("tasks[2].nothing") == f"{DATA / 'brief.yaml'}:10:5"
    assert brief_workflow().locate("tasks[2].depends_on") == "tasks[2].depends_on"


def test_python_api_errors_name_field_paths() -> None:
    wf = brief_workflow()
    with pytest.raises(WorkflowError) as info:
        wf.add_task("late", "true", timeout="soon", colour="red")
    assert {p.location for p in info.value.problems} == {"tasks[5].timeout", "tasks[5].colour"}
    assert len(wf.tasks) == 5
    with pytest.raises(WorkflowError, match=r"rollout.strategy: Input should be"):
        wf.set_progressive_execution({"strategy": "yolo"})
    with pytest.raises(WorkflowError, match=r"verifications.v.commands"):
        wf.add_verification("v", {"commands": 5})
    with pytest.raises(WorkflowError, match=r"parallelism.max_parallel_servers"):
        wf.set_parallelization({"max_parallel_servers": 0})


def test_python_api_problems_name_field_paths() -> None:
    wf = brief_workflow()
    wf.add_task("x", "true", depends_on="nope")
    wf.add_task("x", "true")
    found = {str(p) for p in wf.problems()}
    assert "tasks[5].depends_on[0]: task 'x' depends on unknown task 'nope'" in found
    assert "tasks[6].id: duplicate task id 'x' (first defined at tasks[5].id)" in found
    with pytest.raises(WorkflowError):
        wf.check()
    assert brief_workflow().check().name == "os_patching"


def test_setters_accept_models_and_full_window_configs() -> None:
    wf = MaintenanceWorkflow(name="w")
    rollout = RolloutSpec(strategy=RolloutStrategy.CANARY, canary_size="10%")
    assert wf.set_progressive_execution(rollout) is rollout
    windows = wf.set_maintenance_window(
        {"timezone": "Europe/Amsterdam", "groups": {"web": ["Sun 01:00-02:00"]}}
    )
    assert windows.timezone == "Europe/Amsterdam"
    assert wf.set_maintenance_window(windows) is windows
    assert wf.set_parallelization(wf.parallelism) is wf.parallelism
    spec = wf.add_verification("v", {"commands": {"k": "uname -r"}})
    assert wf.add_verification("v2", spec) is spec


def test_task_defaults_and_validation() -> None:
    task = Task(id="t", run="true", targets="web*")
    assert task.targets == ["web*"]
    assert task.estimate == DEFAULT_EXPECTED_DURATION
    assert Task(id="t", run="true", expected_duration="PT2M").estimate == 120.0
    with pytest.raises(ValueError, match="resource demands must be >= 0: uplink"):
        Task(id="t", run="true", resources={"uplink": -1})
    with pytest.raises(ValueError, match="String should match pattern"):
        Task(id="a@b", run="true")


def test_rollout_spec_values() -> None:
    spec = RolloutSpec.model_validate({"waves": [["web_servers"], "db_servers"], "approval": True})
    assert spec.groups == [["web_servers"], ["db_servers"]]
    assert [spec.needs_approval(n) for n in (1, 2, 3)] == [False, True, True]
    assert RolloutSpec(approval=[3]).needs_approval(3)
    assert RolloutSpec(serial=[1, "5", "50%"]).serial == [1, 5, "50%"]
    assert RolloutSpec(serial="10%").serial == ["10%"]
    assert [RolloutSpec(serial=v).serial for v in ([], "0%", -1, 0)] == [[], ["0%"], [-1], [0]]
    for bad in (
        {"approval": [0]},
        {"serial": ["ten%"]},
        {"serial": True},
        {"max_failures": 1.5},
        {"canary_size": "x"},
    ):
        with pytest.raises(ValueError):
            RolloutSpec.model_validate(bad)


def test_resolve_count_rounds_down_like_ansible() -> None:
    assert resolve_count(3, 100) == 3
    assert resolve_count("10%", 25) == 2
    assert resolve_count("1%", 10, minimum=1) == 1


def test_whole_workflow_checks() -> None:
    wf = Workflow.model_validate(
        {
            "name": "w",
            "tasks": [
                {"id": "a", "run": "x", "resources": {"p": 5}},
                {"id": "b", "run": "y", "depends_on": ["a"]},
            ],
            "rollout": {"strategy": "rolling", "groups": [["all"]], "cutover_task": "zz"},
            "verifications": {"v": {"commands": {"c": "true"}, "comparisons": {"d": {"type": "changed"}}}},
            "parallelism": {
                "pools": [{"name": "p", "capacity": 10}, {"name": "p", "capacity": 3}],
                "rate_limits": [{"name": "r", "max_starts": 1, "per": "1s", "tasks": ["a", "c"]}],
            },
        }
    )
    messages = [p.message for p in wf.problems()]
    assert messages == [
        "unknown cutover task 'zz'",
        "'groups' waves are for the waves strategy, not rolling",
        "comparison 'd' has no probe command of that name",
        "duplicate pool name 'p'",
        "rate limit 'r' names unknown task 'c'",
    ]


def test_cycles_and_task_order() -> None:
    assert find_cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": ["a"]}) == [["a", "a"]]
    assert find_cycles({"a": ["x"], "b": ["a"]}) == []
    wf = Workflow.model_validate(
        {"name": "w", "tasks": [{"id": "c", "run": "1", "depends_on": ["b"]}, {"id": "a", "run": "1"},
                                {"id": "b", "run": "1", "depends_on": ["a"]}]}
    )  # fmt: skip
    assert task_order(wf) == ["a", "b", "c"]
    wf.add_task("d", "1", depends_on=["e"])
    wf.add_task("e", "1", depends_on=["d"])
    assert task_order(wf)[-2:] == ["d", "e"]


def test_schema_and_defaults() -> None:
    schema = MaintenanceWorkflow.model_json_schema()
    assert {"tasks", "rollout", "windows", "parallelism", "on_window_expiry"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False
    json.dumps(schema)
    wf = MaintenanceWorkflow("w")
    assert wf.on_window_expiry is ExpiryPolicy.FINISH
    assert wf != "w"
    assert wf.source is None


def test_loader_edge_cases(tmp_path: Path) -> None:
    with pytest.raises(WorkflowError, match="cannot read workflow"):
        Workflow.from_yaml(tmp_path / "missing.yaml")
    with pytest.raises(WorkflowError, match="cannot read workflow"):
        Workflow.from_yaml(str(tmp_path / "missing.yml"))
    with pytest.raises(WorkflowError, match="this is empty"):
        Workflow.from_yaml("# nothing\n")
    with pytest.raises(WorkflowError, match=r"<string>:1:1: a workflow must be a mapping"):
        Workflow.from_json("[1, 2]")
    tabbed = '{\n\t"name": "w",\n\t"colour": 1\n}'
    with pytest.raises(WorkflowError, match="unknown key 'colour'"):
        Workflow.from_json(tabbed)
    assert Workflow.from_yaml("name: inline").name == "inline"


def test_yaml_positions_reports_duplicate_keys() -> None:
    import yaml

    node = yaml.compose("a: 1\nb: [x, y]\na: 2\n")
    assert node is not None
    positions, problems = yaml_positions(node, "f")
    assert positions["b[1]"] == "f:2:8"
    assert [str(p) for p in problems] == ["f:3:1: duplicate key 'a' (first at f:1:1)"]


def test_schema_accepts_text_durations_and_percentages() -> None:
    defs = MaintenanceWorkflow.model_json_schema()["$defs"]
    timeout = defs["Task"]["properties"]["timeout"]["anyOf"]
    assert {"type": "string"} in timeout
    assert {"type": "string"} in defs["RolloutSpec"]["properties"]["canary_size"]["anyOf"]


@pytest.mark.parametrize("path", [EXAMPLES / "patching.yaml", DATA / "brief.yaml"])
def test_published_schema_accepts_valid_files(path: Path) -> None:
    import jsonschema
    import yaml

    schema = MaintenanceWorkflow.model_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    data = json.loads(json.dumps(yaml.safe_load(path.read_text()), default=str))
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(data)) == []


def test_published_schema_rejects_unknown_keys() -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(MaintenanceWorkflow.model_json_schema())
    errors = list(validator.iter_errors({"name": "w", "tasks": [{"id": "a", "run": "b", "colour": 1}]}))
    assert ["'colour' was unexpected" in e.message for e in errors] == [True]


def test_set_maintenance_window_forms() -> None:
    wf = MaintenanceWorkflow("w")
    assert wf.set_maintenance_window({"timezone": "Europe/Berlin"}).timezone == "Europe/Berlin"
    windows = wf.set_maintenance_window(
        {"web": ["Sun 01:00-02:00", "Wed 01:00-02:00"], "db": "daily 03:00-04:00"}
    )
    assert [len(v) for v in windows.groups.values()] == [2, 1]
    with pytest.raises(WorkflowError, match=r"windows.groups.web\[0\].weekly: unknown day"):
        wf.set_maintenance_window({"web": "Sundy 01:00-02:00"})


def test_one_line_json_text_is_read_as_text_not_as_a_path() -> None:
    from sysflow.model.workflow import MaintenanceWorkflow

    wf = MaintenanceWorkflow("one-line")
    wf.add_task("t", "true")
    text = wf.model_dump_json()
    assert "\n" not in text
    assert MaintenanceWorkflow.from_json(text) == wf
    with pytest.raises(WorkflowError):  # a long non-path string is a clear input error, not an OSError
        MaintenanceWorkflow.from_json("y" * 5000)
