"""Steering a live ``sysflow run`` from another shell: pause (nothing new starts, running operations
finish), status shows who paused, resume continues it, cancel stops it; wrong states exit 4, unknown
runs 3. Real processes throughout: the run over SSH against a lab fleet, the controls as subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sysflow.lab import lab_down, lab_up

SYSFLOW = [sys.executable, "-m", "sysflow"]
REPO = Path(__file__).resolve().parents[2]
WAIT = 60.0  # seconds: every wait below is bounded by this
pytestmark = pytest.mark.ssh

WORKFLOW = """\
name: slow
tasks:
  - id: first
    run: sleep 1
  - id: second
    run: sleep 1
    depends_on: [first]
parallelism:
  max_parallel_servers: 1
"""


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A 4-host lab (real sshd on loopback aliases) and a slow two-task workflow: 8 s one at a time."""
    lab = tmp_path_factory.mktemp("steer") / "lab"
    lab_up(lab, 4)
    (lab / "slow.yaml").write_text(WORKFLOW)
    try:
        yield lab
    finally:
        lab_down(lab)


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }


def _cli(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SYSFLOW, *argv], capture_output=True, text=True, timeout=timeout, env=_env())


def _start(lab: Path, store: Path) -> subprocess.Popen[str]:
    argv = [*SYSFLOW, "run", str(lab / "slow.yaml"), "-i", str(lab / "inventory.ini")]
    argv += ["--ssh-config", str(lab / "ssh_config"), "--known-hosts", str(lab / "known_hosts")]
    argv += ["--store", str(store), "--audit", str(store.with_name("audit.db"))]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())


def _run_view(store: Path) -> dict[str, Any] | None:
    out = _cli("status", "--json", "--store", str(store))
    runs = json.loads(out.stdout)["runs"] if out.returncode == 0 else []
    return runs[0] if runs else None


def _wait_for(store: Path, what: str, check: Any) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        view = _run_view(store)
        if view is not None and check(view):
            return view
        time.sleep(0.2)
    raise AssertionError(f"run never {what}: {_run_view(store)}")


def _user() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def _started(view: dict[str, Any]) -> int:
    return sum(n for state, n in view["ops"].items() if state != "pending")


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    try:
        out, _ = proc.communicate(timeout=WAIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=10)
        raise
    return proc.returncode, out


def test_pause_holds_new_operations_and_resume_completes_the_run(fleet: Path, tmp_path: Path) -> None:
    store = tmp_path / "state.db"
    proc = _start(fleet, store)
    try:
        view = _wait_for(store, "started an operation", lambda v: _started(v) >= 1)
        run_id = view["id"]
        paused = _cli("pause", run_id, "--store", str(store))
        assert paused.returncode == 0, paused.stderr
        assert paused.stdout.strip().endswith(
            "pause requested (running operations finish, nothing new starts)"
        )
        again = _cli("pause", run_id, "--store", str(store))
        assert again.returncode == 4 and "already paused" in again.stderr
        view = _wait_for(store, "paused", lambda v: v["status"] == "paused" and "running" not in v["ops"])
        held = _started(view)
        time.sleep(3.5)  # longer than an operation and the control poll: nothing new may start
        assert _started(_run_view(store) or {}) == held < 8
        status = _cli("status", run_id, "--store", str(store))
        assert f"{run_id}  slow  paused" in status.stdout
        assert "reason: paused by operator (" in status.stdout
        resumed = _cli("resume", run_id, "--store", str(store))
        assert resumed.returncode == 0, resumed.stderr
        assert resumed.stdout.strip().startswith(f"run {run_id}: resume requested (paused by ")
        twice = _cli("resume", run_id, "--store", str(store))
        assert twice.returncode == 4  # already requested (or, if applied already, running and not paused)
        code, out = _finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert code == 0, out
    assert f"run {run_id}: completed (4 succeeded)" in out
    finished = _cli("pause", run_id, "--store", str(store))
    assert (finished.returncode, finished.stderr.strip()) == (4, f"error: run {run_id} already completed")
    running = _cli("resume", run_id, "--store", str(store))
    assert running.returncode == 4
    audit = _cli("audit", "query", str(tmp_path / "audit.db"), "--run", run_id, "--json").stdout
    steering = [
        (r["action"], r["detail"])
        for r in map(json.loads, audit.splitlines())
        if "operator" in (r["detail"] or "")
    ]
    assert [kind for kind, _ in steering] == ["run_paused", "run_resumed"]
    assert all(
        detail.endswith(f"by operator ({os.environ.get('SYSFLOW_USER') or _user()})")
        for _, detail in steering
    )


def test_resume_of_a_running_run_that_is_not_paused_exits_4_and_cancel_stops_it(
    fleet: Path, tmp_path: Path
) -> None:
    store = tmp_path / "state.db"
    proc = _start(fleet, store)
    try:
        run_id = _wait_for(store, "started an operation", lambda v: _started(v) >= 1)["id"]
        resumed = _cli("resume", run_id, "--store", str(store))
        assert resumed.returncode == 4
        line = resumed.stderr.strip()
        assert line.startswith(f"error: run {run_id} is owned by a live controller: host "), line
        assert f"pid {proc.pid}" in line
        assert line.endswith("; it is running, not paused by an operator: nothing to resume"), line
        cancelled = _cli("cancel", run_id, "--store", str(store))
        assert cancelled.returncode == 0 and "cancel requested" in cancelled.stdout
        code, out = _finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert code == 1
    assert f"run {run_id}: cancelled" in out
    view = _run_view(store)
    assert view is not None and view["status"] == "cancelled" and view["ops"].get("succeeded", 0) < 8


def test_unknown_runs_exit_3(tmp_path: Path) -> None:
    store = tmp_path / "state.db"
    for verb in ("pause", "resume", "cancel"):
        out = _cli(verb, "no-such-run", "--store", str(store))
        assert out.returncode == 3, (verb, out.stderr)
        assert len(out.stderr.strip().splitlines()) == 1
