"""The signed head of an audit log: a small file beside the database (``<db>.head``).

It holds the log id, the number of records and the MAC of the last one, signed with the audit key.
The writer rewrites it atomically (temporary file, then ``os.replace``) after every commit, so it
always names the newest committed record. Because it lives outside the database, what an attacker
does to the database alone shows: removed records at the end (fewer records than the head says), a
database of another log (other log id), or an older copy of the database put back (the head is
newer). Without the key a head cannot be forged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HEAD_FORMAT", "Head", "HeadError", "head_path", "read_head", "write_head"]

HEAD_FORMAT = "sysflow-audit-head/1"


class HeadError(ValueError):
    """The head file is missing, unreadable or not signed with this key."""


def head_path(db: Path) -> Path:
    return db.with_name(db.name + ".head")


@dataclass(frozen=True, slots=True)
class Head:
    log_id: str
    count: int  # records in the log when the head was written (the last record's id)
    mac: str  # that record's MAC; the log's genesis value when it is empty

    def _signed(self) -> bytes:
        return f"{HEAD_FORMAT}\x00{self.log_id}\x00{self.count}\x00{self.mac}".encode()

    def signature(self, key: bytes) -> str:
        return hmac.new(key, self._signed(), hashlib.sha256).hexdigest()


def write_head(path: Path, head: Head, key: bytes) -> None:
    """Replace the head file atomically (a reader sees the old head or the new one, never half)."""
    doc = {
        "format": HEAD_FORMAT,
        "log_id": head.log_id,
        "count": head.count,
        "mac": head.mac,
        "signature": head.signature(key),
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(doc, sort_keys=True) + "\n", encoding="ascii")
    os.replace(tmp, path)


def read_head(path: Path, key: bytes | None) -> Head:
    """Read and (with a key) check the head; a problem is a one-line :class:`HeadError`."""
    try:
        doc = json.loads(path.read_text(encoding="ascii"))
    except FileNotFoundError:
        raise HeadError(f"its signed head {path} is missing (deleted?)") from None
    except (OSError, UnicodeDecodeError, ValueError):
        raise HeadError(f"its signed head {path} is not a head file (damaged or replaced)") from None
    try:
        if doc["format"] != HEAD_FORMAT:
            raise HeadError(f"its signed head {path} has an unknown format {doc['format']!r}")
        head = Head(str(doc["log_id"]), int(doc["count"]), str(doc["mac"]))
        signature = str(doc["signature"])
    except (KeyError, TypeError, ValueError):
        raise HeadError(f"its signed head {path} is not a head file (damaged or replaced)") from None
    if key is not None and not hmac.compare_digest(signature, head.signature(key)):
        raise HeadError(f"its signed head {path} is not signed with this key (edited or forged)")
    return head
