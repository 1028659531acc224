"""The run store's schema: versioned migrations, the run row, and rows back into values."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sysflow.engine.owners import Owner
from sysflow.engine.result import OpRecord
from sysflow.engine.states import OpState, RunStatus

__all__ = [
    "MIGRATIONS",
    "OUTPUT_KEEP",
    "RUN_COLUMNS",
    "SCHEMA_VERSION",
    "UPDATE_OP",
    "RunRow",
    "op_record",
    "run_row",
]

SCHEMA_VERSION = 4

OUTPUT_KEEP = 4096  # characters of stdout/stderr kept per operation in the store (head), digest aside

UPDATE_OP = (
    "UPDATE ops SET state=?, start=?, end=?, exit_status=?, error=?, stdout=?, stderr=?, attempts=?,"
    " reason=?, command=? WHERE run_id=? AND op_id=?"
)

MIGRATIONS: tuple[str, ...] = (
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

RUN_COLUMNS = (
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


def run_row(row: Sequence[Any]) -> RunRow:
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


def op_record(r: Sequence[Any]) -> OpRecord:
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
