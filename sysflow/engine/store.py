"""The run store: every state change of a run, in SQLite, written before it is acted on.

One file per machine and user by default (:func:`default_store_path`), in WAL mode: runs (with the
workflow and inventory they ran, so ``resume`` needs nothing else, and the controller that owns
them), plan versions, operations and their states, gate verdicts and approvals, learned durations,
and host leases. The schema carries a version (``PRAGMA user_version``) and migrations run forward
on open. Controllers on several machines share leases and ownership by sharing one store file.

Ownership: a run is owned by one live controller process (host name, pid, process start time from
``/proc/<pid>/stat`` so a reused pid is not mistaken for it, and a heartbeat it refreshes while the
run executes). :meth:`RunStore.claim_run` takes a run over only when its owner is gone (same host,
process not alive or started at another time) or silent (heartbeat older than the TTL), else it
raises ``RunOwned`` naming the owner. The write-ahead record of every operation is *fenced*: it is
written only while this process still owns the run, inside the transaction that makes it durable,
so a controller that lost its run to a takeover never sends another command.

Write-ahead: the engine records an operation as *running* before its command is sent. Writes made in
the same event-loop tick share one commit (:meth:`RunStore.commit`), so the cost per operation stays
small while nothing is acted on before it is durable against a crash of the process.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sysflow.engine.result import OpRecord
from sysflow.engine.states import OpState, RunStatus
from sysflow.errors import RunOwned, StoreError

__all__ = [
    "DEFAULT_OWNER_TTL",
    "SCHEMA_VERSION",
    "STORE_ENV",
    "Owner",
    "RunRow",
    "RunStore",
    "default_store_path",
    "owner_alive",
    "pid_alive",
    "process_start",
]

STORE_ENV = "SYSFLOW_STORE"  # the run store's path, for every command and library default
SCHEMA_VERSION = 4
DEFAULT_OWNER_TTL = 60.0  # seconds an owner's heartbeat stays fresh (the engine passes its lease TTL)


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


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def process_start(pid: int) -> str | None:
    """``<boot id>:<start time in clock ticks>`` of a live process (Linux ``/proc/<pid>/stat``), ""
    where /proc is not there but the process exists, None when it does not exist (or is a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return "" if pid_alive(pid) else None
    fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) ": comm may hold spaces
    if not fields or fields[0] in ("Z", "X"):  # a zombie is dead: it only waits to be reaped
        return None
    return f"{_boot_id()}:{fields[19]}"  # field 22 of stat: start time


def pid_alive(pid: int | None) -> bool:
    """Whether a process with this id exists (on this machine)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True, slots=True)
class Owner:
    """The controller process that owns a run: where it runs, which process, since when."""

    host: str
    pid: int
    start: str  # process_start() of pid when it took the run ("" when unknown)
    token: str  # unique per claim: fences this claim's writes
    since: str  # ISO time it took the run

    @classmethod
    def this_process(cls) -> Owner:
        pid = os.getpid()
        return cls(
            socket.gethostname(),
            pid,
            process_start(pid) or "",
            uuid.uuid4().hex,
            datetime.now().astimezone().isoformat(timespec="seconds"),
        )

    def describe(self) -> str:
        return f"host {self.host}, pid {self.pid}, since {self.since}"


def owner_alive(owner: Owner, heartbeat: float | None, *, now: float, ttl: float) -> bool:
    """Whether ``owner`` still runs its run: its heartbeat is fresh and, when it is on this host,
    its process exists and is the one that took the run (same start time: no reused pid)."""
    if heartbeat is None or now - heartbeat > ttl:
        return False
    if owner.host == socket.gethostname():
        current = process_start(owner.pid)
        if current is None:
            return False
        if owner.start and current and current != owner.start:
            return False
    return True


_OUTPUT_KEEP = 4096  # characters of stdout/stderr kept per operation in the store (head), digest aside

_UPDATE_OP = (
    "UPDATE ops SET state=?, start=?, end=?, exit_status=?, error=?, stdout=?, stderr=?, attempts=?,"
    " reason=?, command=? WHERE run_id=? AND op_id=?"
)

_MIGRATIONS: tuple[str, ...] = (
    # 1: runs, operations, gates, plans, durations
    """
    CREATE TABLE runs (
        id TEXT PRIMARY KEY, workflow TEXT NOT NULL, workflow_json TEXT NOT NULL,
        inventory_json TEXT NOT NULL, status TEXT NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '', failed_wave INTEGER, wave INTEGER NOT NULL DEFAULT 0,
        pid INTEGER, options_json TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE ops (
        run_id TEXT NOT NULL, op_id TEXT NOT NULL, host TEXT NOT NULL, task TEXT NOT NULL,
        wave INTEGER NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        start TEXT, end TEXT, exit_status INTEGER, error TEXT, stdout TEXT NOT NULL DEFAULT '',
        stderr TEXT NOT NULL DEFAULT '', reason TEXT NOT NULL DEFAULT '', command TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (run_id, op_id)
    );
    CREATE INDEX ops_state ON ops(run_id, state);
    CREATE TABLE gates (
        run_id TEXT NOT NULL, wave INTEGER NOT NULL, kind TEXT NOT NULL, passed INTEGER,
        reasons TEXT NOT NULL DEFAULT '', at TEXT NOT NULL, PRIMARY KEY (run_id, wave, kind)
    );
    CREATE TABLE plans (
        run_id TEXT NOT NULL, version INTEGER NOT NULL, created TEXT NOT NULL, reason TEXT NOT NULL,
        plan_json TEXT NOT NULL, PRIMARY KEY (run_id, version)
    );
    CREATE TABLE durations (name TEXT PRIMARY KEY, model_json TEXT NOT NULL, updated TEXT NOT NULL);
    """,
    # 2: host leases
    """
    CREATE TABLE leases (
        host TEXT PRIMARY KEY, run_id TEXT NOT NULL, expires REAL NOT NULL, taken TEXT NOT NULL
    );
    CREATE INDEX leases_run ON leases(run_id);
    """,
    # 3: recurring schedules (sysflow.schedule): definitions, one claim per occurrence, history
    """
    CREATE TABLE schedules (
        name TEXT PRIMARY KEY, spec_json TEXT NOT NULL, workflow_json TEXT NOT NULL,
        inventory_json TEXT NOT NULL, state TEXT NOT NULL, cursor TEXT NOT NULL, created TEXT NOT NULL
    );
    CREATE TABLE schedule_claims (
        schedule TEXT NOT NULL, occurrence TEXT NOT NULL, state TEXT NOT NULL, due TEXT NOT NULL,
        owner TEXT NOT NULL, claimed TEXT NOT NULL, run_id TEXT, PRIMARY KEY (schedule, occurrence)
    );
    CREATE TABLE schedule_history (
        id INTEGER PRIMARY KEY AUTOINCREMENT, schedule TEXT NOT NULL, occurrence TEXT NOT NULL,
        at TEXT NOT NULL, event TEXT NOT NULL, run_id TEXT, detail TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX schedule_history_name ON schedule_history(schedule, id);
    """,
    # 4: the controller that owns a run (host, pid, process start, claim token, since, heartbeat);
    #    leases name the claim that holds them
    """
    ALTER TABLE runs ADD COLUMN owner_host TEXT;
    ALTER TABLE runs ADD COLUMN owner_pid INTEGER;
    ALTER TABLE runs ADD COLUMN owner_start TEXT;
    ALTER TABLE runs ADD COLUMN owner_token TEXT;
    ALTER TABLE runs ADD COLUMN owner_since TEXT;
    ALTER TABLE runs ADD COLUMN heartbeat REAL;
    ALTER TABLE leases ADD COLUMN owner TEXT NOT NULL DEFAULT '';
    """,
)

_RUN_COLUMNS = (
    "id, workflow, workflow_json, inventory_json, status, created, updated, reason, failed_wave, wave,"
    " pid, options_json, owner_host, owner_pid, owner_start, owner_token, owner_since, heartbeat"
)


@dataclass(frozen=True, slots=True)
class RunRow:
    """A run as stored."""

    id: str
    workflow: str
    workflow_json: str
    inventory_json: str
    status: RunStatus
    created: str
    updated: str
    reason: str
    failed_wave: int | None
    wave: int
    pid: int | None
    options: Mapping[str, Any]
    owner: Owner | None = None  # the controller that owns the run (None: nobody, e.g. it finished)
    heartbeat: float | None = None  # when the owner last said it lives (epoch seconds)


class RunStore:
    """Runs, operations, gates, plans, durations and leases in one SQLite file (or ``:memory:``)."""

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
                for statement in _MIGRATIONS[number].split(";"):
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
                self._db.executemany(_UPDATE_OP, self._records.values())
                self._records.clear()
            if self._pending:
                self._db.execute("COMMIT")
                self._pending = False

    def _begin(self) -> None:
        if not self._pending:
            self._db.execute("BEGIN IMMEDIATE")
            self._pending = True

    def close(self) -> None:
        """Commit, give up the runs this store object still owns (its controller is done with
        them: a run it did not finish can be resumed at once), and close the file."""
        with self._lock:
            for run_id in list(self._claims):
                self.disown(run_id)
            self.commit()
            self._db.close()

    def __enter__(self) -> RunStore:
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

    # -- runs -------------------------------------------------------------------------------------

    def create_run(
        self,
        run_id: str,
        workflow: str,
        workflow_json: str,
        inventory_json: str,
        ops: Iterable[OpRecord],
        *,
        at: datetime,
        options: Mapping[str, Any] | None = None,
        owner: Owner | None = None,
    ) -> None:
        """Record a new run and all its operations (pending), durably; ``owner`` owns it from here.

        A run id already in the store is refused: ``RunOwned`` while a live controller owns it,
        else ``StoreError`` (continue it with ``resume``)."""
        now = at.isoformat()
        with self._lock:
            self.commit()
            row = self._db.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id=?", (run_id,)).fetchone()
            if row is not None:
                found = _run_row(row)
                if found.owner is not None and owner_alive(
                    found.owner, found.heartbeat, now=time.time(), ttl=DEFAULT_OWNER_TTL
                ):
                    raise _owned(run_id, found.owner, found.heartbeat)
                raise StoreError(f"run {run_id!r} is already in {self.path}: resume it instead")
        self._write(
            "INSERT INTO runs (id, workflow, workflow_json, inventory_json, status, created, updated, pid,"
            " options_json, owner_host, owner_pid, owner_start, owner_token, owner_since, heartbeat)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                run_id,
                workflow,
                workflow_json,
                inventory_json,
                RunStatus.PENDING.value,
                now,
                now,
                os.getpid(),
                json.dumps(dict(options or {})),
                *(_owner_values(owner) if owner is not None else (None,) * 5),
                time.time() if owner is not None else None,
            ),
        )
        if owner is not None:
            self._claims[run_id] = owner.token
        self._writemany(
            "INSERT INTO ops (run_id, op_id, host, task, wave, state, command) VALUES (?,?,?,?,?,?,?)",
            ((run_id, r.op_id, r.host, r.task, r.wave, r.state.value, r.command) for r in ops),
        )
        self.commit()

    def set_status(self, run_id: str, status: RunStatus, *, at: datetime, reason: str = "") -> None:
        """The run's status; a controller that lost the run to a takeover writes nothing."""
        token = self._claims.get(run_id)
        self._write(
            "UPDATE runs SET status=?, updated=?, reason=CASE WHEN ?='' THEN reason ELSE ? END, pid=? WHERE id=?"
            + (" AND owner_token=?" if token is not None else ""),
            (status.value, at.isoformat(), reason, reason, os.getpid(), run_id)
            + ((token,) if token is not None else ()),
        )
        self.commit()

    # -- ownership --------------------------------------------------------------------------------

    def claim_run(self, run_id: str, owner: Owner, *, ttl: float = DEFAULT_OWNER_TTL) -> Owner | None:
        """Make ``owner`` the owner of ``run_id``: atomically, only when its current owner is gone or
        silent (see :func:`owner_alive`); returns the owner taken over (None: it had none). A live
        owner makes it raise ``RunOwned`` naming it (host, pid, since)."""
        with self.immediate() as db:
            row = db.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id=?", (run_id,)).fetchone()
            if row is None:
                raise StoreError(f"no run {run_id!r} in {self.path}")
            found = _run_row(row)
            previous = found.owner
            if (
                previous is not None
                and previous.token != owner.token
                and owner_alive(previous, found.heartbeat, now=time.time(), ttl=ttl)
            ):
                raise _owned(run_id, previous, found.heartbeat)
            db.execute(
                "UPDATE runs SET owner_host=?, owner_pid=?, owner_start=?, owner_token=?, owner_since=?,"
                " heartbeat=? WHERE id=?",
                (*_owner_values(owner), time.time(), run_id),
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
        row = self._db.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id=?", (run_id,)).fetchone()
        found = _run_row(row) if row is not None else None
        if found is not None and found.owner is not None and found.owner.token == self._claims.get(run_id):
            return  # still ours: the operation row is not there (nothing to fence)
        self._claims.pop(run_id, None)
        self._lost.add(run_id)
        owner = found.owner if found is not None else None
        if owner is None:
            owner = Owner("nobody", 0, "", "", "")  # released by another process: still not ours
        raise _owned(run_id, owner, found.heartbeat if found is not None else None, lost=True)

    def set_position(
        self, run_id: str, wave: int, *, failed_wave: int | None = None, reason: str = ""
    ) -> None:
        self._write(
            "UPDATE runs SET wave=?, failed_wave=COALESCE(?, failed_wave),"
            " reason=CASE WHEN ?='' THEN reason ELSE ? END WHERE id=?",
            (wave, failed_wave, reason, reason, run_id),
        )

    def run(self, run_id: str) -> RunRow:
        row = self._db.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            raise StoreError(f"no run {run_id!r} in {self.path}")
        return _run_row(row)

    def runs(self, *, status: RunStatus | None = None) -> list[RunRow]:
        sql = f"SELECT {_RUN_COLUMNS} FROM runs" + (" WHERE status=?" if status else "") + " ORDER BY created"
        return [_run_row(r) for r in self._db.execute(sql, (status.value,) if status else ())]

    # -- operations -------------------------------------------------------------------------------

    def add_op(self, run_id: str, record: OpRecord) -> None:
        """An operation created while running (an ``on_failure`` branch task): pending until started."""
        self._write(
            "INSERT OR IGNORE INTO ops (run_id, op_id, host, task, wave, state, command) VALUES (?,?,?,?,?,?,?)",
            (run_id, record.op_id, record.host, record.task, record.wave, record.state.value, record.command),
        )

    def op_started(self, run_id: str, op_id: str, *, at: datetime, attempt: int, command: str) -> None:
        """Write-ahead: the operation is running (commit before the command is sent)."""
        token = self._claims.get(run_id)
        with self._lock:
            self._records.pop((run_id, op_id), None)  # this newer state supersedes a buffered one
            self._begin()  # the write lock is held from here to the commit: the fence cannot go stale
            cur = self._db.execute(
                "UPDATE ops SET state=?, start=?, attempts=?, command=? WHERE run_id=? AND op_id=?"
                + (" AND EXISTS (SELECT 1 FROM runs WHERE id=? AND owner_token=?)" if token else ""),
                (OpState.RUNNING.value, at.isoformat(), attempt, command, run_id, op_id)
                + ((run_id, token) if token else ()),
            )
            if token:
                self._fence(run_id, cur)

    def op_record(self, run_id: str, record: OpRecord) -> None:
        """The operation's record as it is now (finished, skipped, rolled back, unknown).

        Buffered: written with the next commit, which comes before anything acts on it (the next
        operation's write-ahead, a status change, the end of the run).
        """
        with self._lock:
            self._records[(run_id, record.op_id)] = (
                record.state.value,
                record.start.isoformat() if record.start else None,
                record.end.isoformat() if record.end else None,
                record.exit_status,
                record.error,
                record.stdout[:_OUTPUT_KEEP],
                record.stderr[:_OUTPUT_KEEP],
                record.attempts,
                record.reason,
                record.command,
                run_id,
                record.op_id,
            )

    def ops(self, run_id: str) -> dict[str, OpRecord]:
        self.commit()
        rows = self._db.execute(
            "SELECT op_id, host, task, wave, state, command, start, end, exit_status, error, stdout, stderr,"
            " attempts, reason FROM ops WHERE run_id=?",
            (run_id,),
        )
        return {r[0]: _op_record(r) for r in rows}

    # -- gates, approvals, plans, durations -------------------------------------------------------

    def gate(
        self, run_id: str, wave: int, kind: str, passed: bool | None, reasons: Sequence[str], *, at: datetime
    ) -> None:
        """A gate verdict or an approval (``kind``) for ``wave``."""
        self._write(
            "INSERT OR REPLACE INTO gates VALUES (?,?,?,?,?,?)",
            (
                run_id,
                wave,
                kind,
                None if passed is None else int(passed),
                json.dumps(list(reasons)),
                at.isoformat(),
            ),
        )
        self.commit()

    def gates(self, run_id: str) -> dict[tuple[int, str], tuple[bool | None, list[str]]]:
        rows = self._db.execute("SELECT wave, kind, passed, reasons FROM gates WHERE run_id=?", (run_id,))
        return {(w, k): (None if p is None else bool(p), json.loads(r)) for w, k, p, r in rows}

    def add_plan(self, run_id: str, plan_json: str, reason: str, *, at: datetime) -> int:
        """Record a plan version; returns its number (1 for the first)."""
        with self._lock:
            row = self._db.execute("SELECT MAX(version) FROM plans WHERE run_id=?", (run_id,)).fetchone()
            version = int(row[0] or 0) + 1
            self._write(
                "INSERT INTO plans VALUES (?,?,?,?,?)", (run_id, version, at.isoformat(), reason, plan_json)
            )
        self.commit()
        return version

    def plans(self, run_id: str) -> list[tuple[int, str, str]]:
        """(version, reason, plan JSON) of every plan of a run."""
        rows = self._db.execute(
            "SELECT version, reason, plan_json FROM plans WHERE run_id=? ORDER BY version", (run_id,)
        )
        return [(int(v), str(r), str(p)) for v, r, p in rows]

    def save_durations(self, name: str, model_json: str, *, at: datetime) -> None:
        self._write("INSERT OR REPLACE INTO durations VALUES (?,?,?)", (name, model_json, at.isoformat()))
        self.commit()

    def load_durations(self, name: str) -> str | None:
        row = self._db.execute("SELECT model_json FROM durations WHERE name=?", (name,)).fetchone()
        return None if row is None else str(row[0])

    # -- leases -----------------------------------------------------------------------------------

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


def _owner_values(owner: Owner) -> tuple[str, int, str, str, str]:
    return (owner.host, owner.pid, owner.start, owner.token, owner.since)


def _owned(run_id: str, owner: Owner, heartbeat: float | None, *, lost: bool = False) -> RunOwned:
    age = None if heartbeat is None else max(0.0, time.time() - heartbeat)
    beat = "" if age is None else f", heartbeat {age:.0f}s ago"
    what = "was taken over by" if lost else "is owned by a live controller:"
    return RunOwned(
        f"run {run_id} {what} {owner.describe()}{beat}",
        run_id=run_id,
        host=owner.host,
        pid=owner.pid,
        since=owner.since,
        heartbeat_age=age,
    )


def _run_row(row: Sequence[Any]) -> RunRow:
    owner = (
        Owner(row[12], int(row[13]), row[14] or "", row[15], row[16] or "")
        if row[15] is not None and row[12] is not None and row[13] is not None
        else None
    )
    return RunRow(
        id=row[0],
        workflow=row[1],
        workflow_json=row[2],
        inventory_json=row[3],
        status=RunStatus(row[4]),
        created=row[5],
        updated=row[6],
        reason=row[7],
        failed_wave=row[8],
        wave=int(row[9]),
        pid=row[10],
        options=json.loads(row[11] or "{}"),
        owner=owner,
        heartbeat=row[17],
    )


def _op_record(r: Sequence[Any]) -> OpRecord:
    return OpRecord(
        op_id=r[0],
        host=r[1],
        task=r[2],
        wave=int(r[3]),
        state=OpState(r[4]),
        command=r[5] or "",
        start=datetime.fromisoformat(r[6]) if r[6] else None,
        end=datetime.fromisoformat(r[7]) if r[7] else None,
        exit_status=r[8],
        error=r[9],
        stdout=r[10] or "",
        stderr=r[11] or "",
        attempts=int(r[12] or 0),
        reason=r[13] or "",
    )
