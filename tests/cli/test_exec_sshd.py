"""``sysflow exec PATTERN -i INV -- COMMAND`` over the real sshd: per-host output as Ansible's
ad-hoc prints it, exit 1 when a host fails, the run store and audit log of the same engine path."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.sshd import SSHD

SYSFLOW = [sys.executable, "-m", "sysflow"]
HOSTS = ["h0001", "h0002", "h0003"]


def _fleet(tmp: Path, sshd: SSHD) -> list[str]:
    config = sshd.write_client_config(tmp / "ssh_config", HOSTS)
    inventory = tmp / "hosts.ini"
    inventory.write_text("[web]\nh0001\nh0002 role=db\n[db]\nh0003 role=db\n[all:vars]\nrole=web\n")
    return ["-i", str(inventory), "--ssh-config", str(config), "--known-hosts", str(sshd.known_hosts)]


def _exec(tmp: Path, pattern: str, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [*SYSFLOW, "exec", pattern, *args]
    argv[argv.index("--") : argv.index("--")] = ["--store", str(tmp / "state.db")]
    return subprocess.run(argv, capture_output=True, text=True, timeout=180, env=dict(os.environ))


@pytest.mark.ssh
def test_exec_prints_each_hosts_output_and_fails_when_one_fails(sshd: SSHD, tmp_path: Path) -> None:
    common = _fleet(tmp_path, sshd)
    audit = str(tmp_path / "audit.db")
    command = "echo role={{ vars.role }} on $(hostname -s 2>/dev/null || echo x); test {{ vars.role }} = web"
    done = _exec(tmp_path, "web", *common, "--audit", audit, "--", command)
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "h0001 | OK | rc=0"
    assert lines[1].startswith("role=web on ")
    assert lines[2] == "h0002 | FAILED | rc=1"
    assert lines[3].startswith("role=db on ")
    summary = re.fullmatch(r"exec (\S+): 1 ok, 1 failed", lines[-2])
    assert summary is not None, done.stdout
    assert lines[-1].startswith(f"  re-run the failed hosts: sysflow exec @failed:{summary[1]} -i ")
    assert "h0003" not in done.stdout  # not in the pattern
    with sqlite3.connect(tmp_path / "state.db") as db:
        rows = db.execute("SELECT host, exit_status FROM ops WHERE run_id = ?", (summary[1],)).fetchall()
    assert sorted(rows) == [("h0001", 0), ("h0002", 1)]
    verify = subprocess.run([*SYSFLOW, "audit", "verify", audit], capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr

    again = _exec(tmp_path, f"@failed:{summary[1]}", *common, "-e", "role=web", "--", command)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.splitlines()[0] == "h0002 | OK | rc=0"
    assert "h0001" not in again.stdout


@pytest.mark.ssh
def test_exec_patterns_forks_and_errors(sshd: SSHD, tmp_path: Path) -> None:
    common = _fleet(tmp_path, sshd)
    done = _exec(tmp_path, "all:!h0002", *common, "--forks", "1", "--", "echo", "hello", "'two  spaces'")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:4] == ["h0001 | OK | rc=0", "hello two  spaces", "h0003 | OK | rc=0",
                                            "hello two  spaces"]  # fmt: skip
    many = _exec(tmp_path, "h0001", *common, "--lines", "2", "--", "seq 5; echo oops >&2; exit 3")
    assert many.returncode == 1
    run_id = re.search(r"^exec (\S+): 0 ok, 1 failed$", many.stdout, re.M)
    assert run_id is not None, many.stdout
    assert many.stdout.splitlines()[:5] == [
        "h0001 | FAILED | rc=3",
        "1",
        "2",
        f"  ... 3 more lines: sysflow logs {run_id[1]} h0001",
        "stderr: oops",
    ]
    bad = _exec(tmp_path, "web*:&nosuch", *common, "--", "true")
    assert bad.returncode == 1
    assert bad.stderr == "pattern 'web*:&nosuch': '&nosuch' matches no host\n"


@pytest.mark.ssh
def test_exec_becomes_root_with_the_password_on_stdin(sshd: SSHD, tmp_path: Path) -> None:
    hosts = ["h0041"]
    config = sshd.write_client_config(tmp_path / "ssh_config", hosts, user=sshd.become_user)
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("h0041\n")
    common = ["-i", str(inventory), "--ssh-config", str(config), "--known-hosts", str(sshd.known_hosts)]
    plain = _exec(tmp_path, "all", *common, "--", "id -un")
    assert plain.stdout.splitlines()[:2] == ["h0041 | OK | rc=0", sshd.become_user], plain.stderr
    argv = [
        *SYSFLOW,
        "exec",
        "all",
        *common,
        "--store",
        str(tmp_path / "state.db"),
        "-b",
        "-K",
        "--",
        "id -un",
    ]
    done = subprocess.run(
        argv,
        input=sshd.become_password + "\n",
        capture_output=True,
        text=True,
        timeout=180,
        env=dict(os.environ),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[:2] == ["h0041 | OK | rc=0", "root"]
    assert sshd.become_password not in done.stdout + done.stderr
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("state"))
    assert stored and sshd.become_password.encode() not in stored


def test_in_window_reads_a_windows_section_and_names_a_bad_file(tmp_path: Path) -> None:
    from sysflow.cli.exec import adhoc_workflow
    from sysflow.errors import WorkflowError

    assert adhoc_workflow("all", "true").windows.groups == {}  # ad-hoc: no windows unless asked
    path = tmp_path / "windows.yaml"
    path.write_text("windows:\n  groups:\n    web: 'Sunday 01:00-03:00'\n  default: never\n")
    windows = adhoc_workflow("web", "true", windows=path).windows
    assert windows.default == "never" and [s.weekly for s in windows.groups["web"]] == ["Sunday 01:00-03:00"]
    path.write_text("- not a mapping\n")
    with pytest.raises(WorkflowError, match=r"windows.yaml: a windows file is a mapping"):
        adhoc_workflow("web", "true", windows=path)
