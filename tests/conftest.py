"""Fixtures shared by every test package. Larger fixtures live in ``tests/fixtures/`` as plugins."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest_plugins: list[str] = []

pytest_plugins += ["tests.fixtures.sshd", "tests.fixtures.ssh_servers"]
pytest_plugins += ["tests.fixtures.virtual"]


@pytest.fixture(scope="session", autouse=True)
def _private_run_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A command run without ``--store`` uses the session's own store and audit key, never the real
    per-user (or /var/lib) ones: ``SYSFLOW_STORE``, ``SYSFLOW_AUDIT_KEY_FILE`` and ``XDG_STATE_HOME``
    point into the session's temp dir (subprocesses inherit them)."""
    home = tmp_path_factory.mktemp("state-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SYSFLOW_STORE", str(home / "sysflow" / "state.db"))
        mp.setenv("SYSFLOW_AUDIT_KEY_FILE", str(home / "sysflow" / "audit.key"))
        mp.setenv("XDG_STATE_HOME", str(home))
        yield


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``-n 2 --dist loadgroup``, the README's command) the tests that start a
    Ray cluster share one worker: two local clusters at once would double the heaviest fixture on a
    2-core machine. Everything else (each worker has its own sshd, ports and temp dirs) spreads."""
    for item in items:
        if item.get_closest_marker("ray") is not None:
            item.add_marker(pytest.mark.xdist_group("ray"))
