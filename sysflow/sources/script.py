"""Ansible dynamic inventory scripts: an executable run with ``--list`` (and ``--host`` when needed).

The script prints the JSON of :mod:`sysflow.sources.ansible_json`. When its answer has no
``_meta`` key, it is asked ``--host NAME`` for each host, as Ansible does. Each run has a timeout; a
script that exits non-zero, times out or prints invalid JSON is an InventoryError naming the script
and what it wrote on stderr.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sysflow.errors import Problem
from sysflow.model.inventory import Inventory
from sysflow.model.inventory_builder import inventory_error
from sysflow.model.variables import update_vars
from sysflow.sources.ansible_json import META, decode, read_listing

__all__ = ["DEFAULT_SCRIPT_TIMEOUT", "ScriptSource", "run_source"]

DEFAULT_SCRIPT_TIMEOUT = 60.0  # seconds a script (or ansible-inventory) may take per call
_STDERR = 300  # characters of stderr quoted in an error


def run_source(argv: list[str], source: str, timeout: float, env: Mapping[str, str] | None = None) -> str:
    """Run a source program and return its stdout; InventoryError naming ``source`` when it fails."""
    environ = {**os.environ, **env} if env else None
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, env=environ)
    except subprocess.TimeoutExpired:
        raise inventory_error([Problem(f"timed out after {timeout:g}s", source)], source) from None
    except OSError as exc:
        raise inventory_error([Problem(f"cannot run: {exc}", source)], source) from None
    if done.returncode != 0:
        err = done.stderr.strip()[-_STDERR:] or "(no stderr)"
        message = f"exited with status {done.returncode}: {err}"
        raise inventory_error([Problem(message, source)], source)
    return done.stdout


@dataclass(frozen=True, slots=True)
class ScriptSource:
    """An executable inventory script."""

    path: Path
    timeout: float = DEFAULT_SCRIPT_TIMEOUT

    @property
    def name(self) -> str:
        return str(self.path)

    def read(self) -> Inventory:
        data = decode(run_source([str(self.path), "--list"], self.name, self.timeout), self.name)
        inventory = read_listing(data, self.name)
        if META not in data:
            for host in list(inventory.hosts):
                answer = run_source(
                    [str(self.path), "--host", host], f"{self.name} --host {host}", self.timeout
                )
                update_vars(inventory.hosts[host].vars, decode(answer, f"{self.name} --host {host}"))
        return inventory
