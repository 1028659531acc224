"""The service writes its workers' run events to its audit log as the person who started the run,
looked up once per run: a run of thousands of events must not read the audit log per event."""

from __future__ import annotations

from pathlib import Path

from sysflow.service.app import create_app
from sysflow.service.config import ServiceConfig


def test_run_events_are_audited_as_the_starter_who_is_looked_up_once_per_run(tmp_path: Path) -> None:
    ctx = create_app(ServiceConfig(store=tmp_path / "state.db", data=tmp_path / "service")).state.ctx
    asked: list[str] = []

    def starter(run: str) -> str:
        asked.append(run)
        return {"r1": "alice", "r2": "bob"}[run]

    ctx.operations.starter = starter
    for n in range(300):
        for run in ("r1", "r2"):
            ctx.hub.publish({"kind": "op_finished", "run_id": run, "at": "2026-12-06T02:00:00+00:00",
                             "host": f"web{n:03d}", "task": "patch", "wave": 0, "message": "", "data": {}})  # fmt: skip
    ctx.audit.flush()
    assert asked == ["r1", "r2"]
    for run, who in (("r1", "alice"), ("r2", "bob")):
        records = ctx.audit.query(run=run)
        assert len(records) == 300 and all(who in r.who for r in records)
    ctx.audit.close()
