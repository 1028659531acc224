"""``script`` and ``http`` over the real sshd, as a sysadmin runs them: the non-root login sends the
script over SFTP and sudo runs it (changed, then ok through ``creates`` with nothing sent, its output
in ``sysflow logs``, a failing script named with its exit status); the hosts ask a real HTTP server on
127.0.0.1 (ok, a failure with the status and the body, a flaky endpoint waited for with ``until``,
a POST from the controller); check mode says what would change and changes nothing."""

from __future__ import annotations

import glob
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_modules_sshd import connect, logs, run_workflow, sysflow
from tests.fixtures.http_server import RecordingHandler, serve
from tests.fixtures.sshd import SSHD

pytestmark = pytest.mark.ssh

HOSTS = ["h0101", "h0102"]

SCRIPT = """\
#!/bin/sh
set -e
printf '%s %s %s\\n' "$STAMP" "$2" "$(id -u)" > "$1"
echo "initialised $1 in $(pwd)"
"""

WORKFLOW = """\
name: setup
become: true
tasks:
  - id: init
    script:
      src: {src}
      args: ["{{{{ vars.etc }}}}/{{{{ host.name }}}}.done", "two words"]
      creates: "{{{{ vars.etc }}}}/{{{{ host.name }}}}.done"
      chdir: "{{{{ vars.etc }}}}"
      env: {{STAMP: v1}}
  - id: health
    depends_on: [init]
    http: {{url: "{{{{ vars.url }}}}/health", json: {{checks.db: up}}, headers: {{X-Host: "{{{{ host.name }}}}"}}}}
"""


class Handler(RecordingHandler):
    def page(self, body: bytes) -> None:
        if self.path == "/health":
            self.send_text(200, json.dumps({"status": "ok", "checks": {"db": "up"}}))
        elif self.path == "/down":
            self.send_text(503, "database unavailable")
        elif self.path == "/deploys":
            self.send_text(201, json.dumps({"got": json.loads(body or b"null")}))
        else:
            super().page(body)


@pytest.fixture
def server() -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 (a free port), in a thread of this test."""
    with serve(Handler) as url:
        yield url


def _stages() -> set[str]:
    return set(glob.glob("/tmp/.sysflow-stage-*"))


def _run(sshd: SSHD, tmp: Path, workflow: str, etc: Path, url: str):  # type: ignore[no-untyped-def]
    return run_workflow(sshd, tmp, workflow, HOSTS, etc=str(etc), url=url)


def test_script_runs_once_through_sudo_then_creates_skips_it_and_http_checks_each_host(
    sshd: SSHD, tmp_path: Path, etc: Path, server: str
) -> None:
    src = tmp_path / "init.sh"
    src.write_text(SCRIPT)
    wf = WORKFLOW.format(src=src)
    before = _stages()
    first = _run(sshd, tmp_path, wf, etc, server)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "  modules: 2 operations changed on 2 hosts, 2 ok" in first.stdout
    for host in HOSTS:
        done = etc / f"{host}.done"
        assert done.read_text() == "v1 two words 0\n" and done.stat().st_uid == 0  # sudo ran it
    shown = logs(tmp_path, first, HOSTS[0], "init")
    assert f"initialised {etc}/{HOSTS[0]}.done in {etc}" in shown  # the script's own output
    assert _stages() == before  # sent, run, removed
    asked = sorted(h["X-Host"] for m, p, h, _ in Handler.seen if p == "/health")
    assert asked == HOSTS  # each host asked, with its own header
    assert "GET " + server + "/health: 200" in logs(tmp_path, first, HOSTS[1], "health")

    second = _run(sshd, tmp_path, wf, etc, server)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "  modules: nothing changed, 4 ok" in second.stdout
    assert f"skipped: {etc}/{HOSTS[0]}.done exists" in logs(tmp_path, second, HOSTS[0], "init")
    assert _stages() == before


def test_a_failing_script_and_a_failing_request_are_named_with_their_host(
    sshd: SSHD, tmp_path: Path, etc: Path, server: str
) -> None:
    src = tmp_path / "fail.sh"
    src.write_text("#!/bin/sh\necho half way\nexit 3\n")
    wf = f"name: f\nbecome: true\ntasks:\n  - id: bad\n    script: {{src: {src}}}\n"
    failed = _run(sshd, tmp_path, wf, etc, server)
    assert failed.returncode == 1
    for host in HOSTS:  # under the host and the task: the script's exit status
        said = f"    {host} (wave 1, failed): bad: exit status 3\n      stderr | script: fail.sh exited 3\n"
        assert said in failed.stdout, failed.stdout
    wf = "name: f\ntasks:\n  - id: up\n    http: {url: '{{ vars.url }}/down'}\n"
    down = _run(sshd, tmp_path, wf, etc, server)
    assert down.returncode == 1
    said = f"stderr | http: GET {server}/down: status 503, expected 200; body: database unavailable\n"
    assert f"    {HOSTS[1]} (wave 1, failed): up: exit status 1\n      {said}" in down.stdout, down.stdout


def test_a_flaky_endpoint_is_waited_for_and_a_post_goes_from_the_controller(
    sshd: SSHD, tmp_path: Path, etc: Path, server: str
) -> None:
    Handler.flaky = 3  # three 503s, then 200s
    wf = (
        "name: deploy\nbecome: true\ntasks:\n"
        "  - id: ready\n    http: {url: '{{ vars.url }}/flaky'}\n"
        "    retries: 6\n    delay: 0.2s\n    until: result.ok\n"
        "  - id: announce\n    depends_on: [ready]\n"
        "    http: {url: '{{ vars.url }}/deploys', method: POST, status: 201, body: {host: '{{ host.name }}'},"
        " from: controller}\n"
    )
    ran = _run(sshd, tmp_path, wf, etc, server)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "  modules: 2 operations changed on 2 hosts, 2 ok" in ran.stdout
    assert [p for _, p, _, _ in Handler.seen].count("/flaky") == 5  # 3 refused, then one per host
    posted = sorted(json.loads(b)["host"] for _, p, _, b in Handler.seen if p == "/deploys")
    assert posted == HOSTS


def test_check_mode_runs_the_creates_test_and_the_get_and_changes_nothing(
    sshd: SSHD, tmp_path: Path, etc: Path, server: str
) -> None:
    src = tmp_path / "init.sh"
    src.write_text(SCRIPT)
    (tmp_path / "wf.yaml").write_text(WORKFLOW.format(src=src))
    options = connect(sshd, tmp_path, HOSTS, etc=str(etc), url=server)
    checked = sysflow("run", str(tmp_path / "wf.yaml"), *options, "--check", "--diff")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"{HOSTS[0]} | init | would change" in checked.stdout
    assert f"would run init.sh ({etc}/{HOSTS[0]}.done does not exist)" in checked.stdout
    assert f"{HOSTS[1]} | health | ok" in checked.stdout
    assert "2 would change, 2 ok, 0 failed; nothing was changed" in checked.stdout
    assert list(etc.iterdir()) == []
    ran = sysflow("run", str(tmp_path / "wf.yaml"), *options, "--approve-all")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    again = sysflow("run", str(tmp_path / "wf.yaml"), *options, "--check", "--diff")
    assert "0 would change, 4 ok, 0 failed; nothing was changed" in again.stdout, again.stdout
