"""A signed export bundle: one run's audit records and the log's chain head, checked offline.

A bundle is one JSON document a compliance team can keep and check without the database:
the log id and key id, the run, its records (every field, MAC and ``prev_mac`` included), the
log's signed head when the bundle was made, and a signature (HMAC-SHA256 with the audit key) over
all of it. :func:`verify_bundle` needs only the bundle and the key: each record's MAC is recomputed
from its own fields and ``prev_mac``; consecutive records (ids ``n`` and ``n+1``) must link; the
records must lie within the head; the head's and the bundle's signatures must hold. So an edited,
removed, added or reordered record, an edited head and a bundle of another log are all detected.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import asdict, fields
from typing import Any

from sysflow.audit.head import HEAD_FORMAT, Head, read_head
from sysflow.audit.keys import key_id
from sysflow.audit.log import AuditLog
from sysflow.audit.records import AuditRecord, Chain
from sysflow.audit.verify import Breach

__all__ = ["BUNDLE_FORMAT", "make_bundle", "verify_bundle"]

BUNDLE_FORMAT = "sysflow-audit-bundle/1"
_FIELDS = [f.name for f in fields(AuditRecord)]


def _signature(key: bytes, doc: dict[str, Any]) -> str:
    body = {k: v for k, v in doc.items() if k != "signature"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, f"{BUNDLE_FORMAT}\x00{text}".encode(), hashlib.sha256).hexdigest()


def make_bundle(log: AuditLog, key: bytes, run: str | None = None) -> dict[str, Any]:
    """The bundle of ``run``'s records (all records when None), signed with ``key``.

    The log is verified first: a bundle is never made from a tampered log (ValueError)."""
    breach = log.verify()
    if breach is not None:
        raise ValueError(f"{log.path}: will not export a tampered log: {breach}")
    head = read_head(log.head_path, key)
    records = log.query(run=run) if run is not None else list(log.records())
    doc: dict[str, Any] = {
        "format": BUNDLE_FORMAT,
        "log_id": log.log_id,
        "key_id": key_id(key),
        "run": run,
        "records": [asdict(r) for r in records],
        "head": {
            "format": HEAD_FORMAT,
            "count": head.count,
            "mac": head.mac,
            "signature": head.signature(key),
        },
    }
    doc["signature"] = _signature(key, doc)
    return doc


def verify_bundle(doc: Any, key: bytes) -> Breach | None:
    """The first problem of a bundle (a :class:`Breach`), or None when it verifies under ``key``."""
    try:
        return _check(doc, key)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return Breach(None, f"not a sysflow audit bundle ({type(exc).__name__}: {exc})")


def _check(doc: dict[str, Any], key: bytes) -> Breach | None:
    if doc["format"] != BUNDLE_FORMAT:
        return Breach(None, f"unknown bundle format {doc['format']!r}")
    if not hmac.compare_digest(str(doc["key_id"]), key_id(key)):
        return Breach(None, f"made with another audit key (key id {doc['key_id']}, this key {key_id(key)})")
    if not hmac.compare_digest(str(doc["signature"]), _signature(key, doc)):
        return Breach(None, "the bundle's signature does not match its content (edited)")
    head = Head(str(doc["log_id"]), int(doc["head"]["count"]), str(doc["head"]["mac"]))
    if not hmac.compare_digest(str(doc["head"]["signature"]), head.signature(key)):
        return Breach(None, "the chain head is not signed with this key (edited)")
    return _records(doc, key, head)


def _records(doc: dict[str, Any], key: bytes, head: Head) -> Breach | None:
    chain = Chain(key, head.log_id)
    previous: AuditRecord | None = None
    for row in doc["records"]:
        record = AuditRecord(**{name: row[name] for name in _FIELDS})
        if record.id > head.count:
            return Breach(record.id, f"record {record.id} is past the chain head ({head.count} records)")
        if not hmac.compare_digest(record.mac, chain.mac(record.prev_mac, record.content())):
            return Breach(record.id, f"record {record.id}: its MAC does not match its content (edited)")
        if previous is not None and record.id <= previous.id:
            return Breach(record.id, f"record {record.id} follows record {previous.id} (reordered)")
        if previous is not None and record.id == previous.id + 1 and record.prev_mac != previous.mac:
            return Breach(record.id, f"record {record.id} does not follow record {previous.id}")
        if doc["run"] is not None and record.run_id != doc["run"]:
            return Breach(record.id, f"record {record.id} belongs to run {record.run_id}, not {doc['run']}")
        previous = record
    if previous is not None and previous.id == head.count and previous.mac != head.mac:
        return Breach(previous.id, f"record {previous.id} is not the one the chain head names")
    return None
