"""Fixtures the CLI tests share."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def etc() -> Iterator[Path]:
    """A root-owned directory the non-root login can read but not write (like /etc)."""
    path = Path(tempfile.mkdtemp(prefix="sysflow-etc-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)
