"""The run store's file: one SQLite connection in WAL mode, migrations, and batched writes.

No transaction is held while idle; the first write of a batch takes the write lock (``BEGIN
IMMEDIATE``) and :meth:`StoreFile.commit` makes everything written since durable in one commit.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from sysflow.engine.store_schema import MIGRATIONS, SCHEMA_VERSION, UPDATE_OP
from sysflow.errors import StoreError

__all__ = ["STORE_ENV", "StoreFile", "default_store_path"]

STORE_ENV = "SYSFLOW_STORE"  # the run store's path, for every command and library default


class StoreFile:
    """A run store file opened for reading and batched writing; see :class:`RunStore` for its tables."""

    def __init__(self, path: str | Path | None = None) -> None:
        if path is None:
            path = default_store_path()
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # durable against a crash of the process
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: cannot open the run store: {exc}") from None
        # No transaction is held while idle: reads see every process's latest commit, and the first
        # write of a batch takes the write lock at once (BEGIN IMMEDIATE waits on the busy timeout
        # instead of failing when another process wrote since a read).
        self._pending = False
        self._records: dict[tuple[str, str], tuple[Any, ...]] = {}  # latest record per op, written at commit
        self._claims: dict[str, str] = {}  # run id -> token of the claim this process holds (fences writes)
        self._lost: set[str] = set()  # runs another controller took over from this store object

    # -- lifecycle --------------------------------------------------------------------------------

    def _migrate(self) -> None:
        """Run the missing migrations in one write transaction: several processes opening a new
        store at once (controllers sharing it) migrate it exactly once."""
        if int(self._db.execute("PRAGMA user_version").fetchone()[0]) == SCHEMA_VERSION:
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            version = int(self._db.execute("PRAGMA user_version").fetchone()[0])  # under the lock
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: schema version {version} is newer than this sysflow ({SCHEMA_VERSION})"
                )
            for number in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version={number + 1}")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def commit(self) -> None:
        """Make every write so far durable (one commit for all of them)."""
        with self._lock:
            if self._records:
                self._begin()
                self._db.executemany(UPDATE_OP, self._records.values())
                self._records.clear()
            if self._pending:
                self._db.execute("COMMIT")
                self._pending = False

    def _begin(self) -> None:
        if not self._pending:
            self._db.execute("BEGIN IMMEDIATE")
            self._pending = True

    def close(self) -> None:
        """Commit and close the file."""
        with self._lock:
            self.commit()
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, sql: str, args: Sequence[Any] = ()) -> None:
        with self._lock:
            self._begin()
            self._db.execute(sql, args)

    def _writemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._lock:
            self._begin()
            self._db.executemany(sql, rows)

    @contextmanager
    def immediate(self) -> Iterator[sqlite3.Connection]:
        """A write transaction taken at once (``BEGIN IMMEDIATE``), for atomic claims across processes.

        Pending writes are committed first; the block sees the latest committed state of every
        process and commits on exit (rolls back on an exception).
        """
        with self._lock:
            self.commit()
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")


def default_store_path() -> Path:
    """The run store every controller of this machine (and user) shares unless told otherwise:
    ``$SYSFLOW_STORE``; else ``/var/lib/sysflow/state.db`` for root; else
    ``${XDG_STATE_HOME:-~/.local/state}/sysflow/state.db``. One file is one lease authority: point
    controllers on several machines at one path on shared storage to coordinate them."""
    env = os.environ.get(STORE_ENV)
    if env:
        return Path(env).expanduser()
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/sysflow/state.db")
    state = os.environ.get("XDG_STATE_HOME") or str(Path("~/.local/state").expanduser())
    return Path(state) / "sysflow" / "state.db"
