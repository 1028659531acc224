"""``sysflow audit verify | query | export``: check the keyed chain, read records, feed a SIEM.

The typer commands (``audit_app``) over thin functions on :class:`sysflow.audit.log.AuditLog`,
always opened read-only; exit codes 0 intact / found, 1 tampered or not an audit log, 2 no path,
3 no such file.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import IO, Annotated

import typer

from sysflow.audit.log import AuditLog, AuditRecord
from sysflow.cli.commands import EXIT_INVALID, EXIT_USAGE, exit_with, guard
from sysflow.clock import utc

__all__ = ["audit_app", "open_log", "parse_since", "query_lines", "verify_log"]

audit_app = typer.Typer(
    name="audit",
    help="Check and read the tamper-evident audit log.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DbArg = Annotated[
    Path | None, typer.Argument(help="Audit log (SQLite); or give it as --db.", show_default=False)
]
DbOpt = Annotated[Path | None, typer.Option("--db", help="Audit log (SQLite), the same as PATH.")]

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


# -- the commands -------------------------------------------------------------------------------


def _audit_db(what: str, path: Path | None, db: Path | None) -> Path:
    """The audit log given positionally or as ``--db`` (once; a usage error otherwise)."""
    if path is not None and db is not None and path != db:
        exit_with(EXIT_USAGE, f"{what}: two audit logs given ({path} and --db {db}); give one")
    chosen = path if path is not None else db
    if chosen is None:
        exit_with(EXIT_USAGE, f"{what}: which audit log? give its path: sysflow {what} audit.db")
    return chosen


@audit_app.command("verify")
def audit_verify(
    path: DbArg = None,
    db: DbOpt = None,
    key_file: Annotated[
        Path | None,
        typer.Option(
            "--key-file",
            help="Audit key the log was written with (default: $SYSFLOW_AUDIT_KEY_FILE, else "
            "/var/lib/sysflow/audit.key for root, ~/.local/state/sysflow/audit.key otherwise).",
        ),
    ] = None,
    bundle: Annotated[
        Path | None, typer.Option("--bundle", help="Check this signed bundle offline instead of a log.")
    ] = None,
) -> None:
    """Check the keyed chain against its signed head (<db>.head); name the first bad record.

    Detects edited, removed, reordered or re-hashed records, truncation, an older copy of the
    database put back and a database swapped with another log's. Opens the file read-only.

    Examples:

      sysflow audit verify audit.db

      sysflow audit verify /srv/audit.db --key-file /root/audit.key

    Exit codes: 0 intact, 1 tampered, not an audit log or no key, 2 no path given, 3 no such file.
    """
    with guard("audit verify"):
        if bundle is not None:
            from sysflow.cli.audit_bundle import verify_bundle_file

            intact, line = verify_bundle_file(bundle, key_file=key_file)
        else:
            intact, line = verify_log(_audit_db("audit verify", path, db), key_file=key_file)
    if not intact:
        exit_with(EXIT_INVALID, line)
    typer.echo(line)


@audit_app.command("query")
def audit_query(
    path: DbArg = None,
    db: DbOpt = None,
    run_id: Annotated[str | None, typer.Option("--run", help="Only this run.")] = None,
    host: Annotated[str | None, typer.Option("--host", help="Only this host.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Only from this ISO 8601 time.")] = None,
    json_lines: Annotated[bool, typer.Option("--json", help="JSON Lines instead of text.")] = False,
) -> None:
    """Print audit records of a run, a host and/or since a time.

    Examples:

      sysflow audit query audit.db --run RUN --host web01.example.com

      sysflow audit query audit.db --since 2026-11-29T01:00 --json

    Exit codes: 0 ok, 1 bad --since or not an audit log, 2 no path given, 3 no such file.
    """
    log = _audit_db("audit query", path, db)
    with guard("audit query"):
        for line in query_lines(query(log, run=run_id, host=host, since=since), as_json=json_lines):
            typer.echo(line)


@audit_app.command("export")
def audit_export(
    path: DbArg = None,
    db: DbOpt = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="File (default: stdout).")] = None,
    run_id: Annotated[str | None, typer.Option("--run", help="Only this run.")] = None,
    host: Annotated[str | None, typer.Option("--host", help="Only this host.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Only from this ISO 8601 time.")] = None,
) -> None:
    """Export audit records as JSON Lines (for a SIEM).

    Examples:

      sysflow audit export audit.db -o audit.jsonl

    Exit codes: 0 ok, 1 bad --since or not an audit log, 2 no path given, 3 no such file.
    """
    log = _audit_db("audit export", path, db)
    with guard("audit export"):
        if out is None:
            export(log, sys.stdout, run=run_id, host=host, since=since)
            return
        if out.is_dir():
            exit_with(EXIT_INVALID, f"error: -o {out} is a directory; give a file to write")
        with out.open("w", encoding="utf-8") as fh:
            n = export(log, fh, run=run_id, host=host, since=since)
        typer.echo(f"wrote {n} records to {out}", err=True)


@audit_app.command("bundle")
def audit_bundle(
    out: Annotated[Path, typer.Option("--out", "-o", help="Bundle file to write (JSON).")],
    path: DbArg = None,
    db: DbOpt = None,
    run_id: Annotated[str | None, typer.Option("--run", help="Only this run.")] = None,
    key_file: Annotated[Path | None, typer.Option("--key-file", help="Audit key (as for verify).")] = None,
) -> None:
    """Export a run's records and the chain head as a signed bundle (sysflow audit verify --bundle).

    Exit codes: 0 ok, 1 tampered log or no key, 2 no path given, 3 no such file.
    """
    from sysflow.cli.audit_bundle import write_bundle

    log = _audit_db("audit bundle", path, db)
    with guard("audit bundle"):
        n = write_bundle(log, out, run=run_id, key_file=key_file)
    typer.echo(f"wrote {n} records to {out}", err=True)
