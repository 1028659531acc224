"""Become settings: where each comes from (task > host's ansible_become* > workflow), what
``sysflow validate`` refuses with file:line (su, doas, become on a local task), and that only
remote host operations (never local tasks) carry a become user after compile."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sysflow.errors import InventoryError, WorkflowError
from sysflow.model.become import BecomeSetting, resolve_become
from sysflow.model.inventory import Inventory
from sysflow.model.inventory_files import load_inventory
from sysflow.model.loader import load_file
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.planner.compile import compile_workflow
from sysflow.planner.graph import op_id


def test_the_first_level_that_sets_a_field_decides_it() -> None:
    task, host, play = BecomeSetting(), BecomeSetting(user="postgres"), BecomeSetting(True)
    assert resolve_become(task, host, play) == "postgres"
    assert resolve_become(BecomeSetting(False), host, play) is None
    assert resolve_become(task, BecomeSetting(), play) == "root"
    assert resolve_become(BecomeSetting(), BecomeSetting(), BecomeSetting()) is None


def _inventory() -> Inventory:
    inv = Inventory()
    inv.add_host("web1", ["web"])
    inv.add_host("db1", ["db"], ansible_become="yes", ansible_become_user="postgres")
    return inv


def test_compiled_operations_carry_the_resolved_user() -> None:
    wf = MaintenanceWorkflow(
        "w",
        tasks=[
            {"id": "a", "run": "id -un"},
            {"id": "b", "run": "id -un", "become": True, "depends_on": ["a"]},
            {"id": "c", "run": "id -un", "become": False, "depends_on": ["b"]},
            {"id": "d", "run": "date", "local": True, "run_once": True},
        ],
    )
    graph = compile_workflow(wf, _inventory())
    become = {oid: op.become for oid, op in graph.ops.items()}
    assert become[op_id("web1", "a")] is None
    assert become[op_id("web1", "b")] == "root"
    assert become[op_id("db1", "a")] == "postgres"  # the host's ansible_become
    assert become[op_id("db1", "b")] == "postgres"
    assert become[op_id("db1", "c")] is None  # the task's own false wins
    assert all(op.become is None for op in graph.ops.values() if op.local)
    on = compile_workflow(wf.model_copy(update={"become": True}), _inventory())
    assert on.ops[op_id("web1", "a")].become == "root"  # sysflow run --become


def test_validate_refuses_su_doas_and_local_become_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(
        "name: w\nbecome_method: doas\ntasks:\n  - id: a\n    run: id\n    become_method: su\n"
        "  - id: b\n    run: id\n    local: true\n    become: true\n"
    )
    with pytest.raises(WorkflowError) as err:
        load_file(path)
    text = str(err.value)
    assert "wf.yaml:2" in text and "become_method doas is not supported" in text
    assert "wf.yaml:4:5" in text and "become_method su is not supported" in text
    assert "wf.yaml:7:5" in text and "become cannot be used on a local task" in text


def test_inventory_become_variables_are_checked_where_they_are_read(tmp_path: Path) -> None:
    path = tmp_path / "hosts.ini"
    path.write_text("[web]\nweb1 ansible_become=maybe\nweb2 ansible_become_method=su\n")
    with pytest.raises(InventoryError) as err:
        load_inventory(path)
    text = str(err.value)
    assert "hosts.ini:2" in text and "ansible_become 'maybe' is not a boolean" in text
    assert "hosts.ini:3" in text and "become_method su is not supported" in text


def test_sysflow_validate_exits_1_with_the_location(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text("name: w\ntasks:\n  - id: a\n    run: id\n    become_method: su\n")
    (tmp_path / "hosts.ini").write_text("web1\n")
    argv = [
        sys.executable,
        "-m",
        "sysflow",
        "validate",
        str(tmp_path / "wf.yaml"),
        "-i",
        str(tmp_path / "hosts.ini"),
    ]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "wf.yaml:3:5: tasks[0]: become_method su is not supported" in out.stdout + out.stderr
    assert "Traceback" not in out.stderr
