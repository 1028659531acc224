"""``sysflow service token ...`` through the CLI, and a worker's job run in this process (what the
service's worker processes run): events as JSON lines, the run recorded and owned in the store."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

from typer.testing import CliRunner

from sysflow.cli import app
from sysflow.service.tokens import TokenStore
from sysflow.service.worker import PIPE_BYTES, WorkerJob, run_job, widen_pipe
from tests.service.conftest import SUNDAY


def test_tokens_are_created_listed_and_revoked_and_only_their_hash_is_kept(tmp_path: Path) -> None:
    runner = CliRunner()
    store = ["--store", str(tmp_path / "state.db")]
    made = runner.invoke(app, ["service", "token", "create", "--name", "carol", "--role", "approver", *store])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[0]
    assert token.startswith("sft_")
    listed = runner.invoke(app, ["service", "token", "list", *store])
    token_id = token.split("_")[1]
    assert f"{token_id}  carol  approver" in listed.stdout
    assert token.rsplit("_", 1)[1] not in listed.stdout
    tokens = TokenStore(tmp_path / "service" / "service.db")
    assert tokens.identify(token) is not None
    assert runner.invoke(app, ["service", "token", "revoke", token_id, *store]).exit_code == 0
    assert tokens.identify(token) is None
    tokens.close()
    assert runner.invoke(app, ["service", "token", "revoke", "nope", *store]).exit_code == 1
    bad = runner.invoke(app, ["service", "token", "create", "--name", "x", "--role", "root", *store])
    assert bad.exit_code == 1 and "one of viewer, operator, approver, admin" in bad.output
    for path in (tmp_path / "service").rglob("*"):
        assert token.rsplit("_", 1)[1].encode() not in path.read_bytes()


def test_serve_refuses_half_of_tls(tmp_path: Path) -> None:
    found = CliRunner().invoke(app, ["serve", "--store", str(tmp_path / "s.db"), "--cert", "c.pem"])
    assert found.exit_code == 1 and "TLS needs both" in found.output


def test_a_worker_runs_its_job_and_writes_each_event_as_a_json_line(tmp_path: Path) -> None:
    inventory, workflow = tmp_path / "inv.ini", tmp_path / "wf.yaml"
    inventory.write_text("[web]\nweb31\nweb32\n")
    workflow.write_text("name: quick\ntasks:\n  - id: patch\n    run: apt-get -y upgrade\n")
    job = WorkerJob(run_id="worker-test", workflow=workflow, inventory=inventory,
                    store=tmp_path / "state.db", simulate=True, start=SUNDAY)  # type: ignore[arg-type]  # fmt: skip
    out = io.StringIO()
    code = run_job(job, out)
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert code == 0
    assert events[0]["kind"] == "run_started" and events[-1]["kind"] == "run_finished"
    assert {e["run_id"] for e in events} == {"worker-test"}
    assert sum(e["kind"] == "op_finished" for e in events) == 2


def test_a_workers_event_pipe_holds_a_burst_of_thousands_of_events(tmp_path: Path) -> None:
    """A burst the service has not relayed yet waits in the pipe, not in the engine: 1 MiB of it."""
    read, write = os.pipe()
    with os.fdopen(write, "w") as out, os.fdopen(read) as _:
        assert widen_pipe(out) == PIPE_BYTES
    with (tmp_path / "events.jsonl").open("w") as not_a_pipe:
        assert widen_pipe(not_a_pipe) == 0
