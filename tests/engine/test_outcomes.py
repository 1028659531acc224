"""Honest outcomes: a run with failed hosts is not "completed", and every summary line agrees.

The real engine runs on the simulator (virtual time), through the Python API and through
``sysflow sim``: hosts that fail within the failure threshold end the run
``completed_with_failures`` (finished, not a success, exit 1); the ``wave_finished`` event and the
progress lines count the hosts that failed; the closing lines are ``result.failed_servers``; the run
store and ``sysflow status`` show the state. ``on_window_expiry: rollback`` without anything to roll
back with is refused at validation, with the place in the file.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sysflow.cli import app
from sysflow.cli.control import run_views
from sysflow.cli.run import EXIT_FAILED, exit_code, result_lines
from sysflow.engine.events import Event, EventKind
from sysflow.engine.notify import is_failure
from sysflow.engine.states import RunStatus
from sysflow.errors import RunFailed, WorkflowError
from sysflow.model.inventory import Inventory
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.sim.profile import HostFault, SimProfile
from tests.engine.conftest import simulate

runner = CliRunner()
HOSTS = [f"app{i:02d}" for i in range(1, 5)]
WORKFLOW = """\
name: outcomes
tasks:
  - id: upgrade
    run: apt-get -y upgrade
    expected_duration: 60s
  - id: health
    run: curl -s http://localhost/health
    depends_on: [upgrade]
rollout:
  max_failures: 1
"""
INVENTORY = "all:\n  children:\n    app:\n      hosts:\n" + "".join(f"        {h}: {{}}\n" for h in HOSTS)
HANG_APP02 = "hosts:\n  - hosts: app02\n    hang: apt-get -y upgrade\n"


def _inventory() -> Inventory:
    inv = Inventory()
    inv.add_group("app", HOSTS)
    return inv


async def test_a_host_failed_within_the_threshold_completes_with_failures() -> None:
    wf = MaintenanceWorkflow.from_yaml(WORKFLOW)
    sim = await simulate(
        wf, _inventory(), SimProfile(hosts=[HostFault(hosts="app02", hang="apt-get -y upgrade")])
    )
    result = sim.result
    assert result.status is RunStatus.COMPLETED_WITH_FAILURES
    assert result.status.finished and not result.ok
    assert result.failed_servers == ["app02"] and len(result.successful_servers) == 3
    with pytest.raises(RunFailed, match="completed_with_failures: 1 host"):
        result.raise_on_error()
    (wave,) = sim.events.of(EventKind.WAVE_FINISHED)
    assert wave.data["failed"] == 1 and wave.data["failed_hosts"] == ["app02"]
    assert wave.message == "1 of 4 host(s) failed"
    (finished,) = sim.events.of(EventKind.RUN_FINISHED)
    assert finished.data["status"] == "completed_with_failures"
    assert finished.data["failed_hosts"] == ["app02"]
    assert is_failure(finished)  # notifications treat it as a failure, not a success
    assert exit_code(result) == EXIT_FAILED
    lines = result_lines(result)
    assert lines[0].endswith(": completed_with_failures (1 failed, 3 succeeded)")
    assert "  1 failed host:" in lines
    assert any(line.startswith("    app02 (wave 1") for line in lines)  # the host, then why


async def test_completed_only_when_no_host_failed() -> None:
    sim = await simulate(MaintenanceWorkflow.from_yaml(WORKFLOW), _inventory())
    assert sim.result.status is RunStatus.COMPLETED and sim.result.ok
    (wave,) = sim.events.of(EventKind.WAVE_FINISHED)
    assert wave.data["failed"] == 0 and wave.message == "0 of 4 host(s) failed"
    assert not is_failure(sim.events.of(EventKind.RUN_FINISHED)[0])


async def test_a_host_stopped_at_the_window_end_is_counted_everywhere() -> None:
    """The op stopped by ``abort`` fails its host without a command failure: it is still announced
    (op_finished, state unknown), counted by wave_finished, and the status says so."""
    wf = MaintenanceWorkflow.from_yaml(WORKFLOW.replace("max_failures: 1", "max_failures: 4"))
    wf.set_maintenance_window({"groups": {"app": "Sunday 01:00-02:00"}, "allow_split_chains": True})
    wf.on_window_expiry = "abort"  # type: ignore[assignment]
    sim = await simulate(wf, _inventory(), SimProfile(durations={"upgrade_packages": "90m"}))
    assert sim.result.status is RunStatus.COMPLETED_WITH_FAILURES
    assert sorted(sim.result.failed_servers) == HOSTS  # all four stopped at 02:00, within max_failures 4
    stopped = [e for e in sim.events.of(EventKind.OP_FINISHED) if e.data.get("state") == "unknown"]
    assert sorted(e.host or "" for e in stopped) == sorted(sim.result.failed_servers)
    (wave,) = sim.events.of(EventKind.WAVE_FINISHED)
    assert wave.data["failed_hosts"] == sorted(sim.result.failed_servers)


def _files(tmp_path: Path, workflow: str = WORKFLOW) -> list[str]:
    (tmp_path / "wf.yaml").write_text(workflow)
    (tmp_path / "inv.yaml").write_text(INVENTORY)
    (tmp_path / "faults.yaml").write_text(HANG_APP02)
    return [
        str(tmp_path / "wf.yaml"),
        "-i",
        str(tmp_path / "inv.yaml"),
        "--profile",
        str(tmp_path / "faults.yaml"),
    ]


def test_sysflow_sim_exits_1_and_every_summary_line_agrees(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    argv = ["sim", *_files(tmp_path), "--start", "2026-12-01T00:00:00", "--state", str(state)]
    out = runner.invoke(app, argv)
    assert out.exit_code == 1, out.output
    lines = out.output.splitlines()
    wave = next(line for line in lines if "wave_finished" in line)
    assert "1 host failed" in wave and wave.endswith(": 1 of 4 hosts failed")
    finished = next(line for line in lines if "run_finished" in line)
    assert "1 host failed" in finished
    assert not any(re.search(r"\b0 hosts? failed", line) for line in lines)
    assert re.search(r"run \S+: completed_with_failures \(1 failed, 3 succeeded\)", out.output)
    assert "  1 failed host:" in lines
    (view,) = run_views(state)  # stored, and shown by `sysflow status` as such
    assert view.status == "completed_with_failures" and view.finished
    status = runner.invoke(app, ["status", "--state", str(state)])
    assert status.exit_code == 0 and "completed_with_failures" in status.output


def test_rollback_on_expiry_needs_auto_rollback_and_rollback_commands(tmp_path: Path) -> None:
    wf = MaintenanceWorkflow.from_yaml(WORKFLOW + "on_window_expiry: rollback\n")
    (problem,) = wf.problems()
    assert problem.location == "<string>:11:1"  # the line of on_window_expiry
    built = MaintenanceWorkflow("api")
    built.add_task("upgrade", "apt-get -y upgrade")
    built.on_window_expiry = "rollback"  # type: ignore[assignment]
    assert [p.location for p in built.problems()] == ["on_window_expiry"]  # the field path
    assert "rollout.auto_rollback is not true and no task has a rollback command" in problem.message
    with pytest.raises(WorkflowError, match="on_window_expiry: rollback needs"):
        wf.check()
    text = WORKFLOW.replace("max_failures: 1", "max_failures: 1\n  auto_rollback: true")
    (tmp_path / "auto.yaml").write_text(text + "on_window_expiry: rollback\n")
    (tmp_path / "inv.yaml").write_text(INVENTORY)
    located = runner.invoke(app, ["validate", str(tmp_path / "auto.yaml"), "-i", str(tmp_path / "inv.yaml")])
    assert located.exit_code == 1
    line = text.count("\n") + 1  # on_window_expiry is the line after the text
    assert f"{tmp_path / 'auto.yaml'}:{line}:1: on_window_expiry: rollback needs" in located.output
    assert "but no task has a rollback command" in located.output
    fixed = text.replace("run: apt-get -y upgrade", "run: apt-get -y upgrade\n    rollback: restore")
    assert MaintenanceWorkflow.from_yaml(fixed + "on_window_expiry: rollback\n").problems() == []
    assert MaintenanceWorkflow.from_yaml(WORKFLOW + "on_window_expiry: abort\n").problems() == []


def test_the_engine_refuses_such_a_workflow_before_running() -> None:
    from sysflow.engine.engine import Engine
    from sysflow.sim.fleet import SimFleet
    from sysflow.sim.transport import SimTransport
    from sysflow.testing import ManualClock

    wf = MaintenanceWorkflow.from_yaml(WORKFLOW + "on_window_expiry: rollback\n")
    clock = ManualClock(datetime(2026, 12, 1, tzinfo=UTC))
    engine = Engine(_inventory(), transport=SimTransport(SimFleet(_inventory()), clock), clock=clock)
    with pytest.raises(WorkflowError, match="on_window_expiry"):
        engine.prepare(wf)


def test_progress_failed_hosts_follow_the_run_account() -> None:
    """Hosts that failed without a failed-operation event still reach the summary line."""
    from sysflow.cli.progress import ProgressState

    state = ProgressState()
    at = datetime(2026, 12, 1, tzinfo=UTC)
    state.apply(Event(EventKind.WAVE_FINISHED, "r", at, wave=0, data={"failed_hosts": ["b"], "failed": 1}))
    assert state.summary().endswith("1 host failed")
    state.apply(Event(EventKind.OP_FINISHED, "r", at, host="@wave1", data={"state": "failed"}))
    done = {"status": "completed_with_failures", "failed_hosts": ["b"], "hosts": {"failed": 1}}
    state.apply(Event(EventKind.RUN_FINISHED, "r", at, data=done))
    assert state.failed_hosts == {"b"} and state.status == "completed_with_failures"


async def test_a_window_on_the_group_all_applies_to_every_host() -> None:
    """``windows: {groups: {all: ...}}`` validates, and the run honours it (it refused to start)."""
    wf = MaintenanceWorkflow.from_yaml(WORKFLOW)
    wf.set_maintenance_window({"groups": {"all": "Sunday 01:00-02:00"}})
    sim = await simulate(wf, _inventory())
    assert sim.result.status is RunStatus.COMPLETED
    for record in sim.result.ops.values():
        assert record.start is not None and record.start.weekday() == 6 and record.start.hour == 1
