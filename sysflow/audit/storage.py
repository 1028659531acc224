"""The audit log's SQLite file: its schema, and opening it for writing or strictly for reading.

A file is an audit log only if it is a SQLite database with the ``audit`` and ``audit_meta`` tables
and this sysflow's format and version in its metadata; anything else (a directory, a text file,
another database) is refused in one line as :class:`NotAnAuditLog`, before anything writes to it.
Triggers refuse UPDATE and DELETE through SQLite; the keyed chain and the signed head catch the rest.
"""

from __future__ import annotations

import sqlite3
import stat
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from sysflow.audit.head import head_path
from sysflow.errors import SysflowError

__all__ = [
    "FORMAT",
    "VERSION",
    "NotAnAuditLog",
    "State",
    "connect",
    "connect_read_only",
    "create",
    "probe",
    "read_meta",
    "remove_log",
    "use_wal",
]

FORMAT = "sysflow-audit"
VERSION = "2"  # 1 was the unkeyed SHA-256 chain without a head

_SCHEMA = """
CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    run_id TEXT NOT NULL,
    who TEXT NOT NULL,
    action TEXT NOT NULL,
    host TEXT,
    task TEXT,
    detail TEXT NOT NULL,
    outcome TEXT NOT NULL,
    prev_mac TEXT NOT NULL,
    mac TEXT NOT NULL
);
CREATE INDEX audit_run ON audit(run_id);
CREATE INDEX audit_host ON audit(host);
CREATE TABLE audit_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_meta_no_update BEFORE UPDATE ON audit_meta
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_meta_no_delete BEFORE DELETE ON audit_meta
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""
_SQLITE_MAGIC = b"SQLite format 3\x00"

State = Literal["missing", "empty", "sqlite"]


class NotAnAuditLog(SysflowError, ValueError):
    """The path is not a (keyed) sysflow audit log: a directory, a text file, another database."""


def probe(path: Path) -> State:
    """'missing', 'empty' or 'sqlite'; anything else is not an audit log (one-line error)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return "missing"
    if stat.S_ISDIR(st.st_mode):
        raise NotAnAuditLog(f"{path} is a directory, not an audit log")
    if not stat.S_ISREG(st.st_mode):
        raise NotAnAuditLog(f"{path} is not a regular file, not an audit log")
    if st.st_size == 0:
        return "empty"
    with path.open("rb") as fh:
        magic = fh.read(len(_SQLITE_MAGIC))
    if magic != _SQLITE_MAGIC:
        raise NotAnAuditLog(f"{path} is not an audit log (not a SQLite database)")
    return "sqlite"


def connect(path: Path) -> sqlite3.Connection:
    """A writer's connection (autocommit: the log manages its own transactions); writes nothing yet."""
    return sqlite3.connect(path, check_same_thread=False, isolation_level=None)


def use_wal(db: sqlite3.Connection) -> None:
    """Write-ahead logging, synced at checkpoints: durable against a crash of the process."""
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")


def connect_read_only(path: Path) -> tuple[sqlite3.Connection, bool]:
    """A connection that cannot write, and whether it reads the file as immutable.

    With no writer about (no ``-wal`` file), the file is read as it is, creating no ``-wal``/``-shm``
    beside it; a writer that starts meanwhile is then not seen, so a verification that fails on an
    immutable connection should read again (see :meth:`AuditLog.verify`).
    """
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    immutable = not Path(f"{path}-wal").exists()
    if immutable:
        uri += "&immutable=1"
    return sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None), immutable


def create(path: Path, key_id: str) -> tuple[sqlite3.Connection, dict[str, str]]:
    """A new, empty log at ``path`` for the key of ``key_id``: its connection and its metadata."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = connect(path)
    use_wal(db)
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "log_id": uuid.uuid4().hex,
        "key_id": key_id,
        "created": datetime.now(UTC).isoformat(),
    }
    db.execute("BEGIN")
    for statement in _SCHEMA.split(";\n"):
        if statement.strip():
            db.execute(statement)
    db.executemany("INSERT INTO audit_meta VALUES (?, ?)", sorted(meta.items()))
    db.execute("COMMIT")
    return db, meta


def read_meta(db: sqlite3.Connection, path: Path) -> dict[str, str]:
    """The log's metadata, after checking the file is a keyed sysflow audit log (reads only)."""
    try:
        tables = {str(r[0]) for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "audit" not in tables:
            held = f"it holds {', '.join(sorted(tables)[:5])}" if tables else "an empty database"
            raise NotAnAuditLog(f"{path} is not an audit log ({held})")
        if "audit_meta" not in tables:
            raise NotAnAuditLog(
                f"{path} is not a keyed audit log (no audit_meta: written by an older sysflow, or damaged)"
            )
        meta = {str(k): str(v) for k, v in db.execute("SELECT name, value FROM audit_meta")}
    except sqlite3.DatabaseError as exc:
        raise NotAnAuditLog(f"{path} is not an audit log ({exc})") from None
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise NotAnAuditLog(
            f"{path} is not an audit log this sysflow reads (format {meta.get('format')!r} "
            f"version {meta.get('version')!r})"
        )
    if not meta.get("log_id") or not meta.get("key_id"):
        raise NotAnAuditLog(f"{path} is not an audit log (its metadata has no log id or key id)")
    return meta


def remove_log(path: str | Path) -> None:
    """Delete an audit log on purpose: the database, SQLite's side files and the signed head."""
    db = Path(path)
    for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm"), head_path(db)):
        p.unlink(missing_ok=True)
