"""``sysflow audit bundle`` and ``sysflow audit verify --bundle``: a run's records, signed, checked
offline (:mod:`sysflow.audit.bundle`). Both read the audit key (``--key-file``, else the default)."""

from __future__ import annotations

import json
from pathlib import Path

from sysflow.audit.bundle import make_bundle, verify_bundle
from sysflow.audit.keys import default_key_file, load_key
from sysflow.audit.log import AuditLog

__all__ = ["verify_bundle_file", "write_bundle"]


def write_bundle(db: Path, out: Path, *, run: str | None, key_file: Path | None) -> int:
    """Write the signed bundle of ``run`` (every record when None) to ``out``; how many records."""
    key = load_key(key_file or default_key_file())
    with AuditLog(db, read_only=True, key=key) as log:
        doc = make_bundle(log, key, run)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(out)
    return len(doc["records"])


def verify_bundle_file(path: Path, *, key_file: Path | None) -> tuple[bool, str]:
    """(intact, the line to print) for a bundle file, without its database."""
    key = load_key(key_file or default_key_file())
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError):
        return False, f"{path}: TAMPERED: not a JSON document"
    breach = verify_bundle(doc, key)
    if breach is not None:
        return False, f"{path}: TAMPERED: {breach}"
    run = f" of run {doc['run']}" if doc["run"] else ""
    return True, f"{path}: intact, {len(doc['records'])} records{run}, log {doc['log_id']}"
