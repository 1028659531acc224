"""``sysflow audit verify | query | export``: check the keyed chain, read records, feed a SIEM.

Thin functions over :class:`sysflow.audit.log.AuditLog`, always opened read-only; ``sysflow.cli``
maps their outcomes to exit codes (0 intact / found, 1 tampered or not an audit log, 3 no such file).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import IO

from sysflow.audit.log import AuditLog, AuditRecord
from sysflow.clock import utc

__all__ = ["open_log", "parse_since", "query_lines", "verify_log"]

Echo = Callable[[str], None]


def open_log(db: Path, *, key_file: Path | None = None) -> AuditLog:
    """Open an existing audit log read-only: never create one, never write to the file.

    A missing path raises ``FileNotFoundError`` (exit 3); a directory, an empty file, a file that is
    not SQLite or a database that is not an audit log raise ``NotAnAuditLog`` (exit 1), one line each.
    """
    return AuditLog(db, read_only=True, key_file=key_file)


def verify_log(db: Path, *, key_file: Path | None = None) -> tuple[bool, str]:
    """(intact, the line to print): the keyed chain checked against the signed head."""
    with open_log(db, key_file=key_file) as log:
        breach = log.verify()
        count = log.count()
    if breach is None:
        return True, f"{db}: intact, {count} records"
    return False, f"{db}: TAMPERED: {breach}"


def parse_since(text: str | None) -> datetime | None:
    """``--since`` as an ISO 8601 time (naive = UTC)."""
    if text is None:
        return None
    try:
        return utc(datetime.fromisoformat(text))
    except ValueError:
        raise ValueError(f"--since: not an ISO 8601 time: {text!r}") from None


def _line(rec: AuditRecord) -> str:
    where = rec.host or "-"
    task = f" {rec.task}" if rec.task else ""
    outcome = f" -> {rec.outcome}" if rec.outcome else ""
    detail = f": {rec.detail}" if rec.detail else ""
    return f"{rec.id:>6}  {rec.at}  {rec.who}  {rec.run_id}  {rec.action}  {where}{task}{outcome}{detail}"


def query(db: Path, *, run: str | None, host: str | None, since: str | None) -> list[AuditRecord]:
    with open_log(db) as log:
        return log.query(run=run, host=host, since=parse_since(since))


def query_lines(records: list[AuditRecord], *, as_json: bool) -> list[str]:
    """Records as aligned text lines, or as JSON Lines."""
    if as_json:
        return [json.dumps(asdict(r), sort_keys=True) for r in records]
    return [_line(r) for r in records]


def export(db: Path, out: IO[str], *, run: str | None, host: str | None, since: str | None) -> int:
    """Write (selected) records as JSON Lines; how many."""
    with open_log(db) as log:
        selected = None
        if run is not None or host is not None or since is not None:
            selected = log.query(run=run, host=host, since=parse_since(since))
        return log.export_jsonl(out, selected)
