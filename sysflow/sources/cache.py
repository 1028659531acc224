"""A TTL cache of what a remote inventory source answered, kept as one JSON file per source.

The cache holds the source's records (never a credential) and when they were fetched, so a CMDB that
is down can be answered from the last good copy within the stale policy, and a fresh copy saves
the round trips of a large, paginated inventory.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CacheEntry", "SourceCache", "default_cache_dir"]


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/sysflow/inventory`` (default ``~/.cache/sysflow/inventory``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sysflow" / "inventory"


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """Records as a source answered them, and the Unix time they were fetched."""

    fetched_at: float
    records: list[Any]

    def age(self, now: float) -> float:
        return max(0.0, now - self.fetched_at)


@dataclass(frozen=True, slots=True)
class SourceCache:
    """The cache file of one source, named by a digest of what identifies the source's answer."""

    directory: Path
    identity: str  # e.g. the URL and filters: a changed filter never reads another query's cache

    @property
    def path(self) -> Path:
        digest = hashlib.sha256(self.identity.encode()).hexdigest()[:32]
        return self.directory / f"{digest}.json"

    def load(self) -> CacheEntry | None:
        try:
            data = json.loads(self.path.read_text())
            return CacheEntry(float(data["fetched_at"]), list(data["records"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # no cache, or one we cannot read: as if there were none

    def store(self, entry: CacheEntry) -> None:
        """Write atomically (a temporary file renamed over the old copy)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        body = {"identity": self.identity, "fetched_at": entry.fetched_at, "records": entry.records}
        tmp.write_text(json.dumps(body))
        tmp.replace(self.path)
