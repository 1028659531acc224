"""The audit log is append-only and keyed-chained: basics, the triggers, query, export, the observer.

The full tamper suite (truncation, replay, swapped files, recomputed chains) is in test_tamper.py."""

from __future__ import annotations

import hashlib
import io
import itertools
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


def _bad(path: Path) -> int | None:
    with AuditLog(path, read_only=True) as log:
        breach = log.verify()
    assert breach is not None
    return breach.record


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
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE audit_meta SET value='x' WHERE name='log_id'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM audit_meta")
    db.close()


def test_an_edited_record_is_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    _fill(path)
    db = _raw(path)
    db.execute("UPDATE audit SET outcome='failed' WHERE id=3")
    db.close()
    assert _bad(path) == 3
    with AuditLog(path) as log, pytest.raises(AuditTampered, match="record 3") as info:
        log.check()
    assert info.value.record_id == 3


def test_a_removed_record_is_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    _fill(path)
    db = _raw(path)
    db.execute("DELETE FROM audit WHERE id=2")
    db.close()
    assert _bad(path) == 3  # the record after the gap no longer chains


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
    assert _bad(path) == 2


def test_a_rehashed_edit_is_named_at_the_edit(tmp_path: Path) -> None:
    """Recomputing the edited record's digest without the key does not help: it is named itself."""
    path = tmp_path / "audit.db"
    _fill(path)
    with AuditLog(path) as log:
        rec = next(r for r in log.records() if r.id == 2)
    forged = replace(rec, outcome="failed")
    digest = hashlib.sha256((forged.prev_mac + forged.content()).encode()).hexdigest()
    db = _raw(path)
    db.execute("UPDATE audit SET outcome='failed', mac=? WHERE id=2", (digest,))
    db.close()
    assert _bad(path) == 2


def test_sessions_append_to_one_chain_and_the_head_follows(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    _fill(path, 3)
    _fill(path, 4)
    head = json.loads((tmp_path / "audit.db.head").read_text())
    with AuditLog(path, read_only=True) as log:
        assert log.verify() is None
        recs = list(log.records())
    assert [r.id for r in recs] == list(range(1, 8))
    assert all(b.prev_mac == a.mac for a, b in itertools.pairwise(recs))
    assert (head["count"], head["mac"], head["log_id"]) == (7, recs[-1].mac, log.log_id)


def test_batches_commit_and_rewrite_the_head(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    head = tmp_path / "audit.db.head"
    with AuditLog(path, batch=3) as log:
        for i in range(7):
            log.append("r", "op_finished", at=T0, host=f"h{i}")
            assert json.loads(head.read_text())["count"] == (i + 1) // 3 * 3  # committed records only
        with AuditLog(path, read_only=True) as reader:
            assert reader.count() == 6 and reader.verify() is None  # what is committed verifies
    assert json.loads(head.read_text())["count"] == 7


def test_a_read_only_log_refuses_appends_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    _fill(path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    with AuditLog(path, read_only=True) as log:
        with pytest.raises(ValueError, match="read-only"):
            log.append("r", "op_finished", at=T0)
        assert log.verify() is None
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


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
    rows = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert rows[0]["who"] == "alice"
    assert all(len(r["mac"]) == 64 and r["prev_mac"] == p["mac"] for p, r in itertools.pairwise(rows))


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


def test_a_verify_that_races_a_writer_does_not_report_truncation(tmp_path: Path) -> None:
    """The reader opened the file with no writer around; a writer then commits and rewrites the head
    before the reader checks: the reader sees the head ahead of the file, and reads again."""
    path = tmp_path / "audit.db"
    _fill(path, 5)
    with AuditLog(path, read_only=True) as reader, AuditLog(path) as writer:
        for i in range(3):
            writer.append("run-2", "op_finished", at=T0, host=f"db{i}")
        writer.flush()
        assert json.loads((tmp_path / "audit.db.head").read_text())["count"] == 8
        assert reader.verify() is None
        assert reader.count() == 8
