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

from sysflow.model.workflow import MaintenanceWorkflow
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


def sysflow(*argv: str) -> subprocess.CompletedProcess[str]:
    """``python -m sysflow ARGV`` as a subprocess, as a sysadmin runs it."""
    return subprocess.run(
        [*SYSFLOW, *argv], capture_output=True, text=True, timeout=180, env=dict(os.environ)
    )


def connect(sshd: SSHD, tmp: Path, hosts: list[str], **host_vars: str) -> list[str]:
    """Write an inventory (group ``fleet``, its vars, the sudo password) and an ssh_config for the
    non-root login; return the options that reach the hosts through them, with a store in ``tmp``."""
    (tmp / "hosts.ini").write_text(
        "[fleet]\n" + "\n".join(hosts) + "\n[fleet:vars]\n"
        + "".join(f"{k}={v}\n" for k, v in host_vars.items())
        + f"ansible_become_password={sshd.become_password}\n"
    )  # fmt: skip
    config = sshd.write_client_config(tmp / "ssh_config", hosts, user=sshd.become_user)
    return ["-i", str(tmp / "hosts.ini"), "--ssh-config", str(config), "--known-hosts", str(sshd.known_hosts),
            "--store", str(tmp / "state.db")]  # fmt: skip


def run_workflow(
    sshd: SSHD, tmp: Path, workflow: str, hosts: list[str], **host_vars: str
) -> subprocess.CompletedProcess[str]:
    """``sysflow run`` of ``workflow`` (YAML text) over ``hosts``, every gate approved."""
    (tmp / "wf.yaml").write_text(workflow)
    return sysflow("run", str(tmp / "wf.yaml"), *connect(sshd, tmp, hosts, **host_vars), "--approve-all")


def logs(tmp: Path, run: subprocess.CompletedProcess[str], host: str, task: str) -> str:
    """What ``sysflow logs`` shows of ``task`` on ``host`` in the run that printed ``run``."""
    run_id = re.search(r"^run (\S+): ", run.stdout, re.M)
    assert run_id is not None, run.stdout
    return sysflow("logs", run_id.group(1), host, task, "--store", str(tmp / "state.db")).stdout


def _run(
    sshd: SSHD, tmp: Path, etc: Path, *, become: bool = True, rollback: bool = False, broken: str = "none"
) -> subprocess.CompletedProcess[str]:
    wf = WORKFLOW.format(rollback=str(rollback).lower(), broken=broken)
    wf = wf if become else wf.replace("become: true\n", "")
    return run_workflow(sshd, tmp, wf, HOSTS, etc=str(etc), ntp_server="ntp1.example.com")


def test_changed_then_ok_through_sudo_with_the_diff_in_the_logs(
    sshd: SSHD, tmp_path: Path, etc: Path
) -> None:
    first = _run(sshd, tmp_path, etc)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "  modules: 2 operations changed on 2 hosts, 0 ok" in first.stdout
    conf = etc / f"{HOSTS[0]}.conf"
    assert conf.read_text() == "# managed\nserver ntp1.example.com iburst\n"
    assert (conf.stat().st_uid, oct(conf.stat().st_mode & 0o777)) == (0, "0o644")  # root's, mode kept
    assert "-server old.example.com\n+server ntp1.example.com iburst" in logs(
        tmp_path, first, HOSTS[0], "ntp"
    )
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


BLOCK = """\
name: banner
become: true
tasks:
  - id: banner
    blockinfile:
      path: "{{{{ vars.etc }}}}/{{{{ host.name }}}}.conf"
      state: {state}
      insertafter: '^# managed'
      block: |
        # {{{{ host.name }}}} is maintained by sysflow
        server ntp1.example.com
"""


def test_blockinfile_over_sudo_changed_ok_checked_and_removed(sshd: SSHD, tmp_path: Path, etc: Path) -> None:
    first = run_workflow(sshd, tmp_path, BLOCK.format(state="present"), HOSTS, etc=str(etc))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "  modules: 2 operations changed on 2 hosts, 0 ok" in first.stdout
    conf = etc / f"{HOSTS[0]}.conf"
    assert conf.read_text() == (
        f"# managed\n# BEGIN SYSFLOW MANAGED BLOCK\n# {HOSTS[0]} is maintained by sysflow\n"
        "server ntp1.example.com\n# END SYSFLOW MANAGED BLOCK\nserver old.example.com\n"
    )
    assert (conf.stat().st_uid, oct(conf.stat().st_mode & 0o777)) == (0, "0o644")
    assert f"+# {HOSTS[0]} is maintained by sysflow\n" in logs(tmp_path, first, HOSTS[0], "banner")
    second = run_workflow(sshd, tmp_path, BLOCK.format(state="present"), HOSTS, etc=str(etc))
    assert "  modules: nothing changed, 2 ok" in second.stdout, second.stdout
    (etc / f"{HOSTS[1]}.conf").write_text("# managed\n")  # edited by hand on one host
    check = MaintenanceWorkflow.from_file(tmp_path / "wf.yaml").tasks[0].check or ""
    checked = sysflow("exec", "fleet", *connect(sshd, tmp_path, HOSTS, etc=str(etc)), "--become", "--", check)
    assert checked.returncode == 1  # check mode: exit 0 where nothing would change
    assert f"{HOSTS[0]} | OK | rc=0" in checked.stdout and f"{HOSTS[1]} | FAILED | rc=1" in checked.stdout
    assert (etc / f"{HOSTS[1]}.conf").read_text() == "# managed\n"  # checked, not changed
    gone = run_workflow(sshd, tmp_path, BLOCK.format(state="absent"), HOSTS, etc=str(etc))
    assert "  modules: 1 operation changed on 1 host, 1 ok" in gone.stdout, gone.stdout
    assert conf.read_text() == "# managed\nserver old.example.com\n"
    kept = [f"{HOSTS[0]}.conf", f"{HOSTS[0]}.conf.sysflow-bak", f"{HOSTS[1]}.conf"]  # for the rollback
    assert sorted(p.name for p in etc.iterdir()) == kept


def test_blockinfile_on_a_missing_file_names_it(sshd: SSHD, tmp_path: Path, etc: Path) -> None:
    (etc / f"{HOSTS[0]}.conf").unlink()
    failed = run_workflow(sshd, tmp_path, BLOCK.format(state="present"), HOSTS, etc=str(etc))
    assert failed.returncode == 1
    assert f"blockinfile: {etc / HOSTS[0]}.conf does not exist (create: true creates it)" in failed.stdout
    assert not (etc / f"{HOSTS[0]}.conf").exists()
