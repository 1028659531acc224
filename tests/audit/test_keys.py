"""The audit key: where it lives, how it is created, and that it never leaves its file."""

from __future__ import annotations

import os
import stat
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sysflow.audit import keys
from sysflow.audit.keys import AuditKeyError, default_key_file, key_id, load_key, load_or_create_key
from sysflow.audit.log import AuditLog

T0 = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)


def test_the_first_log_creates_the_key_readable_only_by_its_owner(
    tmp_path: Path, audit_key_file: Path
) -> None:
    assert not audit_key_file.exists()
    with AuditLog(tmp_path / "audit.db") as log:
        log.append("r", "run_started", at=T0)
    assert stat.S_IMODE(audit_key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(audit_key_file.parent.stat().st_mode) == 0o700
    assert len(load_key(audit_key_file)) == 32
    assert [p.name for p in audit_key_file.parent.iterdir()] == ["audit.key"]  # no temporary left


def test_the_key_is_in_none_of_the_files_the_log_writes(tmp_path: Path, audit_key_file: Path) -> None:
    path = tmp_path / "audit.db"
    with AuditLog(path) as log:
        for i in range(50):
            log.append("r", "op_finished", at=T0, host=f"h{i}")
        written = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())  # db, -wal, head
    key = load_key(audit_key_file)
    written += path.read_bytes() + (tmp_path / "audit.db.head").read_bytes()
    for form in (key, key.hex().encode(), key.hex().upper().encode()):
        assert form not in written


def test_default_locations(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(keys.KEY_ENV)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert default_key_file() == Path("/var/lib/sysflow/audit.key")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert default_key_file() == tmp_path / "state" / "sysflow" / "audit.key"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_key_file() == tmp_path / "home" / ".local" / "state" / "sysflow" / "audit.key"
    monkeypatch.setenv(keys.KEY_ENV, str(tmp_path / "env.key"))
    assert default_key_file() == tmp_path / "env.key"  # the environment wins, for root too


def test_an_explicit_key_or_key_file_wins(tmp_path: Path, audit_key_file: Path) -> None:
    key = os.urandom(32)
    with AuditLog(tmp_path / "a.db", key=key) as log:
        log.append("r", "run_started", at=T0)
    assert not audit_key_file.exists()  # the given key was used, no file created
    with AuditLog(tmp_path / "a.db", key=key, read_only=True) as log:
        assert log.verify() is None
    with AuditLog(tmp_path / "a.db", key=os.urandom(32), read_only=True) as log:
        breach = log.verify()
    assert breach is not None and "written with another audit key" in breach.reason
    assert key.hex() not in breach.reason
    own = tmp_path / "own" / "audit.key"
    with AuditLog(tmp_path / "b.db", key_file=own) as log:
        log.append("r", "run_started", at=T0)
    assert own.exists() and not audit_key_file.exists()
    with AuditLog(tmp_path / "b.db", key_file=own, read_only=True) as log:
        assert log.verify() is None
    with pytest.raises(AuditKeyError, match="at least 16 bytes"):
        AuditLog(tmp_path / "c.db", key=b"short")


def test_a_key_readable_by_others_is_refused(tmp_path: Path, audit_key_file: Path) -> None:
    with AuditLog(tmp_path / "audit.db") as log:
        log.append("r", "run_started", at=T0)
    audit_key_file.chmod(0o644)
    with pytest.raises(AuditKeyError, match=r"readable by others \(mode 644\): chmod 600 it"):
        AuditLog(tmp_path / "audit.db")
    with (
        AuditLog(tmp_path / "audit.db", read_only=True) as log,
        pytest.raises(AuditKeyError, match="chmod 600"),
    ):
        log.verify()


def test_a_log_whose_key_is_gone_is_not_continued_with_a_new_key(
    tmp_path: Path, audit_key_file: Path
) -> None:
    with AuditLog(tmp_path / "audit.db") as log:
        log.append("r", "run_started", at=T0)
    audit_key_file.unlink()
    with pytest.raises(AuditKeyError, match="no audit key at"):
        AuditLog(tmp_path / "audit.db")
    assert not audit_key_file.exists()  # not silently replaced by a fresh key


def test_a_writer_refuses_a_log_of_another_key(tmp_path: Path) -> None:
    with AuditLog(tmp_path / "audit.db", key=b"k" * 32) as log:
        log.append("r", "run_started", at=T0)
    with pytest.raises(AuditKeyError, match="written with another audit key"):
        AuditLog(tmp_path / "audit.db", key=b"x" * 32)


def test_a_malformed_key_file_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text("not hex at all\n")
    bad.chmod(0o600)
    with pytest.raises(AuditKeyError, match="is not an audit key"):
        load_key(bad)


def test_concurrent_first_use_agrees_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "audit.key"
    got: list[bytes] = []
    threads = [threading.Thread(target=lambda: got.append(load_or_create_key(path))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 8 and len(set(got)) == 1
    assert [p.name for p in path.parent.iterdir()] == ["audit.key"]


def test_the_key_id_reveals_nothing_of_the_key() -> None:
    key = bytes(range(32))
    assert len(key_id(key)) == 16 and key_id(key) == key_id(bytes(key))
    assert key.hex()[:16] != key_id(key) and key_id(key) != key_id(b"y" * 32)
