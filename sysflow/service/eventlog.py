"""The event history on disk: one JSON Lines file per run in the service's ``events/`` directory.

Every event the hub publishes is appended (its JSON text, id included) to ``events/<run>.jsonl``, in
batches: :meth:`EventLog.flush` writes what is pending, the app calls it every ``FLUSH_EVERY``
seconds and when it stops (after its workers ended, so their exits are kept too). A service that
starts again loads the newest events back into its hub (up to its ``history``) and goes on from the
last id, so a client that resumes from an event id after a restart gets the events it missed, not a
gap. A hard crash can lose the last ``FLUSH_EVERY`` seconds of events; a client resuming into them
is then told of the gap as for any event no longer kept.
"""

from __future__ import annotations

import heapq
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

from sysflow.service.hub import Published

__all__ = ["FLUSH_EVERY", "EventLog"]

FLUSH_EVERY = 0.25  # seconds between writes of pending events
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_SERVICE = "_service"  # events of no run

log = logging.getLogger(__name__)


def _file_name(run_id: str) -> str:
    return (_UNSAFE.sub("_", run_id) or _SERVICE) + ".jsonl"


class EventLog:
    """Appends published events to per-run JSONL files and reads them back, oldest first."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._pending: dict[str, list[str]] = {}

    def append(self, item: Published) -> None:
        """Keep ``item`` to be written at the next flush (never waits on the disk)."""
        if item.id > 0:
            self._pending.setdefault(_file_name(item.run_id), []).append(item.text)

    def flush(self) -> int:
        """Write what is pending; the number of events written."""
        pending, self._pending = self._pending, {}
        written = 0
        for name, lines in pending.items():
            with (self.directory / name).open("a", encoding="utf-8") as out:
                out.write("\n".join(lines) + "\n")
            written += len(lines)
        return written

    def _read(self, path: Path) -> Iterator[Published]:
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    event = json.loads(line)
                    ident = int(event.pop("id"))
                except (ValueError, KeyError, TypeError):  # a line cut short by a crash
                    log.warning("%s: skipped a line that is not an event", path)
                    continue
                yield Published(ident, str(event.get("run_id", "")), event, line.rstrip("\n"))

    def load(self, most: int) -> list[Published]:
        """The newest ``most`` events of every run, in id order."""
        files = sorted(self.directory.glob("*.jsonl"))
        merged = heapq.merge(*(self._read(p) for p in files), key=lambda p: p.id)
        kept: list[Published] = []
        for item in merged:
            kept.append(item)
            if len(kept) > 2 * most:
                del kept[:-most]
        return kept[-most:] if most else []
