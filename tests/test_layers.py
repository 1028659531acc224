"""The import graph follows DESIGN.md's layers: nothing imports upward, and the facade is imported by
nobody inside the package. Drawn from the code (every ``import``, lazy ones included)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import sysflow

ROOT = Path(sysflow.__file__).parent

# Each package and what it may import (besides clock, errors and transport, which everyone may).
ALLOWED: dict[str, set[str]] = {
    "model": set(),
    "constraints": {"model"},
    "planner": {"model", "constraints"},
    "actors": {"model"},
    "sim": {"model"},
    "verify": {"model"},
    "sources": {"model"},
    "patch": {"model"},
    "engine": {"model", "constraints", "planner", "actors", "verify"},
    "audit": {"engine"},
    "schedule": {"model", "constraints", "planner", "engine", "audit"},
    "lab": {"engine"},
    "cli": {
        "model",
        "constraints",
        "planner",
        "actors",
        "sim",
        "verify",
        "engine",
        "audit",
        "schedule",
        "lab",
        "sources",
        "patch",
        "service",  # sysflow serve and sysflow service token (lazily: the service is an optional extra)
    },
    "testing": {"engine", "sim"},
    # the service reuses the CLI's controls, inputs and run building blocks (one way to do each)
    "service": {"model", "planner", "actors", "engine", "audit", "schedule", "sim", "cli"},
}
BASE = {"clock", "errors", "transport"}


def _imports() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for path in ROOT.rglob("*.py"):
        src = path.relative_to(ROOT).parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] == "sysflow":
                    dst = parts[1] if len(parts) > 1 else "__init__"
                    if dst != src:
                        edges[src].add(dst)
    return edges


def test_no_package_imports_upward() -> None:
    edges = _imports()
    for src, targets in edges.items():
        if src in ("__init__", "__main__") or src in BASE:
            continue
        upward = targets - ALLOWED[src] - BASE
        assert not upward, f"sysflow.{src} imports {sorted(upward)} (DESIGN.md: layers point one way)"
    assert not edges["model"] - BASE
    assert edges["transport"] <= {"clock", "errors"}


def test_nothing_inside_imports_the_facade() -> None:
    edges = _imports()
    assert not [src for src, targets in edges.items() if "__init__" in targets]


def test_modules_and_classes_stay_small() -> None:
    """One job per module: no module over 600 lines, no class over 300 (issue 16's bar)."""
    big: list[str] = []
    for path in ROOT.rglob("*.py"):
        text = path.read_text()
        if text.count("\n") > 600:
            big.append(f"{path.relative_to(ROOT)}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                length = node.end_lineno - node.lineno + 1
                if length > 300:
                    big.append(f"{path.relative_to(ROOT)}: class {node.name} {length} lines")
    assert big == []
