"""Host leases in the store: a host belongs to one run at a time, across every controller that
shares the store file."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from sysflow.engine.store_file import StoreFile

__all__ = ["LeaseTable"]


class LeaseTable(StoreFile):
    """The ``leases`` table: take atomically, renew, return; named by the claim that holds them."""

    def take_leases(self, run_id: str, hosts: Sequence[str], *, now: float, ttl: float) -> dict[str, str]:
        """Lease ``hosts`` to ``run_id`` atomically; on conflict take nothing and return host → holder.

        The leases name this process's claim on the run, so only it renews and returns them."""
        owner = self._claims.get(run_id, "")
        with self.immediate():
            held = self._held_by_others(run_id, hosts, now)
            if not held:
                taken = datetime.now().astimezone().isoformat()
                self._db.executemany(
                    "INSERT OR REPLACE INTO leases (host, run_id, expires, taken, owner) VALUES (?,?,?,?,?)",
                    ((h, run_id, now + ttl, taken, owner) for h in hosts),
                )
        return held

    def _held_by_others(self, run_id: str, hosts: Sequence[str], now: float) -> dict[str, str]:
        held: dict[str, str] = {}
        for chunk in _chunks(list(hosts), 500):
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT host, run_id FROM leases WHERE host IN ({marks}) AND run_id != ? AND expires > ?",
                (*chunk, run_id, now),
            )
            held.update({str(h): str(r) for h, r in rows})
        return held

    def renew_leases(self, run_id: str, *, now: float, ttl: float) -> None:
        if run_id in self._lost:  # taken over: the leases are the new owner's
            return
        self._write(
            "UPDATE leases SET expires=? WHERE run_id=? AND owner=?",
            (now + ttl, run_id, self._claims.get(run_id, "")),
        )
        self.commit()

    def release_leases(self, run_id: str) -> None:
        """Return the run's leases (those this process's claim holds: not a later owner's)."""
        if run_id in self._lost:
            return
        self._write("DELETE FROM leases WHERE run_id=? AND owner=?", (run_id, self._claims.get(run_id, "")))
        self.commit()

    def leases(self) -> dict[str, tuple[str, float]]:
        return {
            str(h): (str(r), float(e))
            for h, r, e in self._db.execute("SELECT host, run_id, expires FROM leases")
        }


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
