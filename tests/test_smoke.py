"""The package imports cheaply and its facade is consistent."""

from __future__ import annotations

import subprocess
import sys

import sysflow


def test_import_does_not_pull_heavy_dependencies() -> None:
    code = "import sys, sysflow; print(','.join(m for m in ('ortools','ray','matplotlib','asyncssh') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_all_is_sorted_and_importable() -> None:
    names = [n for n in sysflow.__all__ if n != "__version__"]
    assert names == sorted(names)
    for name in sysflow.__all__:
        assert hasattr(sysflow, name), name


def test_python_dash_m_sysflow_is_the_cli() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "sysflow", "--help"], capture_output=True, text=True, check=True
    )
    assert "Usage" in out.stdout
    assert "demo" in out.stdout
