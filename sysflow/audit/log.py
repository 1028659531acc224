"""A tamper-evident, append-only audit log in SQLite: a keyed chain and a signed head outside it.

Each record carries ``mac = HMAC-SHA256(key, prev_mac || canonical record)``; the first record's
``prev_mac`` is derived from the key and the log id (stored in the ``audit_meta`` table), so the chain
is bound to this log. The key lives outside the database (see :mod:`sysflow.audit.keys`): whoever
edits the file cannot recompute a chain that verifies, whether with plain SHA-256 or another key.

After every commit the writer rewrites the signed head ``<db>.head`` (see :mod:`sysflow.audit.head`):
log id, record count and last MAC, signed with the key. Verification checks the database against it,
so what a keyed chain alone cannot show is caught too: records removed at the end or all of them
("truncated: head says N records, database holds M"), an older copy of the database put back, the
database of another log swapped in. :meth:`AuditLog.verify` returns the first :class:`Breach` (the
first bad record, and why) or None.

Triggers refuse UPDATE and DELETE through SQLite; the chain and the head catch the rest. Commands are
redacted before they are written: a secret never reaches the file.

Limits: one writer per log at a time. Somebody who keeps old copies of *both* the database and its
head (and the key is not needed for that) can put both back; keep a copy of the head elsewhere (or
export records to a SIEM) to notice that. After a power loss (not a process crash) the head may name
records SQLite had not yet made durable; verification then reports the log as truncated.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import sqlite3
import stat
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from sysflow.audit.head import Head, HeadError, head_path, read_head, write_head
from sysflow.audit.keys import (
    AuditKeyError,
    check_key,
    default_key_file,
    key_id,
    load_key,
    load_or_create_key,
)
from sysflow.errors import AuditTampered, SysflowError

__all__ = ["AuditLog", "AuditRecord", "Breach", "NotAnAuditLog", "Redactor", "remove_log"]

FORMAT = "sysflow-audit"
VERSION = "2"  # 1 was the unkeyed SHA-256 chain without a head
DEFAULT_BATCH = 200  # records per commit; decisions and the end of a run flush at once (see AuditObserver)

_COLUMNS = "id, at, run_id, who, action, host, task, detail, outcome, prev_mac, mac"
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


class NotAnAuditLog(SysflowError, ValueError):
    """The path is not a (keyed) sysflow audit log: a directory, a text file, another database."""


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
    prev_mac: str
    mac: str

    def content(self) -> str:
        """The canonical text the MAC covers (everything but the MAC itself)."""
        return _canonical(self.fields())

    def fields(self) -> tuple[Any, ...]:
        """Every field but the MAC, in declaration order."""
        return (self.id, self.at, self.run_id, self.who, self.action, self.host, self.task, self.detail,
                self.outcome, self.prev_mac)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Breach:
    """Why a log does not verify: the first bad record (None: the log as a whole) and one line."""

    record: int | None
    reason: str

    def __str__(self) -> str:
        return self.reason


class AuditLog:
    """Append records, verify the chain against the signed head, query and export.

    ``key`` (bytes) or ``key_file`` choose the audit key (default: :func:`default_key_file`; a writer
    creates it on first use). ``read_only=True`` opens an existing log without writing anything:
    no tables, no key file, no head, not even SQLite's side files when no writer is active; the key
    is then read only by :meth:`verify`. Safe to share between threads.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        who: str | None = None,
        redactor: Redactor | None = None,
        batch: int = DEFAULT_BATCH,
        key: bytes | None = None,
        key_file: str | Path | None = None,
        read_only: bool = False,
    ) -> None:
        self.path = Path(path)
        self.head_path = head_path(self.path)
        self.who = who or _local_user()
        self.redact = redactor or Redactor()
        self.read_only = read_only
        self._lock = threading.Lock()
        self._batch = max(1, batch)
        self._pending = 0
        self._key_arg = check_key(key) if key is not None else None
        self._key_file = Path(key_file).expanduser() if key_file is not None else default_key_file()
        self._key: bytes | None = None
        self._immutable = False
        state = _probe(self.path)
        if read_only:
            self._open_read_only(state)
        elif state == "sqlite":
            self._open_existing()
        else:
            self._create(state)

    # -- opening ----------------------------------------------------------------------------------

    def _open_read_only(self, state: str) -> None:
        if state == "missing":
            note = (
                f" (its signed head {self.head_path} exists: was it removed?)"
                if self.head_path.exists()
                else ""
            )
            raise FileNotFoundError(f"no audit log at {self.path}{note}")
        if state == "empty":
            raise NotAnAuditLog(f"{self.path} is an empty file, not an audit log")
        self._connect_read_only()
        try:
            self._meta = _read_meta(self._db, self.path)
        except BaseException:
            self._db.close()
            raise

    def _connect_read_only(self) -> None:
        uri = f"file:{quote(str(self.path.resolve()))}?mode=ro"
        # No writer (no -wal): read the file as it is, creating no -wal/-shm beside it. A writer that
        # starts meanwhile is caught by verify(), which then reads again through SQLite's locks.
        self._immutable = not Path(f"{self.path}-wal").exists()
        if self._immutable:
            uri += "&immutable=1"
        self._db = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)

    def _open_existing(self) -> None:
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            self._meta = _read_meta(self._db, self.path)  # before anything writes to the file
            self._key = self._load_key(create=False)
            self._start_hmac()
            self._check_key_id()
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._last_id, self._last_mac = self._check_tail()
        except BaseException:
            self._db.close()
            raise

    def _create(self, state: str) -> None:
        if self.head_path.exists():
            what = "missing" if state == "missing" else "an empty file"
            raise AuditTampered(
                f"{self.path} is {what} but its signed head {self.head_path} exists: the log was removed? "
                "(move the head away to start a new log)"
            )
        self._key = self._load_key(create=True)
        self._start_hmac()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._meta = {
            "format": FORMAT,
            "version": VERSION,
            "log_id": uuid.uuid4().hex,
            "key_id": key_id(self._key),
            "created": datetime.now(UTC).isoformat(),
        }
        self._db.execute("BEGIN")
        for statement in _SCHEMA.split(";\n"):
            if statement.strip():
                self._db.execute(statement)
        self._db.executemany("INSERT INTO audit_meta VALUES (?, ?)", sorted(self._meta.items()))
        self._db.execute("COMMIT")
        self._last_id, self._last_mac = 0, self._genesis()
        self._write_head()

    def _load_key(self, *, create: bool) -> bytes:
        if self._key_arg is not None:
            return self._key_arg
        return load_or_create_key(self._key_file) if create else load_key(self._key_file)

    def _start_hmac(self) -> None:
        assert self._key is not None
        self._hmac = hmac.new(self._key, digestmod=hashlib.sha256)

    def _key_source(self) -> str:
        return "the given key" if self._key_arg is not None else str(self._key_file)

    def _check_key_id(self) -> Breach | None:
        """A writer refuses a log of another key; verify reports it."""
        assert self._key is not None
        ours, theirs = key_id(self._key), self._meta["key_id"]
        if hmac.compare_digest(ours, theirs):
            return None
        reason = (
            f"written with another audit key (key id {theirs}); {self._key_source()} has key id {ours}: "
            "the wrong key file, or the database was replaced"
        )
        if self.read_only:
            return Breach(None, reason)
        raise AuditKeyError(f"{self.path}: {reason}")

    def _check_tail(self) -> tuple[int, str]:
        """A writer continues a log only where its head says it ends (records past the head: a crash
        between commit and head; they must chain). Anything else would bury a truncation under new
        records, so it is refused."""
        try:
            head = self._read_head()
        except HeadError as exc:
            raise AuditTampered(f"{self.path}: {exc}") from None
        if head.log_id != self.log_id:
            raise AuditTampered(f"{self.path}: {_other_log(self.head_path, head, self.log_id)}")
        prev = head.mac
        if head.count == 0:
            if not hmac.compare_digest(head.mac, self._genesis()):
                raise AuditTampered(f"{self.path}: its signed head does not start this log's chain")
        else:
            row = self._db.execute("SELECT mac FROM audit WHERE id = ?", (head.count,)).fetchone()
            if row is None:
                count = self.count()
                raise AuditTampered(f"{self.path}: {_truncated(head.count, count)}", count + 1)
            if row[0] != head.mac:
                raise AuditTampered(
                    f"{self.path}: record {head.count} is not the record its signed head names", head.count
                )
        last_id = head.count
        for row in self._db.execute(f"SELECT {_COLUMNS} FROM audit WHERE id > ? ORDER BY id", (head.count,)):
            rec = AuditRecord(*row)
            if rec.id != last_id + 1 or rec.prev_mac != prev or rec.mac != self._mac(prev, rec.content()):
                raise AuditTampered(
                    f"{self.path}: record {rec.id} after the signed head does not verify", rec.id
                )
            last_id, prev = rec.id, rec.mac
        if last_id != head.count:
            self._last_id, self._last_mac = last_id, prev
            self._write_head()  # the head a crash kept us from writing
        return last_id, prev

    def _read_head(self) -> Head:
        return read_head(self.head_path, self._key)

    def _write_head(self) -> None:
        assert self._key is not None
        write_head(self.head_path, Head(self.log_id, self._last_id, self._last_mac), self._key)

    @property
    def log_id(self) -> str:
        """This log's random id: binds the head and the first record's chain to this database."""
        return self._meta["log_id"]

    def _genesis(self) -> str:
        """The ``prev_mac`` of the first record: keyed, and bound to this log."""
        assert self._key is not None
        return hmac.new(
            self._key, b"sysflow-audit genesis\x00" + self.log_id.encode(), hashlib.sha256
        ).hexdigest()

    def _mac(self, prev_mac: str, content: str) -> str:
        h = self._hmac.copy()
        h.update((prev_mac + content).encode())
        return h.hexdigest()

    # -- writing ----------------------------------------------------------------------------------

    def flush(self) -> None:
        """Commit the records appended so far (``append`` commits every ``batch`` records) and
        rewrite the signed head."""
        with self._lock:
            if self._pending:
                self._commit()

    def _commit(self) -> None:
        self._db.execute("COMMIT")
        self._pending = 0
        self._write_head()

    def close(self) -> None:
        if not self.read_only:
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
        if self.read_only:
            raise ValueError(f"{self.path}: the audit log was opened read-only")
        with self._lock:
            fields = (self._last_id + 1, at.isoformat(), run_id, who or self.who, action, host, task,
                      self.redact(detail), self.redact(outcome), self._last_mac)  # fmt: skip
            mac = self._mac(self._last_mac, _canonical(fields))
            if not self._pending:
                self._db.execute("BEGIN")
            self._db.execute("INSERT INTO audit VALUES (?,?,?,?,?,?,?,?,?,?,?)", (*fields, mac))
            self._pending += 1
            self._last_id, self._last_mac = fields[0], mac
            if self._pending >= self._batch:
                self._commit()
            return AuditRecord(*fields, mac)

    # -- reading ----------------------------------------------------------------------------------

    def records(self) -> Iterator[AuditRecord]:
        """Every record in file order (rowid), as stored."""
        self.flush()
        for row in self._db.execute(f"SELECT {_COLUMNS} FROM audit ORDER BY rowid"):
            yield AuditRecord(*row)

    def count(self) -> int:
        self.flush()
        return int(self._db.execute("SELECT COUNT(*) FROM audit").fetchone()[0])

    def verify(self) -> Breach | None:
        """The first problem (a :class:`Breach` naming the first bad record), or None when the log is
        intact: every record chains under the key, and the database ends where its signed head says.

        Raises :class:`~sysflow.audit.keys.AuditKeyError` when the key cannot be read.
        """
        breach = self._verify()
        if breach is not None and self.read_only and self._immutable and Path(f"{self.path}-wal").exists():
            self._db.close()  # a writer started while we read the file as it was: read it again
            self._connect_read_only()
            breach = self._verify()
        return breach

    def _verify(self) -> Breach | None:
        self.flush()
        if self._key is None:
            self._key = self._load_key(create=False)
            self._start_hmac()
        wrong_key = self._check_key_id()
        if wrong_key is not None:
            return wrong_key
        try:
            head = self._read_head()
        except HeadError as exc:
            return Breach(None, str(exc))
        if head.log_id != self.log_id:
            return Breach(None, _other_log(self.head_path, head, self.log_id))
        try:
            return self._walk(head)
        except sqlite3.DatabaseError as exc:
            return Breach(None, f"the audit table cannot be read ({exc})")

    def _walk(self, head: Head) -> Breach | None:
        prev, expected = self._genesis(), 1
        if head.count == 0 and not hmac.compare_digest(head.mac, prev):
            return Breach(None, f"its signed head {self.head_path} does not start this log's chain")
        for rec in self.records():
            if rec.id != expected:
                return Breach(
                    rec.id, f"record {rec.id}: record {expected} was expected here (removed or reordered)"
                )
            if rec.prev_mac != prev:
                follows = f"record {expected - 1}" if expected > 1 else "the start of this log"
                return Breach(
                    rec.id, f"record {rec.id}: does not follow {follows} (removed, reordered or replaced)"
                )
            try:
                good = isinstance(rec.mac, str) and hmac.compare_digest(
                    rec.mac, self._mac(prev, rec.content())
                )
            except (TypeError, ValueError):  # a field of the wrong type, stored by hand
                good = False
            if not good:
                return Breach(
                    rec.id,
                    f"record {rec.id}: its MAC does not match its content (edited, or rewritten without the key)",
                )
            if rec.id == head.count and rec.mac != head.mac:
                return Breach(
                    rec.id, f"record {rec.id} is not the record its signed head names (another copy)"
                )
            prev, expected = rec.mac, expected + 1
        count = expected - 1
        if count < head.count:
            return Breach(count + 1, _truncated(head.count, count))
        return None

    def check(self) -> None:
        """Raise ``AuditTampered`` naming the first bad record."""
        breach = self.verify()
        if breach is not None:
            raise AuditTampered(f"{self.path}: {breach}", breach.record)

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
        sql = (
            f"SELECT {_COLUMNS} FROM audit"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY id"
        )
        return [AuditRecord(*row) for row in self._db.execute(sql, args)]

    def export_jsonl(self, out: IO[str], records: Sequence[AuditRecord] | None = None) -> int:
        """Write records as JSON Lines (for a SIEM); returns how many."""
        n = 0
        for rec in records if records is not None else self.records():
            out.write(json.dumps(asdict(rec), sort_keys=True) + "\n")
            n += 1
        return n


def remove_log(path: str | Path) -> None:
    """Delete an audit log on purpose: the database, SQLite's side files and the signed head."""
    db = Path(path)
    for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm"), head_path(db)):
        p.unlink(missing_ok=True)


def _probe(path: Path) -> str:
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


def _read_meta(db: sqlite3.Connection, path: Path) -> dict[str, str]:
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


def _truncated(head_count: int, count: int) -> str:
    return (
        f"truncated: head says {head_count} records, database holds {count} "
        "(records removed, or an older copy of the database)"
    )


def _other_log(path: Path, head: Head, log_id: str) -> str:
    return (
        f"its signed head {path} belongs to another audit log (log id {head.log_id[:12]}), "
        f"not this database (log id {log_id[:12]}): files swapped?"
    )


_KEYS = ("id", "at", "run_id", "who", "action", "host", "task", "detail", "outcome", "prev_mac")
_SORTED = sorted(range(len(_KEYS)), key=lambda i: _KEYS[i])
_ENCODE = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode


def _canonical(fields: tuple[Any, ...]) -> str:
    """Canonical JSON of a record without its MAC: keys sorted, no spaces (the MAC'd text)."""
    return "{" + ",".join(f'"{_KEYS[i]}":{_ENCODE(fields[i])}' for i in _SORTED) + "}"


def _local_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "unknown"
