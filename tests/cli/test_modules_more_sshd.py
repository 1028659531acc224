"""The modules the other sshd tests leave out, over the real sshd through sudo as a sysadmin runs
them: ``file`` (changed, ok, check mode, a refused missing file), ``wait_for`` (waits for a path
another process creates, fails at its timeout naming it), and check mode and rollback for
``template`` and ``fetch``."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.cli.test_modules_sshd import connect, logs, sysflow
from tests.fixtures.sshd import SSHD

pytestmark = pytest.mark.ssh

HOSTS = ["h0121", "h0122"]


def _run(
    sshd: SSHD, tmp: Path, workflow: str, *extra: str, **host_vars: str
) -> subprocess.CompletedProcess[str]:
    (tmp / "wf.yaml").write_text(workflow)
    return sysflow("run", str(tmp / "wf.yaml"), *connect(sshd, tmp, HOSTS, **host_vars), *extra)


FILE = """\
name: spool
become: true
tasks:
  - id: spool
    file: {path: "{{ vars.etc }}/{{ host.name }}.d", state: directory, mode: "0750", owner: nobody}
  - id: conf
    depends_on: [spool]
    file: {path: "{{ vars.etc }}/{{ host.name }}.conf", mode: "0600"}
"""


def test_file_changed_then_ok_with_check_mode_first(sshd: SSHD, tmp_path: Path, etc: Path) -> None:
    for host in HOSTS:
        (etc / f"{host}.conf").write_text("x\n")
        (etc / f"{host}.conf").chmod(0o644)
    checked = _run(sshd, tmp_path, FILE, "--check", "--diff", etc=str(etc))
    assert f"{HOSTS[0]} | spool | would change" in checked.stdout, checked.stdout
    assert "mode: 644 -> 600" in checked.stdout and not (etc / f"{HOSTS[0]}.d").exists()
    first = _run(sshd, tmp_path, FILE, "--approve-all", etc=str(etc))
    assert first.returncode == 0, first.stdout + first.stderr
    spool = etc / f"{HOSTS[1]}.d"
    assert spool.is_dir() and oct(spool.stat().st_mode & 0o777) == "0o750" and spool.owner() == "nobody"
    assert oct((etc / f"{HOSTS[1]}.conf").stat().st_mode & 0o777) == "0o600"
    assert "mode: 644 -> 600" in logs(tmp_path, first, HOSTS[0], "conf")
    second = _run(sshd, tmp_path, FILE, "--approve-all", etc=str(etc))
    assert "  modules: nothing changed, 4 ok" in second.stdout, second.stdout
    (etc / f"{HOSTS[0]}.conf").unlink()
    missing = _run(sshd, tmp_path, FILE, "--approve-all", etc=str(etc))
    assert missing.returncode == 1
    assert f"file: {etc}/{HOSTS[0]}.conf does not exist or is not a file" in missing.stdout, missing.stdout


WAIT = """\
name: wait
tasks:
  - id: ready
    wait_for: {{path: "{{{{ vars.flag }}}}", timeout: {timeout}, interval: 0.2}}
"""


def test_wait_for_waits_for_a_path_and_fails_at_its_timeout(sshd: SSHD, tmp_path: Path, etc: Path) -> None:
    flag = etc / "ready.flag"  # the login reads /tmp/sysflow-etc-*, not pytest's private tmp_path
    later = threading.Timer(1.5, flag.write_text, args=("up\n",))
    later.start()
    started = time.monotonic()
    try:
        waited = _run(sshd, tmp_path, WAIT.format(timeout="20s"), "--approve-all", flag=str(flag))
    finally:
        later.cancel()
    assert waited.returncode == 0, waited.stdout + waited.stderr
    assert time.monotonic() - started >= 1.5  # it waited for the flag
    flag.unlink()
    failed = _run(sshd, tmp_path, WAIT.format(timeout="1s"), "--approve-all", flag=str(flag))
    assert failed.returncode == 1 and str(flag) in failed.stdout, failed.stdout


TEMPLATE = """\
name: motd
become: true
rollout:
  auto_rollback: true
tasks:
  - id: motd
    template: {{src: {src}, dest: "{{{{ vars.etc }}}}/{{{{ host.name }}}}.motd"}}
  - id: after
    depends_on: [motd]
    run: 'test {{{{ host.name }}}} != {broken}'
"""


def test_template_check_mode_then_rollback_restores_every_host(sshd: SSHD, tmp_path: Path, etc: Path) -> None:
    src = tmp_path / "motd.j2"
    src.write_text("Welcome to {{ host.name }}\n")
    for host in HOSTS:
        (etc / f"{host}.motd").write_text("old\n")
    checked = _run(sshd, tmp_path, TEMPLATE.format(src=src, broken="none"), "--check", "--diff", etc=str(etc))
    assert checked.stdout.count("| motd | would change") == 2, checked.stdout
    assert all((etc / f"{h}.motd").read_text() == "old\n" for h in HOSTS)
    failed = _run(sshd, tmp_path, TEMPLATE.format(src=src, broken=HOSTS[1]), "--approve-all", etc=str(etc))
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert all((etc / f"{h}.motd").read_text() == "old\n" for h in HOSTS), failed.stdout  # rolled back


FETCH = """\
name: collect
tasks:
  - id: log
    fetch: {{src: "{src}", dest: {dest}}}
"""


def test_fetch_check_mode_says_what_would_come_and_moves_nothing(
    sshd: SSHD, tmp_path: Path, etc: Path
) -> None:
    src = etc / "app.log"
    src.write_text("line\n")
    src.chmod(0o644)
    dest = tmp_path / "fetched"
    checked = _run(sshd, tmp_path, FETCH.format(src=src, dest=dest), "--check", "--diff")
    assert checked.stdout.count("| log | would change") == 2 and "would fetch " in checked.stdout, (
        checked.stdout
    )
    assert not dest.exists()
