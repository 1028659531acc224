"""``delegate_to``: a host's step runs over another host's connection (or on the controller), with
the host's own variables; unknown delegates and contradictions are refused with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from sysflow.engine.dispatch import request_of
from sysflow.errors import WorkflowError
from sysflow.model.inventory import Inventory
from sysflow.model.loader import load_file
from sysflow.planner.compile import compile_workflow

WORKFLOW = """\
name: deploy
tasks:
  - id: drain
    targets: web
    delegate_to: {delegate}
    run: 'lb-ctl drain {{{{ host.name }}}}'
  - id: upgrade
    targets: web
    depends_on: [drain]
    run: apt-get -y upgrade
"""


def _inventory() -> Inventory:
    inv = Inventory()
    inv.add_group("web", ["web1", "web2"])
    inv.add_group("lb", ["lb1"], vars={"ansible_become": True})
    return inv


def _load(tmp_path: Path, delegate: str) -> object:
    path = tmp_path / "wf.yaml"
    path.write_text(WORKFLOW.format(delegate=delegate))
    return load_file(path)


def test_a_delegated_step_belongs_to_its_host_but_runs_on_the_delegate(tmp_path: Path) -> None:
    graph = compile_workflow(_load(tmp_path, "lb1"), _inventory())  # type: ignore[arg-type]
    drain = graph.ops["drain@web1"]
    assert (drain.host, drain.where, drain.delegate) == ("web1", "lb1", "lb1")
    assert request_of(drain, drain.command).host == "lb1"  # the load balancer's connection
    assert drain.become == "root"  # the delegate's become settings (ansible_become on lb1)
    assert graph.ops["upgrade@web1"].where == "web1" and graph.ops["upgrade@web1"].become is None
    assert graph.delegates == ["lb1"] and "lb1" not in graph.hosts  # not rolled out, but reached


def test_localhost_runs_the_step_on_the_controller(tmp_path: Path) -> None:
    graph = compile_workflow(_load(tmp_path, "localhost"), _inventory())  # type: ignore[arg-type]
    drain = graph.ops["drain@web2"]
    assert drain.local and drain.delegate is None and drain.host == "web2"


def test_an_unknown_delegate_is_named_with_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(WorkflowError) as info:
        compile_workflow(_load(tmp_path, "lb9"), _inventory())  # type: ignore[arg-type]
    assert "task 'drain': delegate_to 'lb9' is not a host of the inventory" in str(info.value)
    assert f"{tmp_path / 'wf.yaml'}:5" in str(info.value)


def test_a_local_task_cannot_also_be_delegated(tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(
        WORKFLOW.format(delegate="lb1").replace(
            "    delegate_to: lb1\n", "    delegate_to: lb1\n    local: true\n"
        )
    )
    with pytest.raises(WorkflowError) as info:
        load_file(path)
    assert "a local task cannot be delegated to lb1" in str(info.value)
