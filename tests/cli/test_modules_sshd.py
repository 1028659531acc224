"""Modules over the real sshd, as a sysadmin runs them: the login is the non-root ``sfmaint`` and a
root-owned file is changed through sudo; changed then ok, the diff in ``sysflow logs``, permission
denied without become, and the automatic rollback restoring the file when a later task fails."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.sshd import SSHD

pytestmark = pytest.mark.ssh

SYSFLOW = [sys.executable, "-m", "sysflow"]
HOSTS = ["h0051", "h0052"]

WORKFLOW = """\
name: ntp
become: true
rollout:
  auto_rollback: {rollback}
tasks:
  - id: ntp
    lineinfile:
      path: "{{{{ vars.etc }}}}/{{{{ host.name }}}}.conf"
      regexp: '^server '
      line: "server {{{{ vars.ntp_server }}}} iburst"
  - id: restart
    depends_on: [ntp]
    run: 'test {{{{ host.name }}}} != {broken}'
"""


@pytest.fixture
def etc() -> Iterator[Path]:
    """A root-owned directory the non-root login can read but not write (like /etc)."""
    path = Path(tempfile.mkdtemp(prefix="sysflow-etc-", dir="/tmp"))
    path.chmod(0o755)
    try:
        for host in HOSTS:
            conf = path / f"{host}.conf"
            conf.write_text("# managed\nserver old.example.com\n")
            conf.chmod(0o644)
        yield path
    finally:
        shutil.rmtree(path)


def _run(
    sshd: SSHD, tmp: Path, etc: Path, *, become: bool = True, rollback: bool = False, broken: str = "none"
) -> subprocess.CompletedProcess[str]:
    wf = WORKFLOW.format(rollback=str(rollback).lower(), broken=broken)
    (tmp / "wf.yaml").write_text(wf if become else wf.replace("become: true\n", ""))
    (tmp / "hosts.ini").write_text(
        "[fleet]\n" + "\n".join(HOSTS) + f"\n[fleet:vars]\netc={etc}\nntp_server=ntp1.example.com\n"
        f"ansible_become_password={sshd.become_password}\n"
    )
    config = sshd.write_client_config(tmp / "ssh_config", HOSTS, user=sshd.become_user)
    argv = [*SYSFLOW, "run", str(tmp / "wf.yaml"), "-i", str(tmp / "hosts.ini"), "--ssh-config", str(config)]
    argv += ["--known-hosts", str(sshd.known_hosts), "--store", str(tmp / "state.db"), "--approve-all"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=180, env=dict(os.environ))


def test_changed_then_ok_through_sudo_with_the_diff_in_the_logs(
    sshd: SSHD, tmp_path: Path, etc: Path
) -> None:
    first = _run(sshd, tmp_path, etc)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "  modules: 2 operations changed on 2 hosts, 0 ok" in first.stdout
    conf = etc / f"{HOSTS[0]}.conf"
    assert conf.read_text() == "# managed\nserver ntp1.example.com iburst\n"
    assert (conf.stat().st_uid, oct(conf.stat().st_mode & 0o777)) == (0, "0o644")  # root's, mode kept
    run_id = re.search(r"^run (\S+): ", first.stdout, re.M)
    assert run_id is not None
    logs = subprocess.run(
        [*SYSFLOW, "logs", run_id.group(1), HOSTS[0], "ntp", "--store", str(tmp_path / "state.db")],
        capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    assert "-server old.example.com\n+server ntp1.example.com iburst" in logs
    second = _run(sshd, tmp_path, etc)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "  modules: nothing changed, 2 ok" in second.stdout
    assert sorted(p.name for p in etc.iterdir()) == sorted(f"{h}.conf" for h in HOSTS)  # no backup left


def test_without_become_the_root_owned_file_is_refused_with_the_remedy(
    sshd: SSHD, tmp_path: Path, etc: Path
) -> None:
    denied = _run(sshd, tmp_path, etc, become=False)
    assert denied.returncode == 1
    assert "Permission denied" in denied.stdout, denied.stdout
    assert "remedy: permission denied: run the task as root with become: true (or --become)" in denied.stdout
    assert (etc / f"{HOSTS[0]}.conf").read_text() == "# managed\nserver old.example.com\n"


def test_a_failed_later_task_rolls_the_file_back(sshd: SSHD, tmp_path: Path, etc: Path) -> None:
    failed = _run(sshd, tmp_path, etc, rollback=True, broken=HOSTS[1])
    assert failed.returncode == 1, failed.stdout + failed.stderr
    for host in HOSTS:  # the wave failed: both hosts' files are as they were
        assert (etc / f"{host}.conf").read_text() == "# managed\nserver old.example.com\n", failed.stdout
    assert sorted(p.name for p in etc.iterdir()) == sorted(f"{h}.conf" for h in HOSTS)
