"""Ansible inventory plugins (aws_ec2, netbox, ...) read through ``ansible-inventory``.

sysflow does not link ansible-core (GPLv3): it runs ``ansible-inventory -i SOURCE --list --export``
when that program is on PATH and reads its JSON (:mod:`sysflow.sources.ansible_json`). ``--export``
keeps group variables on their groups, so they layer here as they do in Ansible.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from sysflow.errors import Problem
from sysflow.model.inventory import Inventory
from sysflow.model.inventory_builder import inventory_error
from sysflow.sources.ansible_json import decode, read_listing
from sysflow.sources.script import DEFAULT_SCRIPT_TIMEOUT, run_source

__all__ = ["ANSIBLE_INVENTORY", "PluginSource"]

ANSIBLE_INVENTORY = "ansible-inventory"
# A source ansible-inventory cannot parse is an error, not a warning and an empty inventory; vars
# plugins are off because sysflow's loader reads group_vars/ and host_vars/ itself, once, after all
# sources (else they would come back as inventory variables of this source).
_ENV = {
    "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
    "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "True",
    "ANSIBLE_VARS_ENABLED": "",
}


@dataclass(frozen=True, slots=True)
class PluginSource:
    """A plugin configuration file (YAML with ``plugin:``), read by ``ansible-inventory``."""

    path: Path
    timeout: float = DEFAULT_SCRIPT_TIMEOUT

    @property
    def name(self) -> str:
        return str(self.path)

    def read(self) -> Inventory:
        program = shutil.which(ANSIBLE_INVENTORY)
        if program is None:
            message = f"an inventory plugin needs {ANSIBLE_INVENTORY} on PATH (pip install ansible-core)"
            raise inventory_error([Problem(message, self.name)], self.name)
        argv = [program, "-i", str(self.path), "--list", "--export"]
        data = decode(run_source(argv, self.name, self.timeout, _ENV), self.name)
        return read_listing(data, self.name)
