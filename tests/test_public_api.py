"""The package imports cheaply, its facade is small and consistent, and internals stay inside."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import sysflow
import sysflow.testing

INIT = Path(sysflow.__file__)


def _type_checking_imports() -> dict[str, str]:
    """Name → module of the imports under ``if TYPE_CHECKING:`` in sysflow/__init__.py."""
    tree = ast.parse(INIT.read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING")
    return {
        alias.name: node.module or ""
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }


def test_import_does_not_pull_heavy_dependencies() -> None:
    code = "import sys, sysflow; print(','.join(m for m in ('ortools','ray','matplotlib','asyncssh') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_all_lazy_table_and_type_checking_imports_name_the_same_objects() -> None:
    lazy = sysflow._LAZY
    assert sysflow.__all__ == sorted([*lazy, "__version__"])
    assert _type_checking_imports() == lazy
    for name, module in lazy.items():
        value = getattr(sysflow, name)
        assert value.__module__ == module, name


def test_the_facade_is_what_users_write_against_not_internals() -> None:
    internals = {"BackendRunner", "Grant", "Denied", "RunStore", "OpGraph", "HostPool", "Run", "Admission"}
    assert not internals & set(sysflow.__all__)
    assert len([n for n in sysflow.__all__ if not n.endswith(("Error", "Failed"))]) <= 50


@pytest.mark.parametrize("name", sorted(sysflow._LAZY))
def test_no_public_name_means_two_things(name: str) -> None:
    """A public name is the object's own name (``Workflow`` is the one documented alias)."""
    value = getattr(sysflow, name)
    assert value.__name__ in (name, "MaintenanceWorkflow" if name == "Workflow" else name)
    if name in sysflow.testing.__all__:
        assert getattr(sysflow.testing, name) is value


def test_testing_module_exports_fakes_and_clocks() -> None:
    for name in sysflow.testing.__all__:
        assert hasattr(sysflow.testing, name), name
    assert {"ManualClock", "VirtualClock", "ScriptedTransport", "SimTransport"} <= set(
        sysflow.testing.__all__
    )


def test_python_dash_m_sysflow_is_the_cli() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "sysflow", "--help"], capture_output=True, text=True, check=True
    )
    assert "Usage" in out.stdout
    assert "demo" in out.stdout


def test_unknown_and_changed_host_keys_are_different_errors() -> None:
    """Catching a changed key (possible interception) must not also catch a not-yet-known one."""
    assert issubclass(sysflow.HostKeyUnknown, sysflow.ConnectionFailed)
    assert not issubclass(sysflow.HostKeyUnknown, sysflow.HostKeyMismatch)
    assert "HostKeyUnknown" in sysflow.__all__
