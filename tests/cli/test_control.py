"""``sysflow status | approve | cancel | resume`` on a real run store, and live controls of a run."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sysflow.cli import app
from sysflow.cli.control import approve_run, cancel_run, pending_controls, run_views
from sysflow.cli.demo import DEMO_START, DEMO_WORKFLOW, demo_inventory
from sysflow.cli.run import poll_controls
from sysflow.engine.engine import Engine
from sysflow.engine.events import EventKind, RecordingObserver
from sysflow.engine.result import OpRecord
from sysflow.engine.states import OpState, RunStatus
from sysflow.engine.store import RunStore
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.sim import SimFleet, SimTransport, current_virtual_clock, run_virtual

runner = CliRunner()
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """A store with one completed simulated run (through `sysflow sim --state`)."""
    path = tmp_path / "state.db"
    argv = [
        "sim",
        str(DEMO_WORKFLOW),
        "--hosts",
        "6",
        "--state",
        str(path),
        "--start",
        DEMO_START.isoformat(),
    ]
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
    return path


def _pending_run(state: Path, run_id: str = "stuck-1", pid: int | None = None) -> str:
    with RunStore(state) as store:
        store.create_run(run_id, "wf", "{}", "{}", [OpRecord("o1", "h1", "t", 0, OpState.PENDING)], at=NOW)
        store.set_status(run_id, RunStatus.RUNNING, at=NOW)
    return run_id


def test_status_lists_runs_and_one_run(state: Path) -> None:
    result = runner.invoke(app, ["status", "--state", str(state)])
    assert result.exit_code == 0
    (line,) = result.output.splitlines()
    run_id = line.split()[0]
    assert "os_patching_demo  completed  wave " in line and " succeeded" in line and "failed" not in line
    one = runner.invoke(app, ["status", run_id, "--state", str(state)])
    assert one.exit_code == 0 and one.output.startswith(run_id)
    lines = one.output.splitlines()  # the run's line, then its hosts per wave
    assert lines[1].split() == ["HOST", "WAVE", "OUTCOME", "FAILED", "TASK", "REASON"]
    assert lines[2] == "wave 1: 1 host (1 succeeded)"
    assert lines[3].split() == ["web0001.ams.example.com", "1", "succeeded", "-", "-"]
    assert sum(line.startswith("  ") for line in lines[2:]) == 6 and "failed" not in one.output
    none_failed = runner.invoke(app, ["status", run_id, "--failed", "--state", str(state)])
    assert none_failed.output.splitlines()[1:] == ["no failed hosts (6 hosts)"]


def test_status_not_found(state: Path, tmp_path: Path) -> None:
    missing_run = runner.invoke(app, ["status", "nope", "--state", str(state)])
    assert missing_run.exit_code == 3 and "no run 'nope'" in missing_run.output
    for argv in (["status"], ["approve", "r", "--wave", "2"], ["cancel", "r"], ["resume", "r"]):
        missing_store = runner.invoke(app, [*argv, "--state", str(tmp_path / "none.db")])
        assert missing_store.exit_code == 3, argv
        assert missing_store.output.strip() == f"error: no run store at {tmp_path / 'none.db'}"
    assert not (tmp_path / "none.db").exists()


def test_empty_store(tmp_path: Path) -> None:
    RunStore(tmp_path / "s.db").close()
    result = runner.invoke(app, ["status", "--state", str(tmp_path / "s.db")])
    assert result.exit_code == 0 and result.output.strip() == "no runs"


def test_finished_run_cannot_be_approved_or_cancelled(state: Path) -> None:
    run_id = run_views(state)[0].id
    for argv in (["approve", run_id, "--wave", "2"], ["cancel", run_id]):
        result = runner.invoke(app, [*argv, "--state", str(state)])
        assert result.exit_code == 4
        assert result.output.strip() == f"error: run {run_id} already completed"


def test_unknown_run_controls_are_not_found(state: Path) -> None:
    for argv in (["approve", "nope", "--wave", "2"], ["cancel", "nope"], ["resume", "nope"]):
        result = runner.invoke(app, [*argv, "--state", str(state)])
        assert result.exit_code == 3, argv
        assert "no run 'nope'" in result.output and "Traceback" not in result.output


def test_approve_and_cancel_an_interrupted_run(state: Path) -> None:
    run_id = _pending_run(state)
    assert "(process gone: sysflow resume)" not in run_views(state, run_id)[0].line()  # this process
    approved = runner.invoke(app, ["approve", run_id, "--state", str(state)])
    assert approved.exit_code == 0 and approved.output.strip() == f"run {run_id}: wave 1 approved"
    bad = runner.invoke(app, ["approve", run_id, "--wave", "-1", "--state", str(state)])
    assert bad.exit_code == 1 and "--wave must be 1 or more" in bad.output
    cancelled = runner.invoke(app, ["cancel", run_id, "--state", str(state)])
    assert cancelled.exit_code == 0 and cancelled.output.strip() == f"run {run_id}: cancelled"
    assert run_views(state, run_id)[0].status == "cancelled"
    assert pending_controls(state, run_id, set()) == [(-1, "cancel"), (0, "approval")]
    assert pending_controls(state, run_id, {(0, "approval")}) == [(-1, "cancel")]
    assert pending_controls(state.parent / "absent.db", run_id, set()) == []


def test_dead_process_is_shown_and_cancel_is_recorded(state: Path) -> None:
    run_id = _pending_run(state, "dead-1")
    with RunStore(state) as store:
        store._write("UPDATE runs SET pid=? WHERE id=?", (2**22 + 12345, run_id))  # no such process
    assert "(process gone: sysflow resume)" in run_views(state, run_id)[0].line()
    assert cancel_run(state, run_id, "bob") == f"run {run_id}: cancelled"


def _with_approval(tmp_path: Path) -> MaintenanceWorkflow:
    text = DEMO_WORKFLOW.read_text().replace(
        "  auto_rollback: true", "  approval: [2]\n  auto_rollback: true"
    )
    path = tmp_path / "wf.yaml"
    path.write_text(text)
    return MaintenanceWorkflow.from_file(path)


async def _live(tmp_path: Path, control: str) -> tuple[RecordingObserver, RunStatus]:
    """A simulated run with a store, steered from 'another process' through the store only."""
    clock = current_virtual_clock()
    inv = demo_inventory(6)
    state = tmp_path / "live.db"
    events = RecordingObserver()
    fleet = SimFleet(inv, None, seed=1, start=clock.start)
    engine = Engine(inv, transport=SimTransport(fleet, clock), clock=clock, observers=[events], store=state)
    run = engine.prepare(_with_approval(tmp_path))
    poller = asyncio.create_task(poll_controls(run, state, interval=30.0))
    task = asyncio.create_task(engine.drive(run))
    for _ in range(10_000):  # bounded: the approval gate comes within a day of virtual time
        if events.of(EventKind.APPROVAL_REQUESTED):
            break
        await asyncio.sleep(10)
    if control == "approve":
        approve_run(state, run.id, 2, "bob")
    else:
        cancel_run(state, run.id, "bob")
    result = await task
    poller.cancel()
    engine.store.close()  # type: ignore[union-attr]
    return events, result.status


def test_live_run_is_approved_through_the_store(tmp_path: Path) -> None:
    events, status = run_virtual(_live(tmp_path, "approve"), start=DEMO_START)
    assert status is RunStatus.COMPLETED
    assert [e.wave for e in events.of(EventKind.APPROVAL_GIVEN)] == [1]


def test_live_run_is_cancelled_through_the_store(tmp_path: Path) -> None:
    events, status = run_virtual(_live(tmp_path, "cancel"), start=DEMO_START)
    assert status is RunStatus.CANCELLED
    assert not events.of(EventKind.APPROVAL_GIVEN)


def test_poll_without_store_returns() -> None:
    async def main() -> None:
        await poll_controls(None, None)  # type: ignore[arg-type]

    run_virtual(main())
