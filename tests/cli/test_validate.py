"""``sysflow validate`` and ``sysflow schema``: summaries, every problem one per line, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sysflow.cli import app
from tests.model.test_malformed import CASES

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "patching.yaml"
INI = ROOT / "examples" / "inventory.ini"
BAD = ROOT / "tests" / "model" / "data" / "bad"

runner = CliRunner()


def test_validate_example_prints_summary() -> None:
    result = runner.invoke(app, ["validate", str(EXAMPLE), "-i", str(INI)])
    assert result.exit_code == 0, result.output
    assert f"{EXAMPLE}: valid" in result.stdout
    assert "hosts       14 of 14 in the inventory" in result.stdout
    assert "groups      3: cache_servers, db_servers, web_servers" in result.stdout
    assert "operations  68" in result.stdout
    assert "waves       4 (hosts per wave: 1, 3, 7, 3); 3 gates" in result.stdout


def test_validate_with_yaml_inventory_and_ssh_config(tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text("Host web01.example.com\n  HostName 127.0.0.1\n  Port 2222\n")
    args = ["validate", str(EXAMPLE), "--inventory", str(ROOT / "examples" / "inventory.yaml")]
    result = runner.invoke(app, [*args, "--ssh-config", str(config)])
    assert result.exit_code == 0, result.output
    assert "operations  68" in result.stdout


def test_validate_run_once_hooks_are_counted(tmp_path: Path) -> None:
    wf = tmp_path / "hooks.yaml"
    wf.write_text(
        "name: h\ntasks:\n  - {id: a, run: 'true'}\n  - {id: b, run: 'true', run_once: true, local: true}\n"
    )
    result = runner.invoke(app, ["validate", str(wf), "-i", str(INI)])
    assert result.exit_code == 0, result.output
    assert "operations  15 (1 run-once)" in result.stdout


@pytest.mark.parametrize(
    "name", ["cycle.yaml", "several_problems.yaml", "json_syntax.json", "window_bad_day.yaml"]
)
def test_invalid_workflow_prints_every_problem_and_exits_1(name: str) -> None:
    result = runner.invoke(app, ["validate", str(BAD / name), "-i", str(INI)])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[-1].startswith(f"{BAD / name}: invalid, {len(lines) - 1} problem(s)")
    assert all(line.startswith(str(BAD / name) + ":") for line in lines[:-1])
    assert "Traceback" not in result.output


def test_several_problems_one_per_line() -> None:
    result = runner.invoke(app, ["validate", str(BAD / "several_problems.yaml"), "-i", str(INI)])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[:3] == [
        f"{BAD / 'several_problems.yaml'}:7:18: task 'upgrade' depends on unknown task 'updat'",
        f"{BAD / 'several_problems.yaml'}:8:5: task 'upgrade': target 'mail_servers' matches no host or group",
        f"{BAD / 'several_problems.yaml'}:10:3: max_failures 500 exceeds the 14 targeted hosts",
    ]


def test_workflow_and_inventory_problems_are_reported_together(tmp_path: Path) -> None:
    inventory = tmp_path / "broken.ini"
    inventory.write_text("[web\nweb01\n")
    result = runner.invoke(app, ["validate", str(BAD / "cycle.yaml"), "-i", str(inventory)])
    assert result.exit_code == 1
    assert "dependency cycle" in result.stderr
    assert str(inventory) in result.stderr


def test_missing_files_are_problems_not_tracebacks(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "none.yaml"), "-i", str(tmp_path / "none.ini")])
    assert result.exit_code == 1
    assert "cannot read workflow" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_usage_errors_exit_2() -> None:
    assert runner.invoke(app, ["validate", str(EXAMPLE)]).exit_code == 2
    assert runner.invoke(app, ["validate"]).exit_code == 2


def test_schema_prints_the_workflow_json_schema() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "MaintenanceWorkflow"
    assert "tasks" in schema["properties"]


def test_subprocess_invalid_input_has_no_traceback() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sysflow.cli",
            "validate",
            str(BAD / "overlapping_waves.yaml"),
            "-i",
            str(INI),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "wave 2: web01.example.com already in wave 1" in proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_malformed_workflow_fails_cleanly_in_the_cli(name: str) -> None:
    result = runner.invoke(app, ["validate", str(BAD / name), "-i", str(INI)])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    for line, text in CASES[name]:
        assert any(f"{BAD / name}:{line}:" in row and text in row for row in result.stderr.splitlines())
