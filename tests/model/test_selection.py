"""Narrowing before planning (sysflow.model.selection, sysflow.cli.targeting): Ansible's tag rules,
order kept through dropped tasks, limits that never add a host to a task, extra-var precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from sysflow.cli.targeting import Targeting, limit_terms, narrow, parse_extra_vars
from sysflow.errors import InventoryError, WorkflowError
from sysflow.model.inventory import Inventory
from sysflow.model.selection import (
    TagSelection,
    dependency_order,
    limit_hosts,
    limited_inventory,
    lower_parallelism,
    select_tasks,
    with_extra_vars,
)
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.planner.compile import compile_workflow


def _workflow() -> MaintenanceWorkflow:
    wf = MaintenanceWorkflow("wf")
    wf.add_task("a", "echo a", tags=["prep"])
    wf.add_task("b", "echo b", depends_on="a", tags=["patch"])
    wf.add_task("c", "echo c", depends_on="b", tags=["patch", "reboot"])
    wf.add_task("d", "echo d", depends_on="c", tags=["always"])
    wf.add_task("e", "echo e", depends_on="d", tags=["never", "debug"])
    wf.add_task("f", "echo f")  # untagged, no dependencies
    return wf


def _chosen(**kw: object) -> list[str]:
    return [t.id for t in select_tasks(_workflow(), TagSelection(**kw)).tasks]  # type: ignore[arg-type]


def test_tags_follow_ansible_always_never_tagged_untagged() -> None:
    assert _chosen() == ["a", "b", "c", "d", "f"]  # 'never' only when asked
    assert _chosen(tags=frozenset({"patch"})) == ["b", "c", "d"]  # 'always' too
    assert _chosen(tags=frozenset({"debug"})) == ["d", "e"]  # a 'never' task named by its other tag
    assert _chosen(tags=frozenset({"untagged"})) == ["d", "f"]
    assert _chosen(tags=frozenset({"tagged"})) == ["a", "b", "c", "d"]
    assert _chosen(skip_tags=frozenset({"always"})) == ["a", "b", "c", "f"]
    assert _chosen(tags=frozenset({"patch"}), skip_tags=frozenset({"reboot"})) == ["b", "d"]


def test_a_dropped_task_passes_its_order_on() -> None:
    wf = select_tasks(_workflow(), TagSelection(skip_tags=frozenset({"patch"})))
    assert {t.id: t.depends_on for t in wf.tasks} == {"a": [], "d": ["a"], "f": []}
    assert _workflow().task("d").depends_on == ["c"]  # the original is untouched


def test_start_at_task_counts_in_dependency_order() -> None:
    wf = MaintenanceWorkflow("wf")
    wf.add_task("late", "true", depends_on="early")
    wf.add_task("early", "true")
    wf.add_task("other", "true")
    assert dependency_order(wf) == ["early", "other", "late"]
    assert [t.id for t in select_tasks(wf, TagSelection(start_at="other")).tasks] == ["late", "other"]
    with pytest.raises(WorkflowError, match=r"no such task; tasks: late, early, other"):
        select_tasks(wf, TagSelection(start_at="nope"))


def test_unknown_tags_warn_with_the_known_ones() -> None:
    selection = TagSelection(tags=frozenset({"pacth", "patch"}))
    select_tasks(_workflow(), selection)
    assert selection.warnings == [
        "warning: no task has tag(s) pacth; known tags: always, debug, never, patch, prep, reboot"
    ]
    with pytest.raises(WorkflowError, match="leave no task"):
        select_tasks(_workflow(), TagSelection(tags=frozenset({"nothing"}), skip_tags=frozenset({"always"})))


def _inventory() -> Inventory:
    inv = Inventory()
    inv.add_group("web", ["web1", "web2", "web3"], vars={"pkg": "curl"})
    inv.add_group("db", ["db1"])
    inv.add_host("web2", pkg="nginx")
    inv.host_vars_dir["web3"] = {"pkg": "from-host-vars"}
    return inv


def test_limit_keeps_groups_and_never_adds_a_host_to_a_task() -> None:
    inv = _inventory()
    wf = MaintenanceWorkflow("wf")
    wf.add_task("first_web", "true", targets="web[0]")
    wf.add_task("dbs", "true", targets="db")
    aim = Targeting(limit="web2,web3,db1")
    narrowed, small = narrow(wf, inv, aim)
    assert list(small.hosts) == ["web2", "web3", "db1"]
    assert small.group_hosts("web") == ["web2", "web3"] and small.host_vars("web2")["pkg"] == "nginx"
    graph = compile_workflow(narrowed, small)
    assert sorted((op.task, op.host) for op in graph) == [("dbs", "db1")]  # web[0] is web1: not limited in
    narrowed, small = narrow(wf, inv, Targeting(limit="web*"))
    assert [(t.id, t.targets) for t in narrowed.tasks] == [("first_web", ["web1"])]  # dbs: no host left
    assert sorted((op.task, op.host) for op in compile_workflow(narrowed, small)) == [("first_web", "web1")]
    with pytest.raises(WorkflowError, match="the limit leaves no task with a host to run on"):
        narrow(wf, inv, Targeting(limit="web3"))
    assert list(inv.hosts) == ["web1", "web2", "web3", "db1"]  # the input is untouched


def test_limit_patterns_files_and_errors(tmp_path: Path) -> None:
    inv = _inventory()
    assert limit_hosts(inv, limit_terms("web*:!web2", inv, None)) == ["web1", "web3"]
    assert limit_hosts(inv, limit_terms("web:&~.*[13]$", inv, None)) == ["web1", "web3"]
    retry = tmp_path / "retry"
    retry.write_text("# from the last run\nweb3\n\ndb1\n")
    assert limit_hosts(inv, limit_terms(f"@{retry}", inv, None)) == ["web3", "db1"]
    with pytest.raises(InventoryError, match=r"--limit 'web\*,dbx': 'dbx' matches no host"):
        limit_terms("web*,dbx", inv, None)
    with pytest.raises(InventoryError, match="matches no host of the inventory"):
        limit_terms("web:&db", inv, None)
    assert limited_inventory(inv, ["db1"]).group_hosts("web") == []


def test_extra_vars_beat_every_inventory_layer() -> None:
    inv = with_extra_vars(_inventory(), parse_extra_vars(["pkg=openssl extra='a b'"]))
    assert {h: inv.host_vars(h)["pkg"] for h in inv.hosts} == dict.fromkeys(inv.hosts, "openssl")
    assert inv.host_vars("db1")["extra"] == "a b"
    assert parse_extra_vars(['{"n": 1, "l": [1, 2]}', "n=2"]) == {"n": "2", "l": [1, 2]}
    for bad in ("novalue", "[1, 2]", "{unclosed", "1x=2"):
        with pytest.raises(WorkflowError, match="-e"):
            parse_extra_vars([bad])


def test_extra_vars_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "vars.yaml"
    path.write_text("pkg: zlib\nversions: [1, 2]\n")
    assert parse_extra_vars([f"@{path}"]) == {"pkg": "zlib", "versions": [1, 2]}


def test_forks_lower_only_unless_forced() -> None:
    wf = MaintenanceWorkflow("wf")
    wf.add_task("t", "true")
    assert lower_parallelism(wf, 7).parallelism.max_parallel_servers == 7  # no own limit
    wf.set_parallelization({"max_parallel_servers": 4})
    assert lower_parallelism(wf, 2).parallelism.max_parallel_servers == 2
    with pytest.raises(WorkflowError, match=r"--forks 5 is above the workflow's max_parallel_servers \(4\)"):
        lower_parallelism(wf, 5)
    assert lower_parallelism(wf, 5, force=True).parallelism.max_parallel_servers == 5
    with pytest.raises(WorkflowError, match="at least 1"):
        lower_parallelism(wf, 0)


def test_a_limit_fits_approvals_and_failure_counts_to_what_it_leaves() -> None:
    inv = _inventory()
    wf = MaintenanceWorkflow("wf")
    wf.add_task("t", "true")
    wf.set_progressive_execution({"strategy": "rolling", "serial": 1, "approval": [2, 3], "max_failures": 3})
    aim = Targeting(limit="web1,web2")
    narrowed, small = narrow(wf, inv, aim)
    assert narrowed.rollout.approval == [2] and narrowed.rollout.max_failures == 2
    assert aim.warnings == [
        "warning: the limit leaves 2 waves: no approval before wave 3",
        "warning: the limit leaves 2 hosts: max_failures 3 lowered to 2",
    ]
    assert len(compile_workflow(narrowed, small).waves) == 2  # compiles: no approval of a missing wave
    with pytest.raises(WorkflowError, match="approval for wave 3"):
        compile_workflow(wf, small)  # what the limit alone would have left
