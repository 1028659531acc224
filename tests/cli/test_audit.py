"""``sysflow audit verify | query | export`` and their exit codes; wrong files through the real CLI.

Five wrong files (a text file, another SQLite database, an empty file, a directory, a missing path)
give one line on stderr, no traceback, a non-zero exit, and stay byte-identical: ``audit verify`` opens
the file read-only and creates nothing, not even SQLite's side files.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sysflow.audit.keys import KEY_ENV
from sysflow.audit.log import AuditLog, NotAnAuditLog
from sysflow.cli import app
from sysflow.engine.store import RunStore

T0 = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)
runner = CliRunner()
SYSFLOW = [sys.executable, "-m", "sysflow"]


@pytest.fixture(autouse=True)
def key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's own audit key (never the operator's)."""
    path = tmp_path / "keys" / "audit.key"
    monkeypatch.setenv(KEY_ENV, str(path))
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "audit.db"
    with AuditLog(path, who="alice") as log:
        for i, (run, host) in enumerate([("r1", "web01"), ("r1", "web02"), ("r2", "web01"), ("r2", None)]):
            log.append(
                run, "op_finished", at=T0 + timedelta(minutes=i), host=host, task="t", outcome="exit 0"
            )
    return path


def _tamper(path: Path, sql: str) -> None:
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("DROP TRIGGER audit_no_update")
    con.execute("DROP TRIGGER audit_no_delete")
    con.execute(sql)
    con.close()


def test_verify_intact(db: Path) -> None:
    result = runner.invoke(app, ["audit", "verify", "--db", str(db)])
    assert result.exit_code == 0
    assert result.output.strip() == f"{db}: intact, 4 records"


@pytest.mark.parametrize(
    ("sql", "why"),
    [
        ("UPDATE audit SET outcome='exit 1' WHERE id=2", "record 2: its MAC does not match its content"),
        ("DELETE FROM audit WHERE id=3", "record 4: record 3 was expected here"),  # removed
        ("UPDATE audit SET id=id+10 WHERE id IN (2, 3)", "record 4: record 2 was expected here"),  # reordered
        ("DELETE FROM audit WHERE id=4", "truncated: head says 4 records, database holds 3"),  # the last
    ],
)
def test_verify_names_the_first_bad_record(db: Path, sql: str, why: str) -> None:
    _tamper(db, sql)
    result = runner.invoke(app, ["audit", "verify", "--db", str(db)])
    assert result.exit_code == 1
    assert result.output.startswith(f"{db}: TAMPERED: {why}")
    assert len(result.output.splitlines()) == 1


def test_verify_missing_file_is_not_found(tmp_path: Path) -> None:
    result = runner.invoke(app, ["audit", "verify", "--db", str(tmp_path / "nope.db")])
    assert result.exit_code == 3
    assert result.output.strip() == f"error: no audit log at {tmp_path / 'nope.db'}"
    assert not (tmp_path / "nope.db").exists()


def test_query_filters(db: Path) -> None:
    result = runner.invoke(app, ["audit", "query", "--db", str(db), "--run", "r1"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert len(lines) == 2 and all(" r1 " in line for line in lines) and "alice" in lines[0]
    assert "web01 t -> exit 0" in lines[0]
    by_host = runner.invoke(app, ["audit", "query", "--db", str(db), "--host", "web01", "--json"])
    rows = [json.loads(line) for line in by_host.output.splitlines()]
    assert [(r["run_id"], r["id"]) for r in rows] == [("r1", 1), ("r2", 3)]
    since = runner.invoke(app, ["audit", "query", "--db", str(db), "--since", "2026-11-29T01:02"])
    assert [line.split()[0] for line in since.output.splitlines()] == ["3", "4"]
    assert " - " in since.output.splitlines()[1]  # a record without a host


def test_query_bad_since_is_invalid(db: Path) -> None:
    result = runner.invoke(app, ["audit", "query", "--db", str(db), "--since", "yesterday"])
    assert result.exit_code == 1
    assert result.output.strip() == "error: --since: not an ISO 8601 time: 'yesterday'"


def test_export_to_file_and_stdout(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "audit.jsonl"
    result = runner.invoke(app, ["audit", "export", "--db", str(db), "-o", str(out)])
    assert result.exit_code == 0 and "wrote 4 records" in result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [1, 2, 3, 4] and rows[1]["prev_mac"] == rows[0]["mac"]
    stdout = runner.invoke(app, ["audit", "export", "--db", str(db), "--host", "web02"])
    assert stdout.exit_code == 0
    assert [json.loads(line)["host"] for line in stdout.output.splitlines()] == ["web02"]


def test_audit_help_has_examples() -> None:
    for command in ("verify", "query", "export"):
        result = runner.invoke(app, ["audit", command, "--help"])
        assert result.exit_code == 0 and "Examples" in result.output and "Exit codes" in result.output
    assert runner.invoke(app, ["audit", "nope"]).exit_code == 2


def test_verify_with_another_key_file_says_so(db: Path, tmp_path: Path, key_file: Path) -> None:
    other = tmp_path / "elsewhere" / "audit.key"
    other.parent.mkdir()
    other.write_text("ab" * 32)
    other.chmod(0o600)
    result = runner.invoke(app, ["audit", "verify", "--db", str(db), "--key-file", str(other)])
    assert result.exit_code == 1
    assert "written with another audit key" in result.output and str(other) in result.output
    ok = runner.invoke(app, ["audit", "verify", "--db", str(db), "--key-file", str(key_file)])
    assert (ok.exit_code, ok.output) == (0, f"{db}: intact, 4 records\n")
    key_hex = key_file.read_text().strip()
    assert key_hex not in result.output + ok.output  # the key itself is never printed


def test_verify_without_the_key_is_one_line_and_creates_no_key(db: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir" / "audit.key"
    result = runner.invoke(app, ["audit", "verify", "--db", str(db), "--key-file", str(missing)])
    assert result.exit_code == 1
    assert result.output == f"error: no audit key at {missing} (the key the log was written with)\n"
    assert not missing.parent.exists()


# -- wrong files through the real CLI (a subprocess) ------------------------------------------------


def _text_file(tmp_path: Path) -> Path:
    path = tmp_path / "passwd"
    path.write_text("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n")
    return path


def _run_store(tmp_path: Path) -> Path:
    path = tmp_path / "state.db"
    RunStore(path).close()
    return path


def _empty_file(tmp_path: Path) -> Path:
    path = tmp_path / "empty.db"
    path.touch()
    return path


def _directory(tmp_path: Path) -> Path:
    path = tmp_path / "a-directory"
    path.mkdir()
    return path


def _missing(tmp_path: Path) -> Path:
    return tmp_path / "missing.db"


WRONG_FILES = [
    (_text_file, 1, "is not an audit log (not a SQLite database)"),
    (_run_store, 1, "is not an audit log (it holds "),
    (_empty_file, 1, "is an empty file, not an audit log"),
    (_directory, 1, "is a directory, not an audit log"),
    (_missing, 3, "no audit log at"),
]


def _snapshot(tmp_path: Path) -> dict[str, tuple[bytes, int] | None]:
    """Every entry under tmp_path (but the key directory): its bytes (files) and mtime."""
    found: dict[str, tuple[bytes, int] | None] = {}
    for p in sorted(tmp_path.rglob("*")):
        if "keys" in p.relative_to(tmp_path).parts:
            continue
        found[str(p.relative_to(tmp_path))] = (p.read_bytes() if p.is_file() else b"", p.stat().st_mtime_ns)
    return found


@pytest.mark.parametrize("command", ["verify", "query", "export"])
@pytest.mark.parametrize(
    ("make", "code", "message"), WRONG_FILES, ids=[w[0].__name__[1:] for w in WRONG_FILES]
)
def test_a_wrong_file_is_one_line_and_left_untouched(
    tmp_path: Path, key_file: Path, command: str, make: object, code: int, message: str
) -> None:
    assert callable(make)
    path = make(tmp_path)
    before = _snapshot(tmp_path)
    env = {**os.environ, KEY_ENV: str(key_file)}
    done = subprocess.run(
        [*SYSFLOW, "audit", command, "--db", str(path)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == code
    assert done.stdout == ""
    assert done.stderr.startswith("error: ") and message in done.stderr and str(path) in done.stderr
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr
    assert _snapshot(tmp_path) == before  # byte-identical, same mtimes, no -wal/-shm/.head created
    assert not key_file.exists()  # reading never creates a key


@pytest.mark.parametrize(("make", "message"), [(w[0], w[2]) for w in WRONG_FILES[:2] + WRONG_FILES[3:4]])
def test_a_writer_refuses_a_wrong_file_and_leaves_it_untouched(
    tmp_path: Path, make: object, message: str
) -> None:
    """``sysflow run --audit state.db`` (a mistake) must not turn the run store into an audit log."""
    assert callable(make)
    path = make(tmp_path)
    before = _snapshot(tmp_path)
    with pytest.raises(NotAnAuditLog, match=message.replace("(", r"\(").replace(")", r"\)")):
        AuditLog(path)
    assert _snapshot(tmp_path) == before
