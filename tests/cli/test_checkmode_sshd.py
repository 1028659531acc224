"""``sysflow run --check --diff`` over the real sshd: each host says what the run would change (the
diff of a file, a new file's checksum, a mode), nothing on the hosts changes, shell tasks without
``check:`` are listed as not checked; after the real run every check says ok."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_modules_sshd import connect, sysflow
from tests.fixtures.sshd import SSHD

pytestmark = pytest.mark.ssh

HOSTS = ["h0081", "h0082"]

WORKFLOW = """\
name: ntp
become: true
tasks:
  - id: ntp
    lineinfile:
      path: "{{{{ vars.etc }}}}/{{{{ host.name }}}}.conf"
      regexp: '^server '
      line: "server ntp1.example.com iburst"
  - id: motd
    copy: {{src: {src}, dest: "{{{{ vars.etc }}}}/{{{{ host.name }}}}.motd", mode: "0640"}}
  - id: restart
    depends_on: [ntp]
    run: 'true'
"""


def _snapshot(etc: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(etc.iterdir())}


def _confs(etc: Path) -> None:
    for host in HOSTS:
        (etc / f"{host}.conf").write_text("# managed\nserver old.example.com\n")


def test_check_diff_says_what_would_change_and_changes_nothing(sshd: SSHD, tmp_path: Path, etc: Path) -> None:
    _confs(etc)
    src = tmp_path / "motd.txt"
    src.write_text("Welcome\n")
    (tmp_path / "wf.yaml").write_text(WORKFLOW.format(src=src))
    options = connect(sshd, tmp_path, HOSTS, etc=str(etc))
    before = _snapshot(etc)
    checked = sysflow("run", str(tmp_path / "wf.yaml"), *options, "--check", "--diff")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    out = checked.stdout
    assert f"{HOSTS[0]} | ntp | would change" in out and f"{HOSTS[1]} | motd | would change" in out
    assert "-server old.example.com" in out and "+server ntp1.example.com iburst" in out  # the diff
    assert "content: sha256 (new) -> " in out and "mode: (new) -> 640" in out
    assert "not checked (shell tasks without check:): restart" in out
    assert "4 would change, 0 ok, 0 failed; nothing was changed" in out
    assert _snapshot(etc) == before  # nothing on the hosts changed

    ran = sysflow("run", str(tmp_path / "wf.yaml"), *options, "--approve-all")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    again = sysflow("run", str(tmp_path / "wf.yaml"), *options, "--check", "--diff")
    assert "0 would change, 4 ok, 0 failed; nothing was changed" in again.stdout, again.stdout


def test_a_problem_the_run_would_hit_is_shown_under_its_host(sshd: SSHD, tmp_path: Path, etc: Path) -> None:
    src = tmp_path / "motd.txt"
    src.write_text("x\n")
    (tmp_path / "wf.yaml").write_text(WORKFLOW.format(src=src).replace("become: true\n", ""))
    options = connect(sshd, tmp_path, HOSTS, etc=str(etc / "missing"))
    checked = sysflow("run", str(tmp_path / "wf.yaml"), *options, "--check", "--diff")
    assert checked.returncode == 0  # every check answered: the file is missing, so it would change
    assert "lineinfile: " in checked.stdout and "does not exist" in checked.stdout, checked.stdout
    assert f"copy: directory {etc}/missing does not exist on the host" in checked.stdout
