"""A tamper-evident, append-only audit log in SQLite.

Each record carries the SHA-256 of the previous record's hash and its own canonical content, so any
edited, removed or reordered record breaks the chain at that point; :meth:`AuditLog.verify` names the
first bad record. Triggers refuse UPDATE and DELETE through SQLite; the chain catches the rest (a
file edited by other means). Commands are redacted before they are written: a secret never reaches
the file.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sysflow.errors import AuditTampered

__all__ = ["GENESIS", "AuditLog", "AuditRecord", "Redactor"]

GENESIS = "0" * 64  # the "previous hash" of the first record
DEFAULT_BATCH = 200  # records per commit; decisions and the end of a run flush at once (see AuditObserver)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    run_id TEXT NOT NULL,
    who TEXT NOT NULL,
    action TEXT NOT NULL,
    host TEXT,
    task TEXT,
    detail TEXT NOT NULL,
    outcome TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_run ON audit(run_id);
CREATE INDEX IF NOT EXISTS audit_host ON audit(host);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""


class Redactor:
    """Replaces every known secret value in a text with ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def add(self, secret: str) -> None:
        if secret and secret not in self._secrets:
            self._secrets = sorted([*self._secrets, secret], key=len, reverse=True)

    def __call__(self, text: str) -> str:
        if not self._secrets or not text:
            return text
        for s in self._secrets:
            text = text.replace(s, "***")
        return text


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """Who did what, where, when, and how it ended."""

    id: int
    at: str
    run_id: str
    who: str
    action: str
    host: str | None
    task: str | None
    detail: str
    outcome: str
    prev_hash: str
    hash: str

    def content(self) -> str:
        """The canonical text the hash covers (everything but the hash itself)."""
        return _canonical(self.fields())

    def fields(self) -> tuple[Any, ...]:
        """Every field but the hash, in declaration order."""
        return (self.id, self.at, self.run_id, self.who, self.action, self.host, self.task, self.detail,
                self.outcome, self.prev_hash)  # fmt: skip

    def expected_hash(self) -> str:
        return hashlib.sha256(self.content().encode()).hexdigest()


class AuditLog:
    """Append records, verify the chain, query and export. Safe to share between threads."""

    def __init__(
        self,
        path: str | Path,
        *,
        who: str | None = None,
        redactor: Redactor | None = None,
        batch: int = DEFAULT_BATCH,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.who = who or _local_user()
        self.redact = redactor or Redactor()
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
        self._last_id: int = int(row[0]) if row else 0
        self._last_hash: str = str(row[1]) if row else GENESIS
        self._batch = max(1, batch)
        self._pending = 0

    def flush(self) -> None:
        """Commit the records appended so far (``append`` commits every ``batch`` records)."""
        with self._lock:
            if self._pending:
                self._db.execute("COMMIT")
                self._pending = 0

    def close(self) -> None:
        self.flush()
        self._db.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def append(
        self,
        run_id: str,
        action: str,
        *,
        at: datetime,
        host: str | None = None,
        task: str | None = None,
        detail: str = "",
        outcome: str = "",
        who: str | None = None,
    ) -> AuditRecord:
        """Append one record (redacted) to the chain and return it."""
        with self._lock:
            fields = (self._last_id + 1, at.isoformat(), run_id, who or self.who, action, host, task,
                      self.redact(detail), self.redact(outcome), self._last_hash)  # fmt: skip
            digest = hashlib.sha256(_canonical(fields).encode()).hexdigest()
            rec = AuditRecord(*fields, digest)
            if not self._pending:
                self._db.execute("BEGIN")
            self._db.execute("INSERT INTO audit VALUES (?,?,?,?,?,?,?,?,?,?,?)", (*fields, digest))
            self._pending += 1
            if self._pending >= self._batch:
                self._db.execute("COMMIT")
                self._pending = 0
            self._last_id, self._last_hash = rec.id, rec.hash
            return rec

    def records(self) -> Iterator[AuditRecord]:
        """Every record in file order (rowid), as stored."""
        self.flush()
        for row in self._db.execute("SELECT * FROM audit ORDER BY rowid"):
            yield AuditRecord(*row)

    def verify(self) -> int | None:
        """The id of the first record that breaks the chain, or None when the log is intact."""
        prev, expected_id = GENESIS, 1
        for rec in self.records():
            if rec.id != expected_id or rec.prev_hash != prev or rec.hash != rec.expected_hash():
                return rec.id
            prev, expected_id = rec.hash, expected_id + 1
        return None

    def check(self) -> None:
        """Raise ``AuditTampered`` naming the first bad record."""
        bad = self.verify()
        if bad is not None:
            raise AuditTampered(f"{self.path}: audit chain broken at record {bad}", bad)

    def query(
        self, *, run: str | None = None, host: str | None = None, since: datetime | None = None
    ) -> list[AuditRecord]:
        """Records of a run, a host, and/or since a time, in order."""
        where: list[str] = []
        args: list[Any] = []
        for column, value in (("run_id", run), ("host", host)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if since is not None:
            where.append("at >= ?")
            args.append(since.isoformat())
        self.flush()
        sql = "SELECT * FROM audit" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id"
        return [AuditRecord(*row) for row in self._db.execute(sql, args)]

    def export_jsonl(self, out: IO[str], records: Sequence[AuditRecord] | None = None) -> int:
        """Write records as JSON Lines (for a SIEM); returns how many."""
        n = 0
        for rec in records if records is not None else self.records():
            out.write(json.dumps(asdict(rec), sort_keys=True) + "\n")
            n += 1
        return n


_KEYS = ("id", "at", "run_id", "who", "action", "host", "task", "detail", "outcome", "prev_hash")
_SORTED = sorted(range(len(_KEYS)), key=lambda i: _KEYS[i])
_ENCODE = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode


def _canonical(fields: tuple[Any, ...]) -> str:
    """Canonical JSON of a record without its hash: keys sorted, no spaces (the hashed text)."""
    return "{" + ",".join(f'"{_KEYS[i]}":{_ENCODE(fields[i])}' for i in _SORTED) + "}"


def _row(rec: AuditRecord) -> tuple[Any, ...]:
    return (
        rec.id,
        rec.at,
        rec.run_id,
        rec.who,
        rec.action,
        rec.host,
        rec.task,
        rec.detail,
        rec.outcome,
        rec.prev_hash,
        rec.hash,
    )


def _local_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "unknown"
