"""``sysflow audit verify | query | export`` and their exit codes."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sysflow.audit.log import AuditLog
from sysflow.cli import app

T0 = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)
runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "audit.db"
    with AuditLog(path, who="alice") as log:
        for i, (run, host) in enumerate([("r1", "web01"), ("r1", "web02"), ("r2", "web01"), ("r2", None)]):
            log.append(
                run, "op_finished", at=T0 + timedelta(minutes=i), host=host, task="t", outcome="exit 0"
            )
    return path


def _tamper(path: Path, sql: str) -> None:
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("DROP TRIGGER audit_no_update")
    con.execute("DROP TRIGGER audit_no_delete")
    con.execute(sql)
    con.close()


def test_verify_intact(db: Path) -> None:
    result = runner.invoke(app, ["audit", "verify", "--db", str(db)])
    assert result.exit_code == 0
    assert result.output.strip() == f"{db}: intact, 4 records"


@pytest.mark.parametrize(
    ("sql", "bad"),
    [
        ("UPDATE audit SET outcome='exit 1' WHERE id=2", 2),  # edited
        ("DELETE FROM audit WHERE id=3", 4),  # removed: the next record no longer follows
        ("UPDATE audit SET id=id+10 WHERE id IN (2, 3)", 4),  # reordered ids
    ],
)
def test_verify_names_the_first_bad_record(db: Path, sql: str, bad: int) -> None:
    _tamper(db, sql)
    result = runner.invoke(app, ["audit", "verify", "--db", str(db)])
    assert result.exit_code == 1
    assert f"TAMPERED: chain broken at record {bad}" in result.output


def test_verify_missing_file_is_not_found(tmp_path: Path) -> None:
    result = runner.invoke(app, ["audit", "verify", "--db", str(tmp_path / "nope.db")])
    assert result.exit_code == 3
    assert result.output.strip() == f"error: no audit log at {tmp_path / 'nope.db'}"
    assert not (tmp_path / "nope.db").exists()


def test_query_filters(db: Path) -> None:
    result = runner.invoke(app, ["audit", "query", "--db", str(db), "--run", "r1"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert len(lines) == 2 and all(" r1 " in line for line in lines) and "alice" in lines[0]
    assert "web01 t -> exit 0" in lines[0]
    by_host = runner.invoke(app, ["audit", "query", "--db", str(db), "--host", "web01", "--json"])
    rows = [json.loads(line) for line in by_host.output.splitlines()]
    assert [(r["run_id"], r["id"]) for r in rows] == [("r1", 1), ("r2", 3)]
    since = runner.invoke(app, ["audit", "query", "--db", str(db), "--since", "2026-11-29T01:02"])
    assert [line.split()[0] for line in since.output.splitlines()] == ["3", "4"]
    assert " - " in since.output.splitlines()[1]  # a record without a host


def test_query_bad_since_is_invalid(db: Path) -> None:
    result = runner.invoke(app, ["audit", "query", "--db", str(db), "--since", "yesterday"])
    assert result.exit_code == 1
    assert result.output.strip() == "error: --since: not an ISO 8601 time: 'yesterday'"


def test_export_to_file_and_stdout(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "audit.jsonl"
    result = runner.invoke(app, ["audit", "export", "--db", str(db), "-o", str(out)])
    assert result.exit_code == 0 and "wrote 4 records" in result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [1, 2, 3, 4] and rows[1]["prev_hash"] == rows[0]["hash"]
    stdout = runner.invoke(app, ["audit", "export", "--db", str(db), "--host", "web02"])
    assert stdout.exit_code == 0
    assert [json.loads(line)["host"] for line in stdout.output.splitlines()] == ["web02"]


def test_audit_help_has_examples() -> None:
    for command in ("verify", "query", "export"):
        result = runner.invoke(app, ["audit", command, "--help"])
        assert result.exit_code == 0 and "Examples" in result.output and "Exit codes" in result.output
    assert runner.invoke(app, ["audit", "nope"]).exit_code == 2
