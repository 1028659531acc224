"""Inventory sources beyond static files: dynamic inventory scripts, Ansible inventory plugins (via
``ansible-inventory``) and NetBox-style HTTP CMDBs, composed with the static files of an inventory
directory by the one inventory loader (:func:`sysflow.model.inventory_files.load_inventory`).

:func:`load_inventory` is that loader with every source enabled.
"""

from __future__ import annotations

from pathlib import Path

from sysflow.model.inventory import Inventory
from sysflow.sources.netbox import NetBoxConfig, NetBoxSource
from sysflow.sources.plugin import PluginSource
from sysflow.sources.reader import DynamicReader, InventorySource
from sysflow.sources.script import ScriptSource

__all__ = [
    "DynamicReader",
    "InventorySource",
    "NetBoxConfig",
    "NetBoxSource",
    "PluginSource",
    "ScriptSource",
    "load_inventory",
]


def load_inventory(path: str | Path, reader: DynamicReader | None = None) -> Inventory:
    """Load a file or directory, reading its dynamic sources with ``reader`` (default: a new one)."""
    return Inventory.load(path, reader if reader is not None else DynamicReader())
