"""``copy`` over the real sshd, as a sysadmin runs it: the non-root login sends the file over SFTP
and sudo installs it into a root-owned directory; an unchanged file is not sent again; a changed one
shows its diff; a failed later task rolls the file back; a missing directory is named per host."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sysflow.actors.uploads import stage_path
from tests.cli.test_modules_sshd import logs, run_workflow
from tests.fixtures.sshd import SSHD

pytestmark = pytest.mark.ssh

HOSTS = ["h0071", "h0072"]

WORKFLOW = """\
name: motd
become: true
rollout:
  auto_rollback: true
tasks:
  - id: motd
    copy:
      src: {src}
      dest: "{{{{ vars.etc }}}}/{{{{ host.name }}}}.motd"
      mode: "0640"
  - id: after
    depends_on: [motd]
    run: 'test {{{{ host.name }}}} != {broken}'
"""


def _run(sshd: SSHD, tmp: Path, etc: Path, src: Path, *, broken: str = "none", where: Path | None = None):  # type: ignore[no-untyped-def]
    wf = WORKFLOW.format(src=src, broken=broken)
    return run_workflow(sshd, tmp, wf, HOSTS, etc=str(where or etc))


def _stages() -> list[str]:
    """This test's stage files still on the hosts (other tests' may come and go meanwhile)."""
    return [p for h in HOSTS if os.path.exists(p := stage_path(f"motd@{h}"))]


def test_sent_once_then_ok_without_a_transfer_then_the_diff_of_a_change(
    sshd: SSHD, tmp_path: Path, etc: Path
) -> None:
    src = tmp_path / "motd.txt"
    src.write_text("Welcome\nmaintenance: Sundays 02:00\n")
    first = _run(sshd, tmp_path, etc, src)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "  modules: 2 operations changed on 2 hosts, 0 ok" in first.stdout
    for host in HOSTS:
        motd = etc / f"{host}.motd"
        assert motd.read_text() == src.read_text()
        assert (motd.stat().st_uid, oct(motd.stat().st_mode & 0o777)) == (0, "0o640")  # sudo installed it
    shown = logs(tmp_path, first, HOSTS[0], "motd")
    assert f"sent motd.txt: {src.stat().st_size} bytes" in shown and "content: sha256 (new) -> " in shown
    assert _stages() == []  # nothing left in /tmp

    second = _run(sshd, tmp_path, etc, src)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "  modules: nothing changed, 2 ok" in second.stdout
    assert "sent motd.txt:" not in logs(tmp_path, second, HOSTS[0], "motd")  # compared on the host

    src.write_text("Welcome\nmaintenance: Saturdays 03:00\n")
    third = _run(sshd, tmp_path, etc, src)
    assert third.returncode == 0, third.stdout + third.stderr
    shown = logs(tmp_path, third, HOSTS[1], "motd")
    assert "-maintenance: Sundays 02:00\n+maintenance: Saturdays 03:00" in shown
    assert (etc / f"{HOSTS[1]}.motd").read_text() == src.read_text()
    # the replaced file is kept for the task's rollback (the next unchanged run drops it)
    assert (etc / f"{HOSTS[1]}.motd.sysflow-bak").read_text() == "Welcome\nmaintenance: Sundays 02:00\n"


def test_a_failed_later_task_puts_the_old_file_back(sshd: SSHD, tmp_path: Path, etc: Path) -> None:
    for host in HOSTS:
        (etc / f"{host}.motd").write_text("old\n")
    src = tmp_path / "motd.txt"
    src.write_text("new\n")
    failed = _run(sshd, tmp_path, etc, src, broken=HOSTS[1])
    assert failed.returncode == 1, failed.stdout + failed.stderr
    for host in HOSTS:
        assert (etc / f"{host}.motd").read_text() == "old\n", failed.stdout
    assert sorted(p.name for p in etc.iterdir()) == sorted(f"{h}.motd" for h in HOSTS)


def test_a_missing_directory_is_named_for_each_host(sshd: SSHD, tmp_path: Path, etc: Path) -> None:
    src = tmp_path / "motd.txt"
    src.write_text("x\n")
    failed = _run(sshd, tmp_path, etc, src, where=etc / "nope")
    assert failed.returncode == 1
    assert f"copy: directory {etc}/nope does not exist on the host" in failed.stdout, failed.stdout
    assert list(etc.iterdir()) == []
