"""Recorded outputs of real commands (spec files); the transport that replays them is sysflow.testing."""

from __future__ import annotations

from pathlib import Path

SPECS = Path(__file__).parent / "specs"


def spec_text(name: str) -> str:
    return (SPECS / name).read_text()
