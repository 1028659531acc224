"""Fixtures shared by every test package. Larger fixtures live in ``tests/fixtures/`` as plugins."""

from __future__ import annotations

pytest_plugins: list[str] = []
