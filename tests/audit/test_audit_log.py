"""The audit log is append-only and hash-chained: every kind of tampering is detected and named."""

from __future__ import annotations

import io
import json
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sysflow.audit.log import AuditLog, Redactor
from sysflow.audit.observer import AuditObserver
from sysflow.engine.events import Event, EventBus, EventKind
from sysflow.errors import AuditTampered

T0 = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)
SECRET = "hunter2-s3cret"


def _fill(path: Path, n: int = 5) -> None:
    with AuditLog(path, who="alice", redactor=Redactor([SECRET])) as log:
        for i in range(n):
            log.append(
                "run-1",
                "op_finished",
                at=T0 + timedelta(minutes=i),
                host=f"web{i:02d}",
                task="upgrade",
                detail=f"echo {SECRET} | sudo -S apt-get -y upgrade",
                outcome="succeeded",
            )


def _raw(path: Path) -> sqlite3.Connection:
    """What an attacker with file access does: drop the guard triggers and edit."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("DROP TRIGGER audit_no_delete")
    return db


def test_an_untouched_log_verifies_and_never_holds_the_secret(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    _fill(path)
    with AuditLog(path) as log:
        assert log.verify() is None
        log.check()
        records = list(log.records())
    assert len(records) == 5
    assert all(SECRET not in r.detail and "***" in r.detail for r in records)
    assert SECRET.encode() not in path.read_bytes()


def test_updates_and_deletes_are_refused_by_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    _fill(path)
    db = sqlite3.connect(path, isolation_level=None)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE audit SET outcome='failed' WHERE id=2")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM audit WHERE id=2")
    db.close()


def test_an_edited_record_is_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    _fill(path)
    db = _raw(path)
    db.execute("UPDATE audit SET outcome='failed' WHERE id=3")
    db.close()
    with AuditLog(path) as log:
        assert log.verify() == 3
        with pytest.raises(AuditTampered, match="record 3") as info:
            log.check()
    assert info.value.record_id == 3


def test_a_removed_record_is_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    _fill(path)
    db = _raw(path)
    db.execute("DELETE FROM audit WHERE id=2")
    db.close()
    with AuditLog(path) as log:
        assert log.verify() == 3  # the record after the gap no longer chains


def test_reordered_records_are_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    _fill(path)
    db = _raw(path)
    rows = db.execute("SELECT * FROM audit ORDER BY id").fetchall()
    db.execute("DELETE FROM audit")
    swapped = [
        rows[0],
        (2, *rows[2][1:]),
        (3, *rows[1][1:]),
        rows[3],
        rows[4],
    ]  # records 2 and 3 trade places
    db.executemany("INSERT INTO audit VALUES (?,?,?,?,?,?,?,?,?,?,?)", swapped)
    db.close()
    with AuditLog(path) as log:
        assert log.verify() == 2


def test_a_rehashed_edit_still_breaks_the_chain_after_it(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    _fill(path)
    with AuditLog(path) as log:
        rec = next(r for r in log.records() if r.id == 2)
    forged = replace(rec, outcome="failed")
    db = _raw(path)
    db.execute("UPDATE audit SET outcome='failed', hash=? WHERE id=2", (forged.expected_hash(),))
    db.close()
    with AuditLog(path) as log:
        assert log.verify() == 3


def test_query_and_jsonl_export(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    _fill(path)
    with AuditLog(path) as log:
        log.append("run-2", "approval_given", at=T0 + timedelta(hours=1), detail="wave 2")
        assert [r.host for r in log.query(host="web01")] == ["web01"]
        assert len(log.query(run="run-1")) == 5
        assert [r.run_id for r in log.query(since=T0 + timedelta(minutes=30))] == ["run-2"]
        buf = io.StringIO()
        assert log.export_jsonl(buf) == 6
    first = json.loads(buf.getvalue().splitlines()[0])
    assert first["who"] == "alice"
    assert first["prev_hash"] == "0" * 64


def test_the_observer_records_operations_and_decisions(tmp_path: Path) -> None:
    bus = EventBus()
    with AuditLog(tmp_path / "audit.db") as log:
        bus.subscribe(AuditObserver(log, who="ops-bot"))
        bus.emit(Event(EventKind.OP_FINISHED, "r", T0, host="h1", task="t", data={"state": "failed"}))
        bus.emit(Event(EventKind.GATE_EVALUATED, "r", T0, wave=0, data={"passed": False}))
        bus.emit(Event(EventKind.OP_PROGRESS, "r", T0, host="h1"))  # not audited
        bus.emit(Event(EventKind.OP_STARTED, "r", T0, host="h1", data={"exit_status": 0}))
        recs = list(log.records())
    assert [(r.action, r.outcome, r.who) for r in recs] == [
        ("op_finished", "failed", "ops-bot"),
        ("gate_evaluated", "false", "ops-bot"),
        ("op_started", "exit 0", "ops-bot"),
    ]
