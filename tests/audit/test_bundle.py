"""A run's records exported as a signed bundle, verified offline (no database); every edit detected."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sysflow.audit.bundle import make_bundle, verify_bundle
from sysflow.audit.keys import load_key
from sysflow.audit.log import AuditLog
from sysflow.cli.root import app

AT = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)
runner = CliRunner()


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    db = tmp_path / "audit.db"
    with AuditLog(db, forward=[]) as log:
        for i in range(4):
            log.append("run-a", "op_finished", at=AT, host=f"h{i}", task="patch", outcome="succeeded")
            log.append("run-b", "op_finished", at=AT, host=f"h{i}", task="reboot", outcome="succeeded")
        log.append("run-a", "run_finished", at=AT, outcome="completed")
    out = tmp_path / "run-a.bundle.json"
    made = runner.invoke(app, ["audit", "bundle", str(db), "--run", "run-a", "-o", str(out)])
    assert made.exit_code == 0, made.output
    assert "wrote 5 records" in made.stderr
    db.unlink()  # offline: the bundle alone
    return out


def verify(path: Path) -> tuple[int, str]:
    result = runner.invoke(app, ["audit", "verify", "--bundle", str(path)])
    return result.exit_code, result.output


def edited(path: Path, change: Any) -> Path:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))
    return path


def test_a_bundle_verifies_offline(bundle: Path) -> None:
    code, output = verify(bundle)
    assert code == 0, output
    assert "intact, 5 records of run run-a" in output
    assert [r["run_id"] for r in json.loads(bundle.read_text())["records"]] == ["run-a"] * 5


def _set(key: str, value: Any) -> Any:
    return lambda doc: doc["records"][1].__setitem__(key, value)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (_set("outcome", "failed"), "signature does not match"),
        (_set("host", "other"), "signature does not match"),
        (lambda d: d["records"].pop(2), "signature does not match"),
        (lambda d: d["records"].reverse(), "signature does not match"),
        (lambda d: d["head"].__setitem__("count", 3), "signature does not match"),
        (lambda d: d.__setitem__("run", "run-b"), "signature does not match"),
        (lambda d: d.__setitem__("format", "x"), "unknown bundle format"),
        (lambda d: d.__setitem__("key_id", "0" * 16), "another audit key"),
        (lambda d: d.pop("signature"), "not a sysflow audit bundle"),
    ],
)
def test_any_edit_is_detected(bundle: Path, change: Any, reason: str) -> None:
    code, output = verify(edited(bundle, change))
    assert code == 1
    assert "TAMPERED" in output and reason in output


def test_a_record_edited_and_the_bundle_re_signed_is_still_caught_by_its_mac(
    bundle: Path, audit_key_file: Path
) -> None:
    """Whoever holds the key can re-sign a bundle, but not make an edited record's MAC match; nor
    can records be moved past the head or between runs without the checks below noticing."""
    from sysflow.audit.bundle import _signature

    key = load_key(audit_key_file)

    def resign(change: Any) -> str:
        doc = json.loads(bundle.read_text())
        change(doc)
        doc["signature"] = _signature(key, doc)
        breach = verify_bundle(doc, key)
        assert breach is not None
        return str(breach)

    assert "MAC does not match" in resign(_set("detail", "nothing happened"))
    assert "reordered" in resign(lambda d: d["records"].reverse())
    assert "past the chain head" in resign(
        lambda d: d["head"].update(count=2, signature=_head_sig(key, d, 2))
    )
    assert "chain head is not signed" in resign(lambda d: d["head"].update(count=2))
    assert "belongs to run run-a, not run-b" in resign(lambda d: d.update(run="run-b"))


def _head_sig(key: bytes, doc: dict[str, Any], count: int) -> str:
    from sysflow.audit.head import Head

    return Head(doc["log_id"], count, doc["head"]["mac"]).signature(key)


def test_consecutive_records_must_chain_and_the_last_must_be_the_head(tmp_path: Path) -> None:
    from sysflow.audit.bundle import _signature

    key = b"k" * 32
    with AuditLog(tmp_path / "a.db", key=key, forward=[]) as log:
        for i in range(3):
            log.append("r", "op", at=AT, detail=str(i))
        doc = make_bundle(log, key)
    assert verify_bundle(doc, key) is None
    doc["records"][2]["prev_mac"] = doc["records"][0]["mac"]
    doc["records"][2]["mac"] = log._chain.mac(doc["records"][0]["mac"], _content(doc["records"][2]))  # type: ignore[union-attr]
    doc["signature"] = _signature(key, doc)
    assert "does not follow record 2" in str(verify_bundle(doc, key))
    doc = make_bundle(AuditLog(tmp_path / "a.db", key=key, read_only=True), key)
    doc["head"]["mac"] = "0" * 64
    from sysflow.audit.head import Head

    doc["head"]["signature"] = Head(doc["log_id"], 3, "0" * 64).signature(key)
    doc["signature"] = _signature(key, doc)
    assert "not the one the chain head names" in str(verify_bundle(doc, key))


def _content(row: dict[str, Any]) -> str:
    from sysflow.audit.records import AuditRecord

    return AuditRecord(**row).content()


def test_no_bundle_from_a_tampered_log_and_not_json(tmp_path: Path) -> None:
    key = b"k" * 32
    with AuditLog(tmp_path / "a.db", key=key, forward=[]) as log:
        log.append("r", "op", at=AT)
    (tmp_path / "a.db.head").unlink()
    with pytest.raises(ValueError, match="will not export a tampered log"):
        make_bundle(AuditLog(tmp_path / "a.db", key=key, read_only=True), key)
    junk = tmp_path / "junk.json"
    junk.write_text("{")
    assert verify(junk)[0] == 1
