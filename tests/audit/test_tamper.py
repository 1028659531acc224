"""The user's scenario: somebody who can write the audit database, but does not hold the audit key,
tries to hide what happened. Every manipulation is detected and named (the first bad record, or the
truncation), by the library and by ``sysflow audit verify`` (exit 1, one line).

The log under attack has 8 records, written in two sessions (5, then 3); a copy of the database was
taken between them; a second log, written with the same key, sits elsewhere.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sysflow.audit.head import head_path
from sysflow.audit.log import AuditLog, AuditRecord
from sysflow.cli import app
from sysflow.errors import AuditTampered

T0 = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)
N = 8
COLUMNS = "id, at, run_id, who, action, host, task, detail, outcome, prev_mac, mac"
runner = CliRunner()


def fill(path: Path, n: int, *, start: int = 0, run: str = "run-1") -> None:
    with AuditLog(path, who="alice") as log:
        for i in range(start, start + n):
            log.append(
                run,
                "op_finished",
                at=T0 + timedelta(minutes=i),
                host=f"web{i:02d}",
                task="upgrade",
                detail="apt-get -y upgrade",
                outcome="succeeded",
            )


@dataclass
class Scene:
    log: Path  # the log under attack: 8 records
    old_copy: Path  # a copy of its database taken after record 5
    other: Path  # another log's database (same key, 8 records)


@pytest.fixture
def scene(tmp_path: Path) -> Scene:
    log = tmp_path / "audit.db"
    fill(log, 5)
    old_copy = tmp_path / "copies" / "audit-after-5.db"
    old_copy.parent.mkdir()
    shutil.copy2(log, old_copy)
    fill(log, 3, start=5)
    other = tmp_path / "other" / "audit.db"
    fill(other, N, run="run-9")
    return Scene(log, old_copy, other)


# -- what an attacker does ------------------------------------------------------------------------


def attacker(path: Path) -> sqlite3.Connection:
    """Open the database as an attacker with file access would: drop the append-only triggers."""
    db = sqlite3.connect(path, isolation_level=None)
    for trigger in ("audit_no_update", "audit_no_delete", "audit_meta_no_update", "audit_meta_no_delete"):
        db.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    return db


def rows(db: sqlite3.Connection) -> list[list[Any]]:
    return [list(r) for r in db.execute(f"SELECT {COLUMNS} FROM audit ORDER BY id")]


def rewrite(db: sqlite3.Connection, new_rows: list[list[Any]]) -> None:
    db.execute("DELETE FROM audit")
    db.executemany("INSERT INTO audit VALUES (?,?,?,?,?,?,?,?,?,?,?)", new_rows)


def sha256_mac(prev: str, content: str) -> str:
    return hashlib.sha256((prev + content).encode()).hexdigest()


WRONG_KEY = b"the attacker's own key, 32 bytes"


def wrong_key_mac(prev: str, content: str) -> str:
    return hmac.new(WRONG_KEY, (prev + content).encode(), hashlib.sha256).hexdigest()


def rechain(all_rows: list[list[Any]], mac: Callable[[str, str], str], *, start: int = 0) -> list[list[Any]]:
    """Recompute prev_mac/mac of every record from ``start`` on (index), as an attacker would, keeping
    the stored prev_mac of the first one (they can read it from the file)."""
    prev = all_rows[start][9]
    for row in all_rows[start:]:
        row[9] = prev
        row[10] = mac(prev, AuditRecord(*row).content())
        prev = row[10]
    return all_rows


# -- the manipulations ----------------------------------------------------------------------------


def edit_a_field(s: Scene) -> None:
    attacker(s.log).execute("UPDATE audit SET outcome = 'failed' WHERE id = 3")


def edit_record_5_and_rehash_the_rest_with_sha256(s: Scene) -> None:
    db = attacker(s.log)
    r = rows(db)
    r[4][8] = "failed"
    rewrite(db, rechain(r, sha256_mac, start=4))


def delete_the_first_record(s: Scene) -> None:
    attacker(s.log).execute("DELETE FROM audit WHERE id = 1")


def delete_a_middle_record(s: Scene) -> None:
    attacker(s.log).execute("DELETE FROM audit WHERE id = 4")


def delete_the_last_record(s: Scene) -> None:
    attacker(s.log).execute("DELETE FROM audit WHERE id = 8")


def truncate_the_last_3(s: Scene) -> None:
    attacker(s.log).execute("DELETE FROM audit WHERE id > 5")


def delete_every_record(s: Scene) -> None:
    attacker(s.log).execute("DELETE FROM audit")


def swap_two_records(s: Scene) -> None:
    db = attacker(s.log)
    r = rows(db)
    r[1][1:], r[2][1:] = r[2][1:], r[1][1:]  # records 2 and 3 trade places, ids kept
    rewrite(db, r)


def move_a_record_to_the_end(s: Scene) -> None:
    attacker(s.log).execute("UPDATE audit SET id = 9 WHERE id = 2")


def rehash_the_whole_chain_with_sha256(s: Scene) -> None:
    db = attacker(s.log)
    r = rows(db)
    r[2][8] = "failed"
    rewrite(db, rechain(r, sha256_mac))


def rehash_the_whole_chain_with_a_wrong_key(s: Scene) -> None:
    db = attacker(s.log)
    r = rows(db)
    r[2][8] = "failed"
    rewrite(db, rechain(r, wrong_key_mac))


def rehash_with_a_wrong_key_forge_key_id_and_head(s: Scene) -> None:
    """Everything an attacker with their own key can make consistent: chain, key id, head."""
    from sysflow.audit.head import Head, write_head
    from sysflow.audit.keys import key_id

    db = attacker(s.log)
    r = rows(db)
    r[2][8] = "failed"
    rewrite(db, rechain(r, wrong_key_mac))
    db.execute("UPDATE audit_meta SET value = ? WHERE name = 'key_id'", (key_id(WRONG_KEY),))
    log_id = db.execute("SELECT value FROM audit_meta WHERE name = 'log_id'").fetchone()[0]
    write_head(head_path(s.log), Head(log_id, N, r[-1][10]), WRONG_KEY)


def append_a_forged_record(s: Scene) -> None:
    db = attacker(s.log)
    last = rows(db)[-1]
    forged = [9, last[1], "run-1", "alice", "approval_given", None, None, "wave 2 approved", "", last[10], ""]
    forged[10] = sha256_mac(last[10], AuditRecord(*forged).content())
    db.execute("INSERT INTO audit VALUES (?,?,?,?,?,?,?,?,?,?,?)", forged)


def swap_in_another_logs_database(s: Scene) -> None:
    shutil.copy2(s.other, s.log)  # the head stays: it is this log's


def swap_in_another_logs_database_relabelled(s: Scene) -> None:
    shutil.copy2(s.other, s.log)
    db = attacker(s.log)
    head = json.loads(head_path(s.log).read_text())
    db.execute("UPDATE audit_meta SET value = ? WHERE name = 'log_id'", (head["log_id"],))


def put_back_an_older_copy(s: Scene) -> None:
    shutil.copy2(s.old_copy, s.log)


def delete_the_head(s: Scene) -> None:
    head_path(s.log).unlink()


def truncate_and_edit_the_head_to_match(s: Scene) -> None:
    db = attacker(s.log)
    mac5 = db.execute("SELECT mac FROM audit WHERE id = 5").fetchone()[0]
    db.execute("DELETE FROM audit WHERE id > 5")
    head = json.loads(head_path(s.log).read_text())
    head.update(count=5, mac=mac5)  # the signature cannot be recomputed without the key
    head_path(s.log).write_text(json.dumps(head))


MANIPULATIONS = [
    (edit_a_field, 3, "record 3: its MAC does not match its content"),
    (edit_record_5_and_rehash_the_rest_with_sha256, 5, "record 5: its MAC does not match its content"),
    (delete_the_first_record, 2, "record 2: record 1 was expected here"),
    (delete_a_middle_record, 5, "record 5: record 4 was expected here"),
    (delete_the_last_record, 8, "truncated: head says 8 records, database holds 7"),
    (truncate_the_last_3, 6, "truncated: head says 8 records, database holds 5"),
    (delete_every_record, 1, "truncated: head says 8 records, database holds 0"),
    (swap_two_records, 2, "record 2: does not follow record 1"),
    (move_a_record_to_the_end, 3, "record 3: record 2 was expected here"),
    (rehash_the_whole_chain_with_sha256, 1, "record 1: its MAC does not match its content"),
    (rehash_the_whole_chain_with_a_wrong_key, 1, "record 1: its MAC does not match its content"),
    (rehash_with_a_wrong_key_forge_key_id_and_head, None, "written with another audit key"),
    (append_a_forged_record, 9, "record 9: its MAC does not match its content"),
    (swap_in_another_logs_database, None, "belongs to another audit log"),
    (swap_in_another_logs_database_relabelled, 1, "record 1: does not follow the start of this log"),
    (put_back_an_older_copy, 6, "truncated: head says 8 records, database holds 5"),
    (delete_the_head, None, "audit.db.head is missing (deleted?)"),
    (truncate_and_edit_the_head_to_match, None, "is not signed with this key (edited or forged)"),
]


def test_the_untouched_log_verifies(scene: Scene) -> None:
    with AuditLog(scene.log, read_only=True) as log:
        assert log.verify() is None
        assert log.count() == N
    result = runner.invoke(app, ["audit", "verify", "--db", str(scene.log)])
    assert (result.exit_code, result.output) == (0, f"{scene.log}: intact, {N} records\n")


@pytest.mark.parametrize(
    ("manipulate", "record", "reason"), MANIPULATIONS, ids=[m[0].__name__ for m in MANIPULATIONS]
)
def test_every_manipulation_is_detected_and_named(
    scene: Scene, manipulate: Callable[[Scene], None], record: int | None, reason: str
) -> None:
    manipulate(scene)
    with AuditLog(scene.log, read_only=True) as log:
        breach = log.verify()
        assert breach is not None, f"{manipulate.__name__} went unnoticed"
        assert reason in breach.reason
        assert breach.record == record
        with pytest.raises(AuditTampered) as info:
            log.check()
    assert info.value.record_id == record
    result = runner.invoke(app, ["audit", "verify", "--db", str(scene.log)])
    assert result.exit_code == 1
    assert result.output == f"{scene.log}: TAMPERED: {breach.reason}\n"


def test_at_least_ten_kinds_of_manipulation_are_covered() -> None:
    assert len(MANIPULATIONS) >= 10


@pytest.mark.parametrize(
    "manipulate", [truncate_the_last_3, delete_every_record, put_back_an_older_copy, delete_the_head]
)
def test_a_writer_refuses_to_bury_a_manipulation_under_new_records(
    scene: Scene, manipulate: Callable[[Scene], None]
) -> None:
    manipulate(scene)
    with pytest.raises(AuditTampered):
        AuditLog(scene.log)
    with AuditLog(scene.log, read_only=True) as log:
        assert log.verify() is not None  # still reported, nothing was appended


def test_a_removed_database_is_not_silently_replaced_by_a_new_log(scene: Scene) -> None:
    scene.log.unlink()
    with pytest.raises(AuditTampered, match=r"signed head .* exists: the log was removed"):
        AuditLog(scene.log)
    assert not scene.log.exists()
    result = runner.invoke(app, ["audit", "verify", "--db", str(scene.log)])
    assert result.exit_code == 3
    assert "no audit log at" in result.output and "was it removed?" in result.output


def test_records_past_the_head_after_a_crash_verify_and_the_next_writer_catches_up(scene: Scene) -> None:
    """A crash between a commit and the head rewrite leaves the head one batch behind: the records
    after it chain under the key, so the log is intact; the next writer rewrites the head."""
    head = head_path(scene.log)
    stale = head.read_text()
    fill(scene.log, 2, start=N)
    head.write_text(stale)  # as if the process died before writing the newer head
    with AuditLog(scene.log, read_only=True) as log:
        assert log.verify() is None and log.count() == N + 2
    with AuditLog(scene.log) as log:
        assert json.loads(head.read_text())["count"] == N + 2
        log.append("run-2", "run_started", at=T0)
    with AuditLog(scene.log, read_only=True) as log:
        assert log.verify() is None and log.count() == N + 3
