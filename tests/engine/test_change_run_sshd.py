"""``sysflow run`` of a workflow with ``change:`` over the real sshd: the engine checks the ticket
(a ServiceNow-shaped Table API on 127.0.0.1) before the wave and, when the run ends, writes the
outcome and the report's link to the ticket's work notes; only a successful run moves its state."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.cli.test_modules_sshd import connect, sysflow
from tests.engine.test_change_gate import TICKET, TOKEN, ServiceNow
from tests.fixtures.http_server import serve
from tests.fixtures.sshd import SSHD

pytestmark = pytest.mark.ssh

HOSTS = ["h0095", "h0096"]

WORKFLOW = """\
name: chg
tasks:
  - id: patch
    run: '{command}'
change:
  url: {url}
  ticket: {ticket}
  report_url: "https://sysflow.example/runs/{{run_id}}/report"
"""


@pytest.fixture
def snow(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The Table API with an approved ticket whose window is around the real now, covering HOSTS."""
    monkeypatch.setenv("SYSFLOW_CHANGE_TOKEN", TOKEN)
    now = datetime.now(UTC)
    ServiceNow.window = tuple(  # type: ignore[assignment]
        (now + timedelta(hours=h)).strftime("%Y-%m-%d %H:%M:%S") for h in (-1, 1)
    )
    ServiceNow.states, ServiceNow.items = [("scheduled", "approved")], list(HOSTS)
    ServiceNow.reads, ServiceNow.patched = 0, []
    with serve(ServiceNow) as url:
        yield url


def _run(sshd: SSHD, tmp: Path, url: str, command: str) -> tuple[int, str, str]:
    (tmp / "wf.yaml").write_text(WORKFLOW.format(command=command, url=url, ticket=TICKET))
    done = sysflow("run", str(tmp / "wf.yaml"), *connect(sshd, tmp, HOSTS), "--approve-all")
    found = re.search(r"chg-\d{8}T\d{6}-[0-9a-f]+", done.stdout + done.stderr)
    assert found is not None, done.stdout + done.stderr
    return done.returncode, found[0], done.stdout + done.stderr


def test_sysflow_run_closes_the_ticket_after_success(sshd: SSHD, tmp_path: Path, snow: str) -> None:
    code, rid, out = _run(sshd, tmp_path, snow, "true")
    assert code == 0, out
    assert ServiceNow.patched == [
        {
            "work_notes": f"sysflow run {rid}: completed; report: https://sysflow.example/runs/{rid}/report",
            "state": "review",
        }
    ]


def test_sysflow_run_annotates_the_ticket_after_failure(sshd: SSHD, tmp_path: Path, snow: str) -> None:
    code, rid, out = _run(sshd, tmp_path, snow, "exit 3")
    assert code == 1, out
    assert len(ServiceNow.patched) == 1, ServiceNow.patched
    note = ServiceNow.patched[0]["work_notes"]
    assert note.startswith(f"sysflow run {rid}: "), note
    assert not note.startswith(f"sysflow run {rid}: completed;")
    assert note.endswith(f"; report: https://sysflow.example/runs/{rid}/report")
    assert "state" not in ServiceNow.patched[0]  # a failed run leaves the ticket where it was
