"""Fixtures shared by every test package. Larger fixtures live in ``tests/fixtures/`` as plugins."""

from __future__ import annotations

pytest_plugins: list[str] = []

pytest_plugins += ["tests.fixtures.sshd", "tests.fixtures.ssh_servers"]
pytest_plugins += ["tests.fixtures.virtual"]
