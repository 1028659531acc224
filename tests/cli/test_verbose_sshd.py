"""``run -v`` / ``-vv`` and ``exec -v`` over the real sshd: each host's output printed as it arrives,
one prefixed line per output line, commands with ``-vv``, and secret values masked everywhere."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.sshd import SSHD

SYSFLOW = [sys.executable, "-m", "sysflow"]
TOKEN = "s3cr3t-T0K-verbose"

WORKFLOW = """\
name: chatty
secrets: [api_token]
tasks:
  - id: talk
    run: 'echo "hello from {{ host.name }}"; echo "token={{ vars.api_token }}" >&2; printf "\\033[31mred\\n"; printf "no newline"'
  - id: long
    run: 'head -c 10000 /dev/zero | tr "\\\\0" x'
"""


@pytest.fixture
def fleet(sshd: SSHD, tmp_path: Path) -> Path:
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    (tmp_path / "hosts.ini").write_text(f"[fleet]\nh0001\nh0002\n[fleet:vars]\napi_token={TOKEN}\n")
    sshd.write_client_config(tmp_path / "ssh_config", ["h0001", "h0002"])
    (tmp_path / "known_hosts").write_text(sshd.known_hosts.read_text())
    return tmp_path


def _cli(fleet: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    common = ["-i", "hosts.ini", "--ssh-config", "ssh_config", "--known-hosts", "known_hosts"]
    return subprocess.run(
        [*SYSFLOW, *argv[:2], *common, *argv[2:]],
        cwd=fleet, capture_output=True, text=True, timeout=180, env=dict(os.environ),
    )  # fmt: skip


@pytest.mark.ssh
def test_run_v_streams_each_hosts_output_with_secrets_masked(fleet: Path) -> None:
    done = _cli(fleet, "run", "wf.yaml", "--approve-all", "--store", "state.db", "-v")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    for host in ("h0001", "h0002"):
        assert f"{host} stdout | hello from {host}" in lines
        assert f"{host} stderr | token=********" in lines
        assert f"{host} stdout | \\x1b[31mred" in lines  # a terminal escape shown, not obeyed
        assert f"{host} stdout | no newline" in lines  # the last line, though it has no newline
        assert f"{host} stdout | {'x' * 4096}" in lines  # a 10,000-byte line, cut at 4 KiB
    assert TOKEN not in done.stdout + done.stderr
    assert not any(" $ " in line for line in lines)  # commands only with -vv
    streamed = [i for i, line in enumerate(lines) if " | hello from " in line]
    finished = next(i for i, line in enumerate(lines) if line.startswith("run chatty-"))
    assert max(streamed) < finished  # printed while the run went, before its summary


@pytest.mark.ssh
def test_run_vv_shows_each_command_as_it_starts_masked(fleet: Path) -> None:
    done = _cli(fleet, "run", "wf.yaml", "--approve-all", "--store", "state.db", "-vv")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    start = 'h0001 $ echo "hello from h0001"; echo "token=********" >&2; printf "\\033[31mred\\n"; printf "no newline"'
    assert start in lines
    assert lines.index(start) < lines.index("h0001 stdout | hello from h0001")
    assert TOKEN not in done.stdout + done.stderr


@pytest.mark.ssh
def test_exec_v_streams_and_json_mode_keeps_stdout_clean(fleet: Path) -> None:
    done = _cli(fleet, "exec", "h0002", "--store", "state.db", "-v", "--", "echo one; echo two >&2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[:2] in (
        ["h0002 stdout | one", "h0002 stderr | two"],
        ["h0002 stderr | two", "h0002 stdout | one"],
    )
    quiet = _cli(fleet, "run", "wf.yaml", "--approve-all", "--store", "state.db", "--json", "-v")
    assert quiet.returncode == 0, quiet.stderr
    assert "h0001 stdout | hello from h0001" in quiet.stderr.splitlines()
    assert all(line.startswith("{") for line in quiet.stdout.splitlines())  # JSON Lines only
