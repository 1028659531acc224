"""``template`` over the real sshd: each host gets its own rendering of one Jinja2 file (its name and
variables, values as they are: no shell quoting in a file), installed through sudo; an unchanged
rendering is not sent again; a host lacking a variable and a template reading facts are refused
before anything runs, naming the task, the host and the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_modules_sshd import connect, logs, sysflow
from tests.fixtures.sshd import SSHD

pytestmark = pytest.mark.ssh

HOSTS = ["h0091", "h0092"]

TEMPLATE = """\
# {{ host.name }}: managed by sysflow
server {{ vars.ntp_server }} iburst
{% for peer in vars.peers.split(",") %}peer {{ peer }}
{% endfor %}motd = {{ vars.motd }}
"""

WORKFLOW = """\
name: ntp
become: true
tasks:
  - id: conf
    template: {{src: {src}, dest: "{{{{ vars.etc }}}}/{{{{ host.name }}}}.conf", mode: "0644"}}
"""


def _run(sshd: SSHD, tmp: Path, etc: Path, template: str = TEMPLATE, **more: str):  # type: ignore[no-untyped-def]
    src = tmp / "ntp.conf.j2"
    src.write_text(template)
    (tmp / "wf.yaml").write_text(WORKFLOW.format(src=src))
    values = {
        "etc": str(etc),
        "ntp_server": "ntp1.example.com",
        "peers": "a,b",
        "motd": "'$(reboot)'; x",
        **more,
    }
    return sysflow("run", str(tmp / "wf.yaml"), *connect(sshd, tmp, HOSTS, **values), "--approve-all")


def test_each_host_gets_its_own_rendering_once(sshd: SSHD, tmp_path: Path, etc: Path) -> None:
    first = _run(sshd, tmp_path, etc)
    assert first.returncode == 0, first.stdout + first.stderr
    for host in HOSTS:
        conf = etc / f"{host}.conf"
        assert conf.read_text() == (
            f"# {host}: managed by sysflow\nserver ntp1.example.com iburst\npeer a\npeer b\nmotd = '$(reboot)'; x\n"
        )
        assert conf.stat().st_uid == 0
    assert "sent ntp.conf.j2: " in logs(tmp_path, first, HOSTS[0], "conf")
    second = _run(sshd, tmp_path, etc)
    assert "  modules: nothing changed, 2 ok" in second.stdout, second.stdout
    changed = _run(sshd, tmp_path, etc, ntp_server="ntp2.example.com")
    shown = logs(tmp_path, changed, HOSTS[1], "conf")
    assert "-server ntp1.example.com iburst\n+server ntp2.example.com iburst" in shown


def test_a_missing_variable_or_a_fact_is_refused_before_the_run(
    sshd: SSHD, tmp_path: Path, etc: Path
) -> None:
    missing = _run(sshd, tmp_path, etc, template="server {{ vars.nope }}\n")
    assert missing.returncode == 1
    assert (
        f"task 'conf' on host {HOSTS[0]}: template {tmp_path / 'ntp.conf.j2'}: undefined variable"
        in missing.stdout + missing.stderr
    )
    facts = _run(sshd, tmp_path, etc, template="os {{ facts.os_family }}\n")
    assert facts.returncode == 1
    assert "a file template reads host and vars" in facts.stdout + facts.stderr
    assert list(etc.iterdir()) == []
