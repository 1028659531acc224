"""At least 20 distinct malformed workflows, each a file under data/bad/: message AND file:line.

Each case loads the file and compiles it against the example fleet; every expected problem must be
reported at its line, and nothing may be raised but ``WorkflowError``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sysflow.errors import Problem, WorkflowError
from sysflow.model.inventory import Inventory
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.planner.compile import compile_workflow

BAD = Path(__file__).parent / "data" / "bad"

# file -> [(line, text the message contains), ...]
CASES: dict[str, list[tuple[int, str]]] = {
    "yaml_syntax.yaml": [(6, "invalid YAML")],
    "unknown_top_key.yaml": [(5, "unknown key 'paralelism'")],
    "unknown_task_key.yaml": [(6, "unknown key 'command'")],  # run: is checked once keys are known
    "bad_duration.yaml": [(5, "not a duration: '5 minutes'")],
    "negative_retries.yaml": [(5, "greater than or equal to 0")],
    "cycle.yaml": [(5, "dependency cycle: upgrade -> restart -> upgrade")],
    "unknown_dependency.yaml": [(9, "depends on unknown task 'upgrade'")],
    "duplicate_task_id.yaml": [(5, "duplicate task id 'update'")],
    "unknown_target.yaml": [(7, "target 'webservers' matches no host or group")],
    "window_bad_day.yaml": [(7, "unknown day 'Sundy'")],
    "window_bad_time.yaml": [(10, "invalid time '25:00'")],
    "window_unknown_group.yaml": [(8, "window for unknown group 'mail_servers'")],
    "overlapping_waves.yaml": [(8, "wave 2: web01.example.com already in wave 1")],
    "wave_matches_nothing.yaml": [(8, "wave 2: 'mail*' matches no host or group")],
    "canary_zero.yaml": [(7, "canary_size must be at least 1")],
    "max_failures_too_big.yaml": [(8, "max_failures 50 exceeds the 14 targeted hosts")],
    "unknown_pool.yaml": [(6, "demands unknown pool 'bandwidth'")],
    "demand_over_capacity.yaml": [(6, "demands 250 of pool 'uplink', above its capacity 100")],
    "pool_unknown_group.yaml": [(11, "pool 'db_slots' names unknown group 'dbs'")],
    "bad_strategy.yaml": [(6, "Input should be 'waves', 'canary', 'rolling' or 'blue_green'")],
    "bad_percentage.yaml": [(7, "a percentage must be within 0-100%: '150%'")],
    "unknown_verification_task.yaml": [(6, "unknown verification task 'verify_web'")],
    "verification_unknown_task.yaml": [(7, "verification 'versions' names unknown task 'bakup'")],
    "duplicate_key.yaml": [(6, "duplicate key 'on_window_expiry'")],
    "not_a_mapping.yaml": [(1, "a workflow must be a mapping")],
    "bad_expiry_policy.yaml": [(5, "Input should be 'finish', 'abort' or 'rollback'")],
    "approval_out_of_range.yaml": [(7, "approval for wave 9, but there are 2 waves")],
    "bad_timezone.yaml": [(6, "unknown time zone 'Europe/Amsterdm'")],
    "blue_green_without_green.yaml": [(9, "blue_green rollout needs a 'green' set")],
    "several_problems.yaml": [
        (7, "depends on unknown task 'updat'"),
        (8, "target 'mail_servers' matches no host or group"),
        (10, "max_failures 500 exceeds"),
    ],
    "json_syntax.json": [(4, "invalid JSON")],
    "json_unknown_key.json": [(6, "unknown key 'retry'")],
    "alias_bomb.yaml": [(7, "aliases expand this document by more than 1,000,000 nodes")],
    "template_quoting.yaml": [
        (4, "is inside $( ) that is inside double quotes"),
        (6, "is inside code that sh -c runs"),
    ],
}


def example_fleet() -> Inventory:
    """The fleet of examples/inventory.ini, built in Python: 8 web, 4 db, 2 cache hosts."""
    inventory = Inventory()
    for group, prefix, count in (
        ("web_servers", "web", 8),
        ("db_servers", "db", 4),
        ("cache_servers", "cache", 2),
    ):
        for i in range(1, count + 1):
            dc = "ams" if i <= count // 2 else "fra"
            inventory.add_host(f"{prefix}{i:02d}.example.com", groups=[group], datacenter=dc)
    return inventory


def problems_of(path: Path) -> list[Problem]:
    with pytest.raises(WorkflowError) as info:
        compile_workflow(MaintenanceWorkflow.from_file(path), example_fleet())
    return list(info.value.problems)


def line_of(problem: Problem) -> int:
    file, line, _col = problem.location.rsplit(":", 2)
    assert file.endswith((".yaml", ".json"))
    return int(line)


def test_there_are_at_least_twenty_cases() -> None:
    assert len(CASES) >= 20
    assert sorted(p.name for p in BAD.iterdir()) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_workflow_names_message_and_line(name: str) -> None:
    problems = problems_of(BAD / name)
    for line, text in CASES[name]:
        hits = [p for p in problems if text in p.message and line_of(p) == line]
        assert hits, f"expected {text!r} at line {line}, got {[str(p) for p in problems]}"
        assert hits[0].location.startswith(str(BAD / name))


def test_every_problem_is_reported_at_once() -> None:
    assert len(problems_of(BAD / "several_problems.yaml")) == 3


def test_error_message_lists_every_problem() -> None:
    with pytest.raises(WorkflowError) as info:
        compile_workflow(MaintenanceWorkflow.from_file(BAD / "several_problems.yaml"), example_fleet())
    text = str(info.value)
    assert text.startswith("3 problems:")
    assert "several_problems.yaml:7:18: task 'upgrade' depends on unknown task 'updat'" in text
