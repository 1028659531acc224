"""``sysflow audit verify | query | export``: check the hash chain, read records, feed a SIEM.

Thin functions over :class:`sysflow.audit.log.AuditLog`; ``sysflow.cli`` maps their outcomes to
exit codes (0 intact / found, 1 tampered, 3 no such file).
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


def open_log(db: Path) -> AuditLog:
    """Open an existing audit log (never create one: a missing file is an error)."""
    if not db.is_file():
        raise FileNotFoundError(f"no audit log at {db}")
    return AuditLog(db)


def verify_log(db: Path) -> tuple[bool, str]:
    """(intact, the line to print)."""
    with open_log(db) as log:
        bad = log.verify()
        count = sum(1 for _ in log.records())
    if bad is None:
        return True, f"{db}: intact, {count} records"
    return False, f"{db}: TAMPERED: chain broken at record {bad} (of {count})"


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
