"""``sysflow schedule ...`` and ``sysflow scheduler`` through the real CLI app, on a real store."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from typer.testing import CliRunner

from sysflow.cli import app
from sysflow.engine.store import RunStore
from sysflow.schedule.schedules import Schedules

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
runner = CliRunner()


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def add(state: Path, name: str, when: str, *extra: str) -> tuple[int, str]:
    return cli(
        "schedule", "add", name, str(EXAMPLES / "patching.yaml"), "-i", str(EXAMPLES / "inventory.ini"),
        "--when", when, "--state", str(state), *extra,
    )  # fmt: skip


def test_add_list_show_pause_resume_remove(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    code, out = add(state, "web-monthly", "first sunday window of web_servers", "--missed", "catch_up")
    assert code == 0 and "added web-monthly" in out
    code, out = add(state, "nightly", 'cron "30 2 * * *"', "--timezone", "Europe/Amsterdam")
    assert code == 0
    code, out = cli("schedule", "list", "--state", str(state))
    assert code == 0
    lines = out.splitlines()
    assert [ln.split("\t")[:2] for ln in lines] == [["nightly", "active"], ["web-monthly", "active"]]
    assert "catch_up" in lines[1]
    with RunStore(state) as store:
        at = datetime(2026, 12, 6, tzinfo=UTC)
        Schedules(store).record("web-monthly", at, "started", at=at, run_id="web-monthly-x", detail="due")
        Schedules(store).record("web-monthly", at, "forecast", at=at, detail="line one\nline two")
    code, out = cli("schedule", "show", "web-monthly", "--state", str(state))
    assert code == 0
    assert "first sunday window of web_servers" in out and "patching.yaml (sha256 " in out
    assert "started run web-monthly-x: due" in out and "line one\n      line two" in out
    assert cli("schedule", "pause", "nightly", "--state", str(state)) == (0, "paused nightly\n")
    assert "paused" in cli("schedule", "list", "--state", str(state))[1]
    assert cli("schedule", "resume", "nightly", "--state", str(state)) == (0, "resumed nightly\n")
    assert cli("schedule", "remove", "nightly", "--state", str(state)) == (0, "removed nightly\n")
    assert cli("schedule", "list", "--state", str(state))[1].startswith("web-monthly")


def test_errors_are_one_line_and_exit_1_or_3(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    assert add(state, "a", "every window of web_servers")[0] == 0
    code, out = add(state, "a", "every window of web_servers")
    assert code == 1 and "exists" in out
    code, out = add(state, "b", "sometimes")
    assert code == 1 and "cannot read recurrence" in out
    code, out = add(state, "c", "every window of nobody")
    assert code == 1 and "nobody" in out
    code, out = cli("schedule", "show", "zzz", "--state", str(state))
    assert code == 3 and "no schedule named 'zzz'" in out


def test_export_systemd_and_verify(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    assert (
        add(state, "web-monthly", "last sunday window of web_servers", "--missed", "run_next_window")[0] == 0
    )
    code, out = cli("schedule", "export", "--systemd", str(tmp_path / "units"), "--state", str(state))
    assert code == 0
    paths = out.split()
    assert [Path(p).name for p in paths] == [
        "sysflow-schedule-web-monthly.service",
        "sysflow-schedule-web-monthly.timer",
    ]
    done = subprocess.run(["systemd-analyze", "verify", *paths], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_scheduler_once_with_nothing_due(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    assert add(state, "web-monthly", "first sunday window of web_servers")[0] == 0
    code, _ = cli("scheduler", "--once", "--state", str(state), "--no-forecast")
    assert code == 0
    assert (tmp_path / "audit.db").exists()
    with RunStore(state) as store:
        assert Schedules(store).claims() == []


def test_resident_scheduler_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sysflow.cli", "scheduler", "--state", str(state), "--poll", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(600):  # up to 60 s for the process to import and open its store and audit log
            if (tmp_path / "audit.db").exists() or proc.poll() is not None:
                break
            time.sleep(0.1)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0, err
