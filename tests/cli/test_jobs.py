"""``sysflow submit`` and ``sysflow status --address`` against a real Ray head with token auth.

The head is started with ``ray start --head`` on 127.0.0.1, every port pinned to a free one, in
its own temp dir, with a generated token; it is stopped by killing exactly the processes of that
temp dir (and their children), never with a global ``ray stop`` that would end other clusters.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sysflow.audit.log import AuditLog
from sysflow.cli import app
from sysflow.cli.demo import DEMO_WORKFLOW, demo_inventory, inventory_yaml
from sysflow.cli.jobs import JobSpec, RayJobError, RayTarget, complete_lines, entrypoint, read_token

pytestmark = [pytest.mark.ray, pytest.mark.timeout(900)]

START_TIMEOUT = 240  # seconds for `ray start` on a busy machine (about 10 s on an idle one)
START_ATTEMPTS = 2
STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL when stopping the head


@dataclass(frozen=True)
class Head:
    address: str
    token: str
    token_file: Path
    temp_dir: Path


def _free_ports(n: int) -> list[int]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _start_command(temp_dir: Path, ports: list[int]) -> list[str]:
    names = ["--port", "--dashboard-port", "--ray-client-server-port", "--node-manager-port",
             "--object-manager-port", "--dashboard-agent-listen-port", "--dashboard-agent-grpc-port",
             "--metrics-export-port", "--runtime-env-agent-port", "--min-worker-port"]  # fmt: skip
    cmd = ["ray", "start", "--head", "--node-ip-address", "127.0.0.1", "--dashboard-host", "127.0.0.1"]
    for name, port in zip(names, ports, strict=True):
        cmd += [name, str(port)]
    cmd += ["--max-worker-port", str(ports[-1] + 40), "--temp-dir", str(temp_dir), "--num-cpus", "1"]
    return [*cmd, "--include-dashboard", "true", "--disable-usage-stats"]


def _processes_of(temp_dir: Path) -> set[int]:
    """PIDs whose command line names ``temp_dir``, and all their descendants."""
    parents: dict[int, int] = {}
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if str(temp_dir) in cmdline and int(entry.name) != os.getpid():
            found.add(int(entry.name))
    for _ in range(10):  # bounded: descendants up to ten levels down
        more = {pid for pid, ppid in parents.items() if ppid in found} - found
        if not more:
            break
        found |= more
    return found


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to reap it counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _stop(temp_dir: Path) -> None:
    pids = _processes_of(temp_dir)
    for sig, grace in ((signal.SIGTERM, STOP_GRACE), (signal.SIGKILL, 2.0)):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.2)


@pytest.fixture(scope="module")
def head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Head]:
    base = Path(f"/tmp/sfray{secrets.token_hex(3)}")  # short: Ray's unix sockets live under it
    base.mkdir()
    token = secrets.token_hex(32)
    token_file = tmp_path_factory.mktemp("token") / "auth_token"
    token_file.write_text(token)
    ports = _free_ports(10)
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token, "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_raylet_start_wait_time_s": "120"}  # fmt: skip
    env.pop("RAY_AUTH_TOKEN_PATH", None)
    try:
        for _ in range(START_ATTEMPTS):  # Ray gives the raylet 30 s to register: a busy machine may miss it
            try:
                done = subprocess.run(
                    _start_command(base, ports),
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=START_TIMEOUT,
                )
            except subprocess.TimeoutExpired as exc:
                done = subprocess.CompletedProcess(
                    exc.cmd, 1, "", f"ray start timed out after {START_TIMEOUT} s"
                )
            if done.returncode == 0:
                break
            _stop(base)
            ports = _free_ports(10)
        assert done.returncode == 0, done.stderr[-2000:]
        yield Head(f"http://127.0.0.1:{ports[1]}", token, token_file, base)
    finally:
        _stop(base)
        shutil.rmtree(base, ignore_errors=True)


def _files(tmp_path: Path) -> tuple[Path, Path]:
    inv = tmp_path / "inventory.yaml"
    inv.write_text(inventory_yaml(demo_inventory(1000)))
    return DEMO_WORKFLOW, inv


def test_submit_simulated_1000_host_run(head: Head, tmp_path: Path) -> None:
    workflow, inventory = _files(tmp_path)
    audit = tmp_path / "audit.db"
    argv = ["submit", str(workflow), "-i", str(inventory), "--address", head.address, "--sim"]
    argv += ["--audit", str(audit), "--token-file", str(head.token_file), "--timeout", "600"]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert "succeeded" in result.output.splitlines()[-1]
    assert "completed (1000 succeeded)" in result.output
    assert head.token not in result.output
    with AuditLog(audit) as log:
        assert log.verify() is None
        records = list(log.records())
    assert len({r.host for r in records if r.host}) == 1000
    assert records[-1].action == "run_finished"
    job_id = result.output.split("submitted job ", 1)[1].split()[0]
    listed = CliRunner().invoke(
        app, ["status", job_id, "--address", head.address, "--token-file", str(head.token_file)]
    )
    assert listed.exit_code == 0 and "succeeded" in listed.output and head.token not in listed.output


def test_status_lists_jobs_and_missing_job_is_not_found(head: Head) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["status", "--address", head.address, "--token-file", str(head.token_file)])
    assert ok.exit_code == 0
    missing = runner.invoke(
        app, ["status", "nope", "--address", head.address, "--token-file", str(head.token_file)]
    )
    assert missing.exit_code == 3 and "no job 'nope'" in missing.output


def test_wrong_token_is_refused_without_showing_it(head: Head, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-token-" + secrets.token_hex(8))
    result = CliRunner().invoke(app, ["status", "--address", head.address, "--token-file", str(wrong)])
    assert result.exit_code == 1
    assert "error: Ray dashboard" in result.output
    assert wrong.read_text() not in result.output and head.token not in result.output
    assert "Traceback" not in result.output


def test_unreachable_dashboard_is_one_line() -> None:
    port = _free_ports(1)[0]
    result = CliRunner().invoke(app, ["status", "--address", f"http://127.0.0.1:{port}"])
    assert result.exit_code == 1
    assert (
        result.output.strip()
        == f"error: cannot reach the Ray dashboard at http://127.0.0.1:{port}: ConnectionError"
    )


def test_token_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "tok"
    f.write_text("from-file\n")
    assert read_token(f, {}).reveal() == "from-file"  # type: ignore[union-attr]
    assert read_token(None, {"RAY_AUTH_TOKEN": "from-env"}).reveal() == "from-env"  # type: ignore[union-attr]
    assert read_token(None, {"RAY_AUTH_TOKEN_PATH": str(f)}).reveal() == "from-file"  # type: ignore[union-attr]
    monkeypatch.setattr("sysflow.cli.jobs.DEFAULT_TOKEN_FILE", tmp_path / "absent")
    assert read_token(None, {}) is None
    empty = tmp_path / "empty"
    empty.write_text("")
    with pytest.raises(RayJobError, match="is empty"):
        read_token(empty, {})
    with pytest.raises(RayJobError, match="cannot read"):
        read_token(tmp_path / "nope", {})
    target = RayTarget("http://h:8265", read_token(f, {}))
    assert target.headers() == {"Authorization": "Bearer from-file"}
    assert "from-file" not in repr(target)
    with pytest.raises(ValueError, match="dashboard URL"):
        RayTarget.from_options("h:8265")


def test_entrypoint_names_staged_files() -> None:
    spec = JobSpec(Path("a/wf.yaml"), Path("b/hosts.ini"), sim=True, profile=Path("p.yml"), audit="/x/a.db")
    cmd = entrypoint(spec)
    assert cmd.endswith("sim workflow.yaml -i inventory.ini --seed 1 --profile profile.yml --audit /x/a.db")
    assert entrypoint(JobSpec(Path("wf.json"), Path("inv"))).endswith("run workflow.json -i inventory")


def test_complete_lines_hold_back_a_partial_line() -> None:
    assert complete_lines("a\nb\npart", final=False) == (["a", "b"], 4)
    assert complete_lines("part", final=False) == ([], 0)
    assert complete_lines("part", final=True) == (["part"], 4)
    assert complete_lines("", final=True) == ([], 0)
