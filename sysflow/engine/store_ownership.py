"""Run ownership in the store: claim a run, heartbeat, give it up, and fence the writes of a
controller that lost its run to a takeover (see :mod:`sysflow.engine.owners`)."""

from __future__ import annotations

import sqlite3
import time

from sysflow.engine.owners import DEFAULT_OWNER_TTL, Owner, owned_error, owner_alive, owner_values
from sysflow.engine.store_file import StoreFile
from sysflow.engine.store_schema import RUN_COLUMNS, run_row
from sysflow.errors import StoreError

__all__ = ["OwnershipTable"]


class OwnershipTable(StoreFile):
    """The owner columns of ``runs``: who may write a run, and for how long."""

    def close(self) -> None:
        """Give up the runs this store object still owns (its controller is done with them: a run it
        did not finish can be resumed at once), then commit and close."""
        with self._lock:
            for run_id in list(self._claims):
                self.disown(run_id)
        super().close()

    def claim_run(self, run_id: str, owner: Owner, *, ttl: float = DEFAULT_OWNER_TTL) -> Owner | None:
        """Make ``owner`` the owner of ``run_id``: atomically, only when its current owner is gone or
        silent (see :func:`owner_alive`); returns the owner taken over (None: it had none). A live
        owner makes it raise ``RunOwned`` naming it (host, pid, since)."""
        with self.immediate() as db:
            row = db.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE id=?", (run_id,)).fetchone()
            if row is None:
                raise StoreError(f"no run {run_id!r} in {self.path}")
            found = run_row(row)
            previous = found.owner
            if (
                previous is not None
                and previous.token != owner.token
                and owner_alive(previous, found.heartbeat, now=time.time(), ttl=ttl)
            ):
                raise owned_error(run_id, previous, found.heartbeat)
            db.execute(
                "UPDATE runs SET owner_host=?, owner_pid=?, owner_start=?, owner_token=?, owner_since=?,"
                " heartbeat=? WHERE id=?",
                (*owner_values(owner), time.time(), run_id),
            )
        self._claims[run_id] = owner.token
        self._lost.discard(run_id)
        return previous

    def heartbeat(self, run_id: str) -> bool:
        """Refresh the heartbeat of the run this process owns; False when it is no longer its own."""
        token = self._claims.get(run_id)
        if token is None:
            return False
        with self._lock:
            self._begin()
            cur = self._db.execute(
                "UPDATE runs SET heartbeat=? WHERE id=? AND owner_token=?", (time.time(), run_id, token)
            )
            owned = cur.rowcount > 0
        self.commit()
        if not owned:
            self._claims.pop(run_id, None)
            self._lost.add(run_id)
        return owned

    def disown(self, run_id: str) -> None:
        """The run ends here: nobody owns it any more (unless another controller took it over)."""
        token = self._claims.pop(run_id, None)
        if token is None:
            return
        self._write(
            "UPDATE runs SET owner_token=NULL, heartbeat=NULL WHERE id=? AND owner_token=?", (run_id, token)
        )
        self.commit()

    def claim_token(self, run_id: str) -> str | None:
        """The token of this process's claim on ``run_id`` (None: it does not own it)."""
        return self._claims.get(run_id)

    def _fence(self, run_id: str, cur: sqlite3.Cursor) -> None:
        """After a fenced write: no row changed means another controller took the run over."""
        if cur.rowcount > 0:
            return
        row = self._db.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE id=?", (run_id,)).fetchone()
        found = run_row(row) if row is not None else None
        if found is not None and found.owner is not None and found.owner.token == self._claims.get(run_id):
            return  # still ours: the operation row is not there (nothing to fence)
        self._claims.pop(run_id, None)
        self._lost.add(run_id)
        owner = found.owner if found is not None else None
        if owner is None:
            owner = Owner("nobody", 0, "", "", "")  # released by another process: still not ours
        raise owned_error(run_id, owner, found.heartbeat if found is not None else None, lost=True)
