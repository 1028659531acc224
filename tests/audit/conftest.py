"""Every audit test uses its own audit key file (``$SYSFLOW_AUDIT_KEY_FILE`` under tmp_path)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sysflow.audit.keys import KEY_ENV


@pytest.fixture(autouse=True)
def audit_key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "keys" / "audit.key"
    monkeypatch.setenv(KEY_ENV, str(path))
    return path
