"""``sysflow sim`` and ``sysflow run``: exit codes, progress output, audit, errors as one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from sysflow.audit.log import AuditLog
from sysflow.cli import app
from sysflow.cli.commands import guard
from sysflow.cli.control import ControlError
from sysflow.cli.demo import DEMO_START, DEMO_WORKFLOW
from sysflow.cli.jobs import RayJobError
from sysflow.errors import LeaseConflict

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
runner = CliRunner()
START = ["--start", DEMO_START.isoformat()]


def test_sim_generated_fleet_succeeds_with_audit(tmp_path: Path) -> None:
    audit = tmp_path / "audit.db"
    result = runner.invoke(app, ["sim", str(DEMO_WORKFLOW), "--hosts", "9", "--audit", str(audit), *START])
    assert result.exit_code == 0, result.output
    assert "run_started" in result.output  # plain progress: not a terminal
    assert "completed (9 succeeded)" in result.output
    assert "verification: pass; hosts passed 9" in result.output
    with AuditLog(audit) as log:
        assert log.verify() is None and {r.host for r in log.records() if r.host} >= {
            "web0001.ams.example.com"
        }


def test_sim_example_inventory_json_lines(tmp_path: Path) -> None:
    argv = ["sim", str(EXAMPLES / "patching.yaml"), "-i", str(EXAMPLES / "inventory.ini"), "--json", *START]
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert rows[0]["kind"] == "run_started" and rows[-1]["kind"] == "run_finished"
    assert any(r["kind"] == "approval_requested" for r in rows)  # the example asks before wave 2
    assert any(r["kind"] == "approval_given" for r in rows)  # sim approves by default


def test_sim_failures_exit_1(tmp_path: Path) -> None:
    profile = tmp_path / "faults.yaml"
    profile.write_text("failure_probability:\n  upgrade_packages: 1.0\n")
    argv = ["sim", str(DEMO_WORKFLOW), "--hosts", "9", "--profile", str(profile), *START]
    result = runner.invoke(app, argv)
    assert result.exit_code == 1
    assert "FAILED web0001.ams.example.com upgrade_packages" in result.output
    head = "  1 failed host:\n    web0001.ams.example.com (wave 1, rolled back): upgrade_packages: exit status 100\n"
    assert head in result.output
    assert "      stderr | E: Sub-process /usr/bin/dpkg returned an error code (1)\n" in result.output
    assert "    1 host: exit status 100 in upgrade_packages \u2014 web0001.ams.example.com\n" in result.output
    assert "1 hosts" not in result.output and "host(s)" not in result.output


def test_sim_invalid_inputs_are_one_line(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["sim", str(tmp_path / "nope.yaml"), *START])
    assert missing.exit_code == 1 and "Traceback" not in missing.output
    bad_start = runner.invoke(app, ["sim", str(DEMO_WORKFLOW), "--start", "soon"])
    assert bad_start.exit_code == 1
    assert bad_start.output.strip() == "error: --start: not an ISO 8601 time: 'soon'"
    bad_profile = tmp_path / "p.yaml"
    bad_profile.write_text("failure_probability:\n  x: 3\n")
    result = runner.invoke(app, ["sim", str(DEMO_WORKFLOW), "--hosts", "3", "--profile", str(bad_profile)])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) <= 4
    assert "Traceback" not in result.output


def test_run_dry_run_validates_only() -> None:
    argv = ["run", str(EXAMPLES / "patching.yaml"), "-i", str(EXAMPLES / "inventory.ini"), "--dry-run"]
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert "valid" in result.output and result.output.strip().endswith("dry run: nothing was run")


def test_run_invalid_workflow_lists_problems(tmp_path: Path) -> None:
    wf = tmp_path / "wf.yaml"
    wf.write_text("name: x\ntasks:\n  - id: a\n    run: 'true'\n    depends_on: [zz]\n")
    result = runner.invoke(app, ["run", str(wf), "-i", str(EXAMPLES / "inventory.ini")])
    assert result.exit_code == 1
    assert "zz" in result.output and "Traceback" not in result.output


def test_run_unreachable_hosts_fail_the_run(tmp_path: Path) -> None:
    """A real SSH run to a loopback port nothing listens on: every host fails, exit 1, no traceback."""
    inv = tmp_path / "hosts.ini"
    inv.write_text("[web_servers]\nweb1 ansible_host=127.0.0.1 ansible_port=9\n")
    wf = tmp_path / "wf.yaml"
    wf.write_text("name: probe\ntasks:\n  - id: t\n    run: 'true'\n    timeout: 5s\n")
    key = tmp_path / "id"
    key.write_text("not a key")
    state = tmp_path / "state.db"
    argv = ["run", str(wf), "-i", str(inv), "--state", str(state), "--key", str(key)]
    argv += ["--known-hosts", str(tmp_path / "kh")]
    refused = runner.invoke(app, argv)  # pre-flight finds the host not ready: no run is started
    assert refused.exit_code == 1 and "the run was not started" in refused.output, refused.output
    assert "  web1  auth " in refused.output and "run probe-" not in refused.output
    assert not state.exists()  # not even a run store row
    result = runner.invoke(app, [*argv, "--no-preflight"])
    assert result.exit_code == 1, result.output
    assert (
        "run probe-" in result.output and "  1 failed host:\n    web1 (wave 1, failed): t: " in result.output
    )
    assert "Traceback" not in result.output
    status = runner.invoke(app, ["status", "--state", str(state)])
    assert status.exit_code == 0 and " failed " in status.output


def test_help_of_every_command_has_examples_and_exit_codes() -> None:
    for command in ("run", "sim", "demo", "resume", "status", "logs", "approve", "cancel", "submit"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0, command
        assert "Examples" in result.output and "Exit codes" in result.output, command
    assert runner.invoke(app, ["run"]).exit_code == 2
    assert runner.invoke(app, ["nope"]).exit_code == 2


def _unreachable(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    inv = tmp_path / "hosts.ini"
    inv.write_text("[web_servers]\nweb1 ansible_host=127.0.0.1 ansible_port=9\n")
    wf = tmp_path / "wf.yaml"
    wf.write_text("name: probe\ntasks:\n  - id: t\n    run: 'true'\n    timeout: 5s\n")
    key = tmp_path / "id"
    key.write_text("not a key")
    return wf, inv, ["--key", str(key), "--known-hosts", str(tmp_path / "kh")]


def test_resume_an_interrupted_run_over_ssh(tmp_path: Path) -> None:
    """A run recorded but never finished (its process died) is resumed over SSH from the store."""
    from sysflow.engine.engine import Engine
    from sysflow.model.inventory import Inventory
    from sysflow.model.workflow import MaintenanceWorkflow

    wf, inv, ssh = _unreachable(tmp_path)
    state = tmp_path / "state.db"
    engine = Engine(Inventory.load(inv), store=state)
    run = engine.prepare(MaintenanceWorkflow.from_file(wf), run_id="probe-1")
    engine.store.close()  # type: ignore[union-attr]
    assert run.id == "probe-1"
    result = runner.invoke(app, ["resume", "probe-1", "--state", str(state), *ssh])
    assert result.exit_code == 1, result.output
    assert (
        "run probe-1: failed" in result.output
        and "  1 failed host:\n    web1 (wave 1, failed): t: " in result.output
    )
    again = runner.invoke(app, ["resume", "probe-1", "--state", str(state), *ssh])
    assert again.exit_code == 4 and again.output.strip() == "error: run probe-1 already failed"


def test_several_problems_are_listed_then_summarised(tmp_path: Path) -> None:
    wf = tmp_path / "wf.yaml"
    wf.write_text("name: x\ntasks:\n  - id: a\n    run: 1\n  - id: b\n    run: 2\n")
    result = runner.invoke(app, ["sim", str(wf), "--hosts", "3"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 3 and lines[-1] == f"{wf}: failed"


@pytest.mark.parametrize(
    ("exc", "code", "line"),
    [
        (KeyboardInterrupt(), 130, "x: interrupted"),
        (FileNotFoundError(2, "No such file or directory", "f.yaml"), 3, "error: no such file: f.yaml"),
        (
            LeaseConflict("web1 is leased by run r0", hosts=["web1"], holder="r0"),
            4,
            "error: web1 is leased by run r0",
        ),
        (RayJobError("no job 'j'", missing=True), 3, "error: no job 'j'"),
        (RayJobError("bad token"), 1, "error: bad token"),
        (ControlError("run r already completed"), 4, "error: run r already completed"),
        (ValueError("bad value"), 1, "error: bad value"),
    ],
)
def test_guard_maps_errors_to_exit_codes(
    exc: BaseException, code: int, line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(typer.Exit) as info, guard("x"):
        raise exc
    assert info.value.exit_code == code
    assert capsys.readouterr().err.strip() == line


def test_guard_lets_exits_through() -> None:
    with pytest.raises(typer.Exit) as info, guard("x"):
        raise typer.Exit(0)
    assert info.value.exit_code == 0
