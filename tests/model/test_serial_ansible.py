"""Differential table: a rolling ``serial`` cuts exactly the batches ansible-core cuts.

The expected side is ansible-core itself, in process: a real ``Play`` is loaded with the spec as its
``serial`` and post-validated (which turns a scalar into a list, as a playbook run does), and
``PlaybookExecutor._get_serialized_batches`` (which calls ``pct_to_int``) cuts a list of fake host
names that a stand-in inventory returns. Nothing of Ansible is re-implemented here.

The sysflow side validates the same spec as ``RolloutSpec.serial`` and cuts the same names with
``serial_batches``; a sample also goes through ``compile_workflow`` and through YAML files. Values
Ansible fails on are refused by sysflow at validation, with a located error; the two kinds of value
sysflow refuses although Ansible reads them (booleans, fractions) are checked against Ansible too,
so the refusal stays a deliberate, documented difference.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sysflow.errors import WorkflowError
from sysflow.model.inventory import Inventory
from sysflow.model.serial import serial_batches
from sysflow.model.workflow import MaintenanceWorkflow, RolloutSpec
from sysflow.planner.compile import compile_workflow

HOST_COUNTS = [*range(61), 97, 100, 101, 199, 256, 1000, 1001, 4099]

SPECS: list[Any] = [
    # scalars: counts
    1,
    2,
    5,
    7,
    60,
    61,
    1000,
    2.0,
    "3",
    " 4 ",
    # scalars: all hosts at once
    -1,
    0,
    -5,
    "-1",
    "0",
    # scalars: percentages
    "1%",
    "10%",
    "29%",
    "33%",
    "50%",
    "57%",
    "99%",
    "100%",
    "150%",
    "0%",
    "-10%",
    "-100%",
    "-250%",
    " 25%",
    "%10%",
    # lists (the last value repeats)
    [],
    [1],
    [1, "10%", "50%"],
    [1, "25%", "50%"],
    ["1%", "10%", "100%"],
    [1, "5", "50%"],
    [1, 0, 2],
    [2, -1],
    [3, "150%"],
    ["33%", 1],
    ["0%", 2],
    [1, 2, 3, 4, 5],
    ["10%", "-1"],
    [1, "-10%", 3],
    [5, "1%", "200%", 2],
    ["7%", "13%", "31%"],
]

# Ansible fails on these (at the latest when the play runs); sysflow refuses them at validation.
ANSIBLE_FAILS: list[Any] = [
    None,
    "abc",
    "2.5",
    "12.5%",
    "",
    "%",
    "1%0",
    "ten%",
    [1, "x"],
    [1, None],
    {"a": 1},
]
# Ansible reads these (true as 1, false as every host, 2.5 as 2); sysflow refuses them on purpose.
SYSFLOW_REFUSES: list[Any] = [True, False, 2.5, [1, True], ["10%", 0.5]]


@pytest.fixture(scope="module", autouse=True)
def _ansible_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep Ansible's home and temp files out of the user's home."""
    home = tmp_path_factory.mktemp("ansible")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ANSIBLE_HOME", str(home))
        mp.setenv("ANSIBLE_LOCAL_TEMP", str(home / "tmp"))
        yield


def hosts(n: int) -> list[str]:
    return [f"host{i:04d}" for i in range(n)]


def ansible_play(data: dict[str, Any]) -> Any:
    """A post-validated ansible-core Play (``serial`` as a playbook run sees it)."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.playbook.play import Play
    from ansible.template import Templar

    loader = DataLoader()
    play = Play.load({"hosts": "all", "gather_facts": False, "tasks": [], **data}, loader=loader)
    play.post_validate(Templar(loader=loader))
    return play


def ansible_batches(play: Any, names: list[str]) -> list[list[str]]:
    """``PlaybookExecutor._get_serialized_batches`` over ``names`` (a fresh list per call: it pops)."""
    from ansible.executor.playbook_executor import PlaybookExecutor

    inventory = SimpleNamespace(get_hosts=lambda pattern, order=None: list(names))
    executor = SimpleNamespace(_inventory=inventory)
    return [list(b) for b in PlaybookExecutor._get_serialized_batches(executor, play)]


def ansible_serial(spec: Any) -> Any:
    return ansible_play({"serial": spec})


def sysflow_batches(spec: Any, names: list[str]) -> list[list[str]]:
    serial = RolloutSpec.model_validate({"strategy": "rolling", "serial": spec}).serial
    return serial_batches(names, serial)


@pytest.mark.parametrize("spec", SPECS, ids=repr)
def test_same_batches_as_ansible(spec: Any) -> None:
    play = ansible_serial(spec)
    for n in HOST_COUNTS:
        names = hosts(n)
        expected = ansible_batches(play, names)
        got = sysflow_batches(spec, names)
        assert got == expected, (
            f"serial {spec!r} over {n} hosts: {list(map(len, got))} != {list(map(len, expected))}"
        )


def test_the_table_covers_ansible_quirks() -> None:
    """The table includes the cases where a naive rounding would differ from Ansible's."""
    sizes = [len(b) for b in ansible_batches(ansible_serial("29%"), hosts(100))]
    assert sizes == [28, 28, 28, 16]  # int((29 / 100.0) * 100) is 28, not 29
    assert [len(b) for b in ansible_batches(ansible_serial("0%"), hosts(3))] == [1, 1, 1]
    assert [len(b) for b in ansible_batches(ansible_serial([1, 0, 2]), hosts(5))] == [1, 4]
    assert {"29%", "0%", -1, 0, "150%", "1%", "33%"} <= {s for s in SPECS if not isinstance(s, list)}
    assert len(SPECS) * len(HOST_COUNTS) >= 3000


def test_no_serial_in_ansible_is_one_batch_and_an_empty_list_is_the_same() -> None:
    """An empty list means every host at once in both (sysflow's own default, 1, is not Ansible's)."""
    names = hosts(9)
    assert ansible_batches(ansible_play({}), names) == [names] == sysflow_batches([], names)
    assert RolloutSpec(strategy="rolling").serial == [1]


@pytest.mark.parametrize("spec", ANSIBLE_FAILS, ids=repr)
def test_what_ansible_fails_on_is_refused(spec: Any) -> None:
    with pytest.raises((ValueError, TypeError)):  # from pct_to_int's int() or len(play.serial)
        ansible_batches(ansible_serial(spec), hosts(10))
    with pytest.raises(WorkflowError, match=r"rollout\.serial(\[\d\])?: not a serial batch size"):
        MaintenanceWorkflow(name="w").set_progressive_execution({"strategy": "rolling", "serial": spec})


@pytest.mark.parametrize("spec", SYSFLOW_REFUSES, ids=repr)
def test_deliberate_refusals_are_values_ansible_reads(spec: Any) -> None:
    assert sum(map(len, ansible_batches(ansible_serial(spec), hosts(10)))) == 10
    with pytest.raises(WorkflowError, match=r"not a serial batch size: .*(booleans|fraction)"):
        MaintenanceWorkflow(name="w").set_progressive_execution({"strategy": "rolling", "serial": spec})


def test_python_api_errors_name_the_field_path() -> None:
    wf = MaintenanceWorkflow(name="w")
    with pytest.raises(WorkflowError) as info:
        wf.set_progressive_execution({"strategy": "rolling", "serial": [1, "10%", "ten%"]})
    assert [p.location for p in info.value.problems] == ["rollout.serial[2]"]
    with pytest.raises(WorkflowError) as info:
        wf.set_progressive_execution({"strategy": "rolling", "serial": "{{ batch }}"})
    assert [p.location for p in info.value.problems] == ["rollout.serial"]
    assert "'{{ batch }}'" in info.value.problems[0].message


WORKFLOW_YAML = "name: w\ntasks:\n  - id: t\n    run: 'true'\nrollout:\n  strategy: rolling\n  serial: {}\n"


@pytest.mark.parametrize(
    ("text", "where"),
    [("[1, 10%, ten%]", ":7:20"), ("yes", ":7:3"), ("2.5", ":7:3"), ('"{{ batch }}"', ":7:3")],
)
def test_yaml_errors_are_located(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(WORKFLOW_YAML.format(text))
    with pytest.raises(WorkflowError) as info:
        MaintenanceWorkflow.from_file(path)
    [problem] = info.value.problems
    assert problem.location == f"{path}{where}"
    assert "not a serial batch size" in problem.message


@pytest.mark.parametrize(
    "text", ["5", "10%", "'33%'", "[1, 10%, 50%]", "-1", "0", "[]", "[1, 0, 2]", "150%", "'0%'", "[2, '-1']"]
)
def test_yaml_files_cut_what_ansible_cuts_from_the_same_yaml(tmp_path: Path, text: str) -> None:
    """The same YAML text as a play (read by Ansible's loader) and as a workflow file, compiled."""
    from ansible.parsing.dataloader import DataLoader

    path = tmp_path / "wf.yaml"
    path.write_text(WORKFLOW_YAML.format(text))
    workflow = MaintenanceWorkflow.from_file(path)
    play = ansible_play(DataLoader().load(f"serial: {text}\n"))
    for n in (1, 2, 3, 7, 10, 23, 50, 100):
        names = hosts(n)
        inventory = Inventory()
        for name in names:
            inventory.add_host(name)
        waves = [list(w) for w in compile_workflow(workflow, inventory).waves]
        assert waves == ansible_batches(play, names), f"serial: {text} over {n} hosts"
