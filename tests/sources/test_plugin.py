"""Inventory plugins through the real ``ansible-inventory``, and parity with ``sysflow inventory list``.

The plugin is ansible-core's own ``generator`` (a YAML config with ``plugin:``), so no cloud is
needed; the directory also holds a static INI file, an inventory script and ``group_vars/``, and
both tools read the whole directory. They must agree on hosts, groups and every host's variables.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sysflow.cli.root import app
from sysflow.errors import InventoryError
from sysflow.sources import PluginSource

GENERATOR = """\
plugin: ansible.builtin.generator
hosts:
  name: "{{ application }}-{{ environment }}-01"
  parents:
    - name: "{{ application }}"
      vars:
        app_name: "{{ application }}"
    - name: "{{ environment }}"
      vars:
        stage: "{{ environment }}"
layers:
  application: [web, api]
  environment: [dev, prod]
"""
STATIC = "[prod]\nlegacy1 ansible_host=127.0.0.5 ansible_port=2222\n[dbs]\ndb1\n[dbs:vars]\nengine=pg\n"
SCRIPT = """#!/usr/bin/env python3
import json
print(json.dumps({"cache": {"hosts": ["cache1"], "vars": {"tier": "cache"}}, "prod": {"children": ["cache"]},
                  "_meta": {"hostvars": {"cache1": {"mem": 64}}}}))
"""


@pytest.fixture(scope="module")
def ansible_inventory() -> str:
    found = shutil.which("ansible-inventory")
    assert found, "ansible-inventory is missing: pip install ansible-core (a dev dependency)"
    return found


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("site")
    (root / "gen.yml").write_text(GENERATOR)
    (root / "static.ini").write_text(STATIC)
    (root / "cache.py").write_text(SCRIPT)
    (root / "cache.py").chmod(0o755)
    (root / "group_vars").mkdir()
    (root / "group_vars" / "prod.yml").write_text("backup: nightly\n")
    (root / "group_vars" / "all.yml").write_text("ntp: 127.0.0.1\n")
    return root


def test_a_plugin_config_is_read_through_ansible_inventory(site: Path, ansible_inventory: str) -> None:
    inv = PluginSource(site / "gen.yml").read()
    assert sorted(inv.hosts) == ["api-dev-01", "api-prod-01", "web-dev-01", "web-prod-01"]
    assert inv.select("web:&prod") == ["web-prod-01"]
    assert inv.host_vars("api-dev-01") == {"app_name": "api", "stage": "dev"}


def test_a_broken_plugin_config_is_an_error_naming_it(tmp_path: Path, ansible_inventory: str) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("plugin: ansible.builtin.generator\nhosts: 5\n")
    with pytest.raises(InventoryError) as err:
        PluginSource(bad).read()
    assert str(bad) in str(err.value)


def test_without_ansible_inventory_on_path_the_plugin_says_so(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(InventoryError, match="needs ansible-inventory on PATH"):
        PluginSource(site / "gen.yml").read()


def _normalised(listing: dict[str, Any]) -> tuple[dict[str, Any], dict[str, set[str]], dict[str, set[str]]]:
    hostvars = listing["_meta"]["hostvars"]
    groups = {
        name: set(body.get("hosts", []))
        for name, body in listing.items()
        if name != "_meta" and body.get("hosts")
    }
    children = {name: set(body.get("children", [])) for name, body in listing.items() if body.get("children")}
    return hostvars, groups, children


def test_sysflow_inventory_list_agrees_with_ansible_inventory(site: Path, ansible_inventory: str) -> None:
    ours = CliRunner().invoke(app, ["inventory", "list", "-i", str(site)])
    assert ours.exit_code == 0, ours.output
    theirs = subprocess.run(
        [ansible_inventory, "-i", str(site), "--list"], capture_output=True, text=True, check=True
    )
    hostvars, groups, children = _normalised(json.loads(ours.stdout))
    a_hostvars, a_groups, a_children = _normalised(json.loads(theirs.stdout))
    assert hostvars == a_hostvars
    assert groups == a_groups
    assert children == a_children
    assert hostvars["cache1"] == {
        "mem": 64,
        "tier": "cache",
        "stage": "prod",
        "backup": "nightly",
        "ntp": "127.0.0.1",
    }
    assert len(hostvars) == 7
