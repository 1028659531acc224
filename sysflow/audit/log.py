"""A tamper-evident, append-only audit log in SQLite: a keyed chain and a signed head outside it.

Each record carries ``mac = HMAC-SHA256(key, prev_mac || canonical record)``; the first record's
``prev_mac`` is derived from the key and the log id (stored in the ``audit_meta`` table), so the chain
is bound to this log (:mod:`sysflow.audit.records`). The key lives outside the database (see
:mod:`sysflow.audit.keys`): whoever edits the file cannot recompute a chain that verifies, whether
with plain SHA-256 or another key.

After every commit the writer rewrites the signed head ``<db>.head`` (see :mod:`sysflow.audit.head`):
log id, record count and last MAC, signed with the key. Verification checks the database against it
(:mod:`sysflow.audit.verify`), so what a keyed chain alone cannot show is caught too: records
removed at the end or all of them ("truncated: head says N records, database holds M"), an older
copy of the database put back, the database of another log swapped in. :meth:`AuditLog.verify`
returns the first :class:`Breach` (the first bad record, and why) or None.

Triggers refuse UPDATE and DELETE through SQLite (:mod:`sysflow.audit.storage`); the chain and the
head catch the rest. Commands are redacted before they are written: a secret never reaches the file.

Every appended record is handed, in order, to the log's forwarders (syslog, JSON Lines:
:mod:`sysflow.audit.forward`). Limits: one writer per log at a time. Somebody who keeps old copies of *both* the database and its
head (and the key is not needed for that) can put both back; keep a copy of the head elsewhere (or
export records to a SIEM) to notice that. After a power loss (not a process crash) the head may name
records SQLite had not yet made durable; verification then reports the log as truncated.
"""

from __future__ import annotations

import getpass
import json
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sysflow.audit import storage
from sysflow.audit.forward import AuditForwarder, forwarders_from_env
from sysflow.audit.head import Head, head_path, write_head
from sysflow.audit.keys import (
    AuditKeyError,
    check_key,
    default_key_file,
    key_id,
    load_key,
    load_or_create_key,
)
from sysflow.audit.records import COLUMNS, AuditRecord, Chain, canonical
from sysflow.audit.storage import NotAnAuditLog, remove_log
from sysflow.audit.verify import Breach, checked_tail, find_breach, key_mismatch
from sysflow.errors import AuditTampered

__all__ = ["AuditLog", "AuditRecord", "Breach", "NotAnAuditLog", "Redactor", "remove_log"]

DEFAULT_BATCH = 200  # records per commit; decisions and the end of a run flush at once (see AuditObserver)


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
        forward: Sequence[AuditForwarder] | None = None,
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
        self._chain: Chain | None = None  # a read-only log reads its key only to verify
        self._immutable = False
        # every appended record, redacted, in order (default: $SYSFLOW_AUDIT_FORWARD; see forward.py)
        self._forward = [] if read_only else list(forwarders_from_env() if forward is None else forward)
        state = storage.probe(self.path)
        if read_only:
            self._open_read_only(state)
        elif state == "sqlite":
            self._open_existing()
        else:
            self._create(state)

    # -- opening ----------------------------------------------------------------------------------

    def _open_read_only(self, state: storage.State) -> None:
        if state == "missing":
            note = (
                f" (its signed head {self.head_path} exists: was it removed?)"
                if self.head_path.exists()
                else ""
            )
            raise FileNotFoundError(f"no audit log at {self.path}{note}")
        if state == "empty":
            raise NotAnAuditLog(f"{self.path} is an empty file, not an audit log")
        self._db, self._immutable = storage.connect_read_only(self.path)
        try:
            self._meta = storage.read_meta(self._db, self.path)
        except BaseException:
            self._db.close()
            raise

    def _open_existing(self) -> None:
        self._db = storage.connect(self.path)
        try:
            self._meta = storage.read_meta(self._db, self.path)  # before anything writes to the file
            self._chain = Chain(self._load_key(create=False), self.log_id)
            self._wrong_key()
            storage.use_wal(self._db)
            self._last_id, self._last_mac, behind = checked_tail(
                self._db, self._chain, self.path, self.head_path
            )
            if behind:
                self._write_head()  # the head a crash kept us from writing
        except BaseException:
            self._db.close()
            raise

    def _create(self, state: storage.State) -> None:
        if self.head_path.exists():
            what = "missing" if state == "missing" else "an empty file"
            raise AuditTampered(
                f"{self.path} is {what} but its signed head {self.head_path} exists: the log was removed? "
                "(move the head away to start a new log)"
            )
        key = self._load_key(create=True)
        self._db, self._meta = storage.create(self.path, key_id(key))
        self._chain = Chain(key, self.log_id)
        self._last_id, self._last_mac = 0, self._chain.genesis()
        self._write_head()

    def _load_key(self, *, create: bool) -> bytes:
        if self._key_arg is not None:
            return self._key_arg
        return load_or_create_key(self._key_file) if create else load_key(self._key_file)

    def _wrong_key(self) -> Breach | None:
        """A writer refuses a log of another key; verify reports it."""
        assert self._chain is not None
        source = "the given key" if self._key_arg is not None else str(self._key_file)
        reason = key_mismatch(self._chain.key, self._meta["key_id"], source)
        if reason is None:
            return None
        if self.read_only:
            return Breach(None, reason)
        raise AuditKeyError(f"{self.path}: {reason}")

    def _write_head(self) -> None:
        assert self._chain is not None
        write_head(self.head_path, Head(self.log_id, self._last_id, self._last_mac), self._chain.key)

    @property
    def log_id(self) -> str:
        """This log's random id: binds the head and the first record's chain to this database."""
        return self._meta["log_id"]

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
        for forwarder in self._forward:
            forwarder.close()
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
        assert self._chain is not None  # a writer has its key from the start
        with self._lock:
            fields = (self._last_id + 1, at.isoformat(), run_id, who or self.who, action, host, task,
                      self.redact(detail), self.redact(outcome), self._last_mac)  # fmt: skip
            mac = self._chain.mac(self._last_mac, canonical(fields))
            if not self._pending:
                self._db.execute("BEGIN")
            self._db.execute("INSERT INTO audit VALUES (?,?,?,?,?,?,?,?,?,?,?)", (*fields, mac))
            self._pending += 1
            self._last_id, self._last_mac = fields[0], mac
            if self._pending >= self._batch:
                self._commit()
            record = AuditRecord(*fields, mac)
            for forwarder in self._forward:
                forwarder.forward(record)
            return record

    # -- reading ----------------------------------------------------------------------------------

    def records(self) -> Iterator[AuditRecord]:
        """Every record in file order (rowid), as stored."""
        self.flush()
        for row in self._db.execute(f"SELECT {COLUMNS} FROM audit ORDER BY rowid"):
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
            self._db, self._immutable = storage.connect_read_only(self.path)
            breach = self._verify()
        return breach

    def _verify(self) -> Breach | None:
        self.flush()
        if self._chain is None:
            self._chain = Chain(self._load_key(create=False), self.log_id)
        wrong_key = self._wrong_key()
        if wrong_key is not None:
            return wrong_key
        return find_breach(self.records(), self._chain, self.head_path)

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
            f"SELECT {COLUMNS} FROM audit"
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


def _local_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "unknown"
