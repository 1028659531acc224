"""Progress views from the event stream: counts, ETA, window time, live/plain/JSON output."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from sysflow.cli.demo import DEMO_START, demo_inventory
from sysflow.cli.progress import (
    JsonLinesProgress,
    LiveProgress,
    PlainProgress,
    ProgressContext,
    ProgressMode,
    ProgressState,
    QuietProgress,
    choose_mode,
    plain_line,
    planned_ends,
    progress_for,
    render,
    window_end_finder,
)
from sysflow.cli.run import RunSetup, SimOptions, forecast_plan, progress_context, simulate
from sysflow.engine.events import Event, EventKind
from sysflow.model.workflow import MaintenanceWorkflow

T0 = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)
DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo" / "patching.yaml"


def ev(kind: EventKind, at: float = 0.0, **kw: object) -> Event:
    data = kw.pop("data", {})
    return Event(kind, "r1", T0 + timedelta(seconds=at), data=data, **kw)  # type: ignore[arg-type]


def events() -> list[Event]:
    return [
        ev(EventKind.RUN_STARTED, data={"status": "running"}),
        ev(EventKind.WAVE_STARTED, wave=0, message="wave 1: 2 hosts", data={"hosts": 2}),
        ev(EventKind.OP_STARTED, 1, host="a", task="t", wave=0),
        ev(EventKind.OP_STARTED, 1, host="b", task="t", wave=0),
        ev(
            EventKind.OP_FINISHED,
            5,
            host="a",
            task="t",
            wave=0,
            data={"state": "succeeded", "exit_status": 0},
        ),
        ev(EventKind.OP_FINISHED, 6, host="b", task="t", wave=0, data={"state": "failed", "exit_status": 2}),
        ev(EventKind.OP_SKIPPED, 6, host="b", task="u", wave=0, message="t failed"),
        ev(EventKind.VERIFICATION, 7, host="a", message="openssl unchanged", data={"passed": False}),
        ev(EventKind.WAVE_FINISHED, 7, wave=0, data={"failed": 2}),
        ev(EventKind.GATE_EVALUATED, 7, wave=0, message="1 failed", data={"passed": False}),
        ev(EventKind.THRESHOLD_EXCEEDED, 7, wave=0, message="too many failures"),
        ev(EventKind.RUN_FINISHED, 8, message="stopped", data={"status": "failed"}),
    ]


CONTEXT = ProgressContext(
    total_ops=4,
    total_hosts=2,
    datacenter_of={"a": "ams", "b": "fra"},
    planned_ends=[T0 + timedelta(seconds=s) for s in (4, 5, 6, 10)],
    window_end=lambda at: T0 + timedelta(hours=2) if at >= T0 else None,
)


def test_state_counts_overall_per_wave_and_datacenter() -> None:
    state = ProgressState(CONTEXT)
    for e in events():
        state.apply(e)
    assert (state.ops_done, state.ops_failed, state.ops_running) == (3, 1, 0)
    assert state.status == "failed"
    assert state.waves[0].total == 2 and state.waves[0].done == 2 and state.waves[0].failed == 1
    assert state.datacenters["ams"].done == 1 and state.datacenters["fra"].failed == 1
    assert state.failed_hosts == {"a", "b"}
    assert state.failures == ["b t: exit 2", "a: verification: openssl unchanged"]
    assert state.summary() == "3/4 operations done, 0 running, 1 failed, 2 hosts failed"
    assert state.notes[-1] == "run_finished: stopped"


def test_eta_follows_the_plan_shifted_by_lateness() -> None:
    state = ProgressState(CONTEXT)
    assert state.eta() is None  # no event yet
    state.apply(ev(EventKind.RUN_STARTED))
    assert state.eta() == T0 + timedelta(seconds=10)  # nothing done: the planned finish
    state.apply(ev(EventKind.OP_FINISHED, 9, host="a", data={"state": "succeeded"}))
    # one op done at +9 s, planned at +4 s: five seconds late
    assert state.eta() == T0 + timedelta(seconds=15)
    assert state.window_left() == timedelta(hours=2) - timedelta(seconds=9)
    assert ProgressState().window_left() is None and ProgressState().eta() is None


def test_hooks_and_unknown_hosts() -> None:
    state = ProgressState(ProgressContext())
    state.apply(ev(EventKind.OP_STARTED, host="@hook", wave=0))
    state.apply(ev(EventKind.OP_STARTED, host="x", wave=None))
    assert state.datacenters == {"-": state.datacenters["-"]} and state.datacenters["-"].running == 1
    assert state.summary().startswith("0/0 operations")


def test_plain_lines_only_for_run_wave_gate_and_failures() -> None:
    out = io.StringIO()
    with PlainProgress(out, CONTEXT) as progress:
        for e in events():
            progress.on_event(e)
    lines = out.getvalue().splitlines()
    assert lines[0] == "2026-11-29 01:00:00 run_started"
    assert lines[1] == "2026-11-29 01:00:00 wave_started: wave 1: 2 hosts"
    assert "FAILED b t: exit 2" in lines[2]
    assert "FAILED a: verification: openssl unchanged" in lines[3]
    assert "wave_finished wave 1 (3/4 operations done" in lines[4]
    assert lines[5].endswith("gate_evaluated wave 1 passed=False: 1 failed")
    assert lines[-1].startswith("2026-11-29 01:00:08 run_finished (")
    assert len(lines) == 8  # op started/succeeded/skipped print nothing
    assert plain_line(ev(EventKind.OP_PROGRESS), ProgressState()) is None


def test_json_lines_stream_every_event() -> None:
    out = io.StringIO()
    with JsonLinesProgress(out) as progress:
        for e in events():
            progress.on_event(e)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["kind"] for r in rows] == [e.kind.value for e in events()]
    assert rows[4]["host"] == "a" and rows[4]["data"]["exit_status"] == 0
    assert rows[0]["at"] == T0.isoformat()


def test_live_view_renders_waves_datacenters_failures_eta_window() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=140, color_system=None)
    with LiveProgress(console, CONTEXT, refresh_interval=0.0) as progress:
        for e in events():
            progress.on_event(e)
    text = buffer.getvalue()
    for needle in ("run r1", "wave 1", "dc ams", "dc fra", "failures:", "b t: exit 2", "ETA (forecast)"):
        assert needle in text
    assert "window left 1h59m52s" in text
    progress.on_event(events()[0])  # after the end: counted, not drawn


def test_render_without_context() -> None:
    console = Console(file=io.StringIO(), width=100, color_system=None)
    console.print(render(ProgressState()))
    assert "run - pending" in console.file.getvalue()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("json_lines", "terminal", "quiet", "mode"),
    [
        (True, True, True, ProgressMode.JSON),
        (False, True, True, ProgressMode.QUIET),
        (False, True, False, ProgressMode.LIVE),
        (False, False, False, ProgressMode.PLAIN),
    ],
)
def test_choose_mode(json_lines: bool, terminal: bool, quiet: bool, mode: ProgressMode) -> None:
    assert choose_mode(json_lines=json_lines, is_terminal=terminal, quiet=quiet) is mode


def test_progress_for_each_mode() -> None:
    out = io.StringIO()
    assert isinstance(progress_for(ProgressMode.JSON, out=out), JsonLinesProgress)
    assert isinstance(progress_for(ProgressMode.PLAIN, out=out), PlainProgress)
    quiet = progress_for(ProgressMode.QUIET, out=out)
    assert isinstance(quiet, QuietProgress)
    with quiet:
        quiet.on_event(events()[0])
    assert quiet.state.status == "running" and out.getvalue() == ""
    assert isinstance(progress_for(ProgressMode.LIVE, out=out), LiveProgress)


def test_plan_gives_eta_and_window_end() -> None:
    wf = MaintenanceWorkflow.from_file(DEMO)
    inv = demo_inventory(30)
    plan = forecast_plan(wf, inv, DEMO_START)
    ends = planned_ends(plan)
    assert ends == sorted(ends) and len(ends) == sum(1 for _ in plan.ops())
    window_end = window_end_finder(plan)
    sunday_1am = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)
    assert window_end(sunday_1am + timedelta(minutes=5)) == sunday_1am + timedelta(hours=4)
    assert window_end(DEMO_START) is None
    ctx = progress_context(inv, plan, total_ops=len(ends))
    assert ctx.total_hosts == 30 and set(ctx.datacenter_of.values()) == {"ams", "fra", "lon"}


def test_progress_of_a_real_simulated_run(tmp_path: Path) -> None:
    """The real engine on the simulator, its events through the plain view and the JSON stream."""
    wf = MaintenanceWorkflow.from_file(DEMO)
    inv = demo_inventory(12)
    plain = io.StringIO()
    result = simulate(wf, inv, SimOptions(start=DEMO_START), RunSetup(ProgressMode.PLAIN, out=plain))
    assert result.ok
    text = plain.getvalue()
    assert "run_started" in text and "run_finished" in text and "FAILED" not in text
    profile = tmp_path / "profile.yaml"
    profile.write_text("failure_probability:\n  upgrade_packages: 1.0\n")
    jsonl = io.StringIO()
    failed = simulate(
        wf, inv, SimOptions(start=DEMO_START, profile=profile), RunSetup(ProgressMode.JSON, out=jsonl)
    )
    assert not failed.ok
    rows = [json.loads(line) for line in jsonl.getvalue().splitlines()]
    assert any(r["kind"] == "op_finished" and r["data"]["state"] == "failed" for r in rows)
    assert rows[-1]["kind"] == "run_finished"


def test_a_reader_that_goes_away_stops_the_output_not_the_run(tmp_path: Path) -> None:
    """``sysflow sim ... | head -2``: the pipe closes early; the run still ends, nothing on stderr."""
    import subprocess
    import sys

    sim = subprocess.Popen(
        [sys.executable, "-m", "sysflow", "sim", str(DEMO), "--hosts", "50", "--no-approve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert sim.stdout is not None and sim.stderr is not None
    first = [sim.stdout.readline() for _ in range(2)]
    sim.stdout.close()  # what head does after two lines
    err = sim.stderr.read().decode()
    assert sim.wait(timeout=120) == 0
    assert all(b"run_started" in line or b"wave_started" in line for line in first)
    assert "Traceback" not in err and "BrokenPipe" not in err, err
