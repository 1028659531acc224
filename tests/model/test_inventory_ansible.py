"""Differential tests: ansible-core (a dev dependency) is the oracle for loading and patterns.

For every valid inventory under tests/model/data, Ansible's InventoryManager and ours must agree on
the hosts, each host's groups and each host's merged variables; and Ansible must select exactly
what ``PATTERN_TABLE`` (test_patterns.py) expects.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sysflow.model.inventory import Inventory
from tests.model.test_patterns import FLEET, PATTERN_TABLE

DATA = Path(__file__).parent / "data"
FILES = sorted(
    p.name
    for p in DATA.glob("inventory_*")
    if "_bad_" not in p.name and p.suffix in {".ini", ".yml", ".json"}
)
VALID = [*FILES, "inventory_dir", "inventory_dir/01-hosts.ini"]  # a directory; a file beside group_vars/
MAGIC_VARS = {
    "ansible_config_file",
    "ansible_facts",
    "ansible_playbook_python",
    "ansible_version",
    "group_names",
    "groups",
    "inventory_dir",
    "inventory_file",
    "inventory_hostname",
    "inventory_hostname_short",
    "playbook_dir",
}


class AnsibleOracle:
    """What ansible-core makes of an inventory file."""

    def __init__(self, path: Path) -> None:
        from ansible.inventory.manager import InventoryManager
        from ansible.parsing.dataloader import DataLoader

        self.manager = InventoryManager(loader=DataLoader(), sources=[str(path)])

    def hosts(self) -> set[str]:
        return set(self.manager.hosts)

    def groups_of(self, host: str) -> set[str]:
        return {g.name for g in self.manager.hosts[host].get_groups() if g.name != "all"}

    def vars_of(self, host: str) -> dict[str, Any]:
        """The host's variables as a play would see them, minus Ansible's magic variables."""
        from ansible.vars.manager import VariableManager

        manager = VariableManager(loader=self.manager._loader, inventory=self.manager)
        merged = manager.get_vars(host=self.manager.hosts[host], include_hostvars=False)
        return {k: _plain(v) for k, v in merged.items() if k not in MAGIC_VARS}

    def select(self, pattern: str) -> set[str]:
        return {h.name for h in self.manager.get_hosts(pattern)}


def _plain(value: Any) -> Any:
    """Ansible 2.19 tags values with their origin; compare plain Python values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return value


@pytest.fixture(scope="module", autouse=True)
def _ansible_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep Ansible's home and temp files out of the user's home."""
    home = tmp_path_factory.mktemp("ansible")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ANSIBLE_HOME", str(home))
        mp.setenv("ANSIBLE_LOCAL_TEMP", str(home / "tmp"))
        mp.setenv("ANSIBLE_HOST_PATTERN_MISMATCH", "ignore")
        yield


@pytest.mark.parametrize("name", VALID)
def test_same_hosts_groups_and_vars_as_ansible(name: str) -> None:
    oracle = AnsibleOracle(DATA / name)
    ours = Inventory.load(DATA / name)
    assert set(ours.hosts) == oracle.hosts()
    for host in ours.hosts:
        assert set(ours.host_groups(host)) == oracle.groups_of(host), host
        assert ours.host_vars(host) == oracle.vars_of(host), host


def test_empty_lists_and_strings_like_ansible() -> None:
    oracle = AnsibleOracle(FLEET)
    ours = Inventory.load(FLEET)
    for pattern in ([], [""], "", ["web", ""]):
        assert {h.name for h in oracle.manager.get_hosts(pattern)} == set(ours.select(pattern)), pattern


def test_ansible_selects_what_the_pattern_table_expects() -> None:
    oracle = AnsibleOracle(FLEET)
    ours = Inventory.load(FLEET)
    for pattern, expected in PATTERN_TABLE:
        assert oracle.select(pattern) == expected, pattern
        assert set(ours.select(pattern)) == expected, pattern
