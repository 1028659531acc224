"""Which files of an inventory are dynamic, and the source that reads each one.

:class:`DynamicReader` is what :func:`sysflow.model.inventory_files.load_inventory` asks about
every file of an inventory (the model's ``DynamicSources`` protocol): an executable file is an
Ansible inventory script (:mod:`sysflow.sources.script`); a YAML file whose top level says
``plugin: sysflow.netbox`` is a NetBox CMDB (:mod:`sysflow.sources.netbox`); one that names any other
``plugin:`` is an Ansible inventory plugin read through ``ansible-inventory``
(:mod:`sysflow.sources.plugin`). Everything else is left to the static parsers, so sources compose
with static files in one directory as Ansible's do.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from sysflow.errors import Problem
from sysflow.model.inventory import Inventory
from sysflow.model.inventory_builder import inventory_error
from sysflow.sources.cache import default_cache_dir
from sysflow.sources.netbox import NETBOX_PLUGIN, NetBoxSource
from sysflow.sources.plugin import PluginSource
from sysflow.sources.script import DEFAULT_SCRIPT_TIMEOUT, ScriptSource

__all__ = ["DynamicReader", "InventorySource"]

_PLUGIN_LINE = re.compile(r"^plugin:\s*['\"]?([\w.\-]+)['\"]?\s*(?:#.*)?$", re.MULTILINE)
_PLUGIN_PEEK = 64 * 1024  # bytes read to find a top-level plugin: key
_YAML = (".yml", ".yaml")


class InventorySource(Protocol):
    """One dynamic source of hosts, groups and variables."""

    @property
    def name(self) -> str: ...

    def read(self) -> Inventory: ...


@dataclass
class DynamicReader:
    """Claims and reads the dynamic files of an inventory; collects the sources' warnings."""

    refresh: bool = False
    cache_dir: Path = field(default_factory=default_cache_dir)
    timeout: float = DEFAULT_SCRIPT_TIMEOUT
    now: Callable[[], float] = time.time
    warnings: list[str] = field(default_factory=list)

    def claims(self, file: Path) -> bool:
        return _executable(file) or _plugin_name(file) is not None

    def read(self, file: Path) -> Inventory:
        source = self.source_for(file)
        inventory = source.read()
        self.warnings += getattr(source, "warnings", [])
        return inventory

    def source_for(self, file: Path) -> InventorySource:
        if _executable(file):
            return ScriptSource(file, self.timeout)
        plugin = _plugin_name(file)
        if plugin == NETBOX_PLUGIN:
            return NetBoxSource.from_data(
                file, _read_config(file), self.cache_dir, refresh=self.refresh, now=self.now
            )
        return PluginSource(file, self.timeout)


def _executable(file: Path) -> bool:
    return file.is_file() and os.access(file, os.X_OK)


def _plugin_name(file: Path) -> str | None:
    if file.suffix.lower() not in _YAML:
        return None
    try:
        with file.open(encoding="utf-8", errors="replace") as f:
            head = f.read(_PLUGIN_PEEK)
    except OSError:
        return None
    found = _PLUGIN_LINE.search(head)
    return found.group(1) if found else None


def _read_config(file: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(file.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise inventory_error([Problem(f"cannot read source config: {exc}", str(file))], str(file)) from None
    if not isinstance(data, dict):
        raise inventory_error([Problem("a source config must be a mapping", str(file))], str(file))
    return data
