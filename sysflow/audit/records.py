"""Audit records and the keyed chain that links them.

Each record carries ``mac = HMAC-SHA256(key, prev_mac || canonical record)``; the first record's
``prev_mac`` (:meth:`Chain.genesis`) is derived from the key and the log id, so a chain is bound to
its log and cannot be recomputed without the key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

__all__ = ["COLUMNS", "AuditRecord", "Chain", "canonical"]

COLUMNS = "id, at, run_id, who, action, host, task, detail, outcome, prev_mac, mac"  # as stored


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
        return canonical(self.fields())

    def fields(self) -> tuple[Any, ...]:
        """Every field but the MAC, in declaration order."""
        return (self.id, self.at, self.run_id, self.who, self.action, self.host, self.task, self.detail,
                self.outcome, self.prev_mac)  # fmt: skip


_KEYS = ("id", "at", "run_id", "who", "action", "host", "task", "detail", "outcome", "prev_mac")
_SORTED = sorted(range(len(_KEYS)), key=lambda i: _KEYS[i])
_ENCODE = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode


def canonical(fields: tuple[Any, ...]) -> str:
    """Canonical JSON of a record without its MAC: keys sorted, no spaces (the MAC'd text)."""
    return "{" + ",".join(f'"{_KEYS[i]}":{_ENCODE(fields[i])}' for i in _SORTED) + "}"


class Chain:
    """The MACs of one log under one key: where its chain starts and how each link is computed."""

    def __init__(self, key: bytes, log_id: str) -> None:
        self.key = key
        self.log_id = log_id
        self._hmac = hmac.new(key, digestmod=hashlib.sha256)

    def genesis(self) -> str:
        """The ``prev_mac`` of the first record: keyed, and bound to this log."""
        return hmac.new(
            self.key, b"sysflow-audit genesis\x00" + self.log_id.encode(), hashlib.sha256
        ).hexdigest()

    def mac(self, prev_mac: str, content: str) -> str:
        """The MAC of a record whose canonical text is ``content``, following ``prev_mac``."""
        h = self._hmac.copy()
        h.update((prev_mac + content).encode())
        return h.hexdigest()
