"""Start and stop the test sshd outside pytest, for the benchmarks.

``tests/fixtures/sshd.py`` holds the helpers (keys, config, loopback aliases, known_hosts) behind a
pytest fixture; this wrapper calls the same helpers so the benchmark measures the very server the
tests use (``running_sshd``). Only loopback addresses; it stops only the sshd it started. The key
passphrase and become password generated for the session stay in memory and are never written out.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fixtures.sshd import SSHD, running_sshd  # noqa: E402

__all__ = ["SSHD", "load_sshd", "save_sshd", "sshd_for_benchmark"]


@contextlib.contextmanager
def sshd_for_benchmark(workdir: Path) -> Iterator[SSHD]:
    """The fixture's ``running_sshd``: started on a free port on the loopback aliases, stopped by PID."""
    workdir.mkdir(parents=True, exist_ok=True)
    with running_sshd(workdir) as server:
        yield server


_SECRETS = ("passphrase", "become_password")  # kept in the parent's memory only


def save_sshd(server: SSHD, path: Path) -> Path:
    """Write what a client process needs to reach the server (never the passphrase)."""
    data = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(server).items() if k not in _SECRETS}
    path.write_text(json.dumps(data))
    return path


def load_sshd(path: Path) -> SSHD:
    data: dict[str, Any] = json.loads(path.read_text())
    kinds = {f.name: f.type for f in fields(SSHD)}
    for key, value in data.items():
        if kinds.get(key) == "Path":
            data[key] = Path(value)
    data["aliases"] = tuple(data["aliases"])
    return SSHD(**data, **dict.fromkeys(_SECRETS, ""))
