"""Stored scans (SQLite): every host scan kept with its time, so a report can be drawn for any past
day (``sysflow patch report --as-of DATE``) from the scans known then."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from sysflow.patch.records import HostScan

__all__ = ["ScanStore"]

_SCHEMA = """CREATE TABLE IF NOT EXISTS scans (
  host TEXT NOT NULL, scanned_at REAL NOT NULL, run_id TEXT NOT NULL, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS scans_host_time ON scans (host, scanned_at);"""


class ScanStore:
    """Scans in one SQLite file (created on first use)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        with self._connect() as db:
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path)

    def add(self, scans: Iterable[HostScan], run_id: str = "") -> int:
        """Keep ``scans``; returns how many."""
        rows = [(s.host, s.scanned_at.timestamp(), run_id, json.dumps(s.to_dict())) for s in scans]
        with self._connect() as db:
            db.executemany("INSERT INTO scans VALUES (?, ?, ?, ?)", rows)
        return len(rows)

    def latest(self, as_of: datetime | None = None) -> list[HostScan]:
        """Each host's last scan at or before ``as_of`` (default: now), sorted by host."""
        limit = as_of.timestamp() if as_of is not None else float("inf")
        query = (
            "SELECT data FROM scans s WHERE scanned_at = (SELECT MAX(scanned_at) FROM scans t "
            "WHERE t.host = s.host AND t.scanned_at <= ?) ORDER BY host"
        )
        with self._connect() as db:
            rows = db.execute(query, (limit,)).fetchall()
        return [HostScan.from_dict(json.loads(r[0])) for r in rows]
