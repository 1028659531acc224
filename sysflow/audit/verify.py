"""Verifying an audit log: its records chain under the key and end where its signed head says.

:func:`find_breach` walks a whole log and returns the first :class:`Breach` (the first bad record,
and why in one line) or None: a record removed, reordered, edited or rewritten without the key,
records missing at the end ("truncated: head says N records, database holds M"), an older copy of
the database put back, the database of another log swapped in. :func:`checked_tail` is the check a
writer makes before it appends: it continues a log only where its head says the log ends.
"""

from __future__ import annotations

import hmac
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sysflow.audit.head import Head, HeadError, read_head
from sysflow.audit.keys import key_id
from sysflow.audit.records import COLUMNS, AuditRecord, Chain
from sysflow.errors import AuditTampered

__all__ = ["Breach", "checked_tail", "find_breach", "key_mismatch"]


@dataclass(frozen=True, slots=True)
class Breach:
    """Why a log does not verify: the first bad record (None: the log as a whole) and one line."""

    record: int | None
    reason: str

    def __str__(self) -> str:
        return self.reason


def key_mismatch(key: bytes, stored_key_id: str, key_source: str) -> str | None:
    """Why ``key`` is not the key the log was written with (None: it is); ``key_source`` names it."""
    ours = key_id(key)
    if hmac.compare_digest(ours, stored_key_id):
        return None
    return (
        f"written with another audit key (key id {stored_key_id}); {key_source} has key id {ours}: "
        "the wrong key file, or the database was replaced"
    )


def find_breach(records: Iterable[AuditRecord], chain: Chain, head_path: Path) -> Breach | None:
    """The first problem of a log whose ``records`` (in file order) should chain under ``chain`` up
    to the signed head at ``head_path``, or None when the log is intact."""
    try:
        head = read_head(head_path, chain.key)
    except HeadError as exc:
        return Breach(None, str(exc))
    if head.log_id != chain.log_id:
        return Breach(None, _other_log(head_path, head, chain.log_id))
    try:
        return _walk(records, chain, head, head_path)
    except sqlite3.DatabaseError as exc:
        return Breach(None, f"the audit table cannot be read ({exc})")


def _walk(records: Iterable[AuditRecord], chain: Chain, head: Head, head_path: Path) -> Breach | None:
    prev, expected = chain.genesis(), 1
    if head.count == 0 and not hmac.compare_digest(head.mac, prev):
        return Breach(None, f"its signed head {head_path} does not start this log's chain")
    for rec in records:
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
            good = isinstance(rec.mac, str) and hmac.compare_digest(rec.mac, chain.mac(prev, rec.content()))
        except (TypeError, ValueError):  # a field of the wrong type, stored by hand
            good = False
        if not good:
            return Breach(
                rec.id,
                f"record {rec.id}: its MAC does not match its content (edited, or rewritten without the key)",
            )
        if rec.id == head.count and rec.mac != head.mac:
            return Breach(rec.id, f"record {rec.id} is not the record its signed head names (another copy)")
        prev, expected = rec.mac, expected + 1
    count = expected - 1
    if count < head.count:
        return Breach(count + 1, _truncated(head.count, count))
    return None


def checked_tail(db: sqlite3.Connection, chain: Chain, path: Path, head_path: Path) -> tuple[int, str, bool]:
    """Where a writer continues the log at ``path``: (last id, last MAC, whether the head is behind).

    Records past the head are a crash between commit and head: they must chain, and the head is
    then behind (the caller rewrites it). Anything else would bury a truncation under new records,
    so it is refused with :class:`~sysflow.errors.AuditTampered`.
    """
    try:
        head = read_head(head_path, chain.key)
    except HeadError as exc:
        raise AuditTampered(f"{path}: {exc}") from None
    if head.log_id != chain.log_id:
        raise AuditTampered(f"{path}: {_other_log(head_path, head, chain.log_id)}")
    prev = head.mac
    if head.count == 0:
        if not hmac.compare_digest(head.mac, chain.genesis()):
            raise AuditTampered(f"{path}: its signed head does not start this log's chain")
    else:
        row = db.execute("SELECT mac FROM audit WHERE id = ?", (head.count,)).fetchone()
        if row is None:
            count = int(db.execute("SELECT COUNT(*) FROM audit").fetchone()[0])
            raise AuditTampered(f"{path}: {_truncated(head.count, count)}", count + 1)
        if row[0] != head.mac:
            raise AuditTampered(
                f"{path}: record {head.count} is not the record its signed head names", head.count
            )
    last_id = head.count
    for row in db.execute(f"SELECT {COLUMNS} FROM audit WHERE id > ? ORDER BY id", (head.count,)):
        rec = AuditRecord(*row)
        if rec.id != last_id + 1 or rec.prev_mac != prev or rec.mac != chain.mac(prev, rec.content()):
            raise AuditTampered(f"{path}: record {rec.id} after the signed head does not verify", rec.id)
        last_id, prev = rec.id, rec.mac
    return last_id, prev, last_id != head.count


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
