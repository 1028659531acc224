"""Directory inventories and group_vars/ host_vars/, with Ansible's variable layering.

The data directory tests/model/data/inventory_dir is also checked against ansible-core in
test_inventory_ansible.py; these tests pin the individual rules and the malformed cases.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sysflow.errors import InventoryError
from sysflow.model.inventory import Inventory

DIR = Path(__file__).parent / "data" / "inventory_dir"


@pytest.fixture(scope="module")
def tree() -> Inventory:
    return Inventory.load(DIR)


def test_every_inventory_file_of_the_directory_is_read(tree: Inventory) -> None:
    assert list(tree.hosts) == ["web1", "web2", "web3", "db1", "db2", "cache1"]
    assert list(tree.groups) == ["web", "db", "prod", "site", "cache"]
    assert tree.select("site") == ["web1", "web2", "web3"]  # 'web' was declared by an earlier file
    assert tree.select("prod") == ["web1", "web2", "web3", "db1", "db2"]
    assert tree.select("cache") == ["cache1"]  # found in a subdirectory
    assert "ignored" not in tree.groups  # README.md, .hidden, *~, *.cfg are skipped
    assert tree.source == str(DIR)


def test_group_vars_and_host_vars_are_read(tree: Inventory) -> None:
    assert tree.group_vars_dir == {
        "all": {"ntp": "ntp.example.com", "env": "unset"},
        "web": {"tier": "web-override", "port_list": [80, 443], "nested_level": 2},  # a directory, sorted
        "db": {"backup_tool": "pg_dump"},  # a file without extension
        "prod": {"env": "production"},
    }
    assert tree.host_vars_dir == {
        "web1": {"tier": "special"},
        "db1": {"ansible_port": 2222, "role": "primary"},
    }


def test_layering_follows_ansible(tree: Inventory) -> None:
    web3 = tree.host_vars("web3")
    assert web3["ntp"] == "ntp.example.com"  # group_vars/all beats [web:vars]
    assert web3["backup_tool"] == "pg_dump"  # group_vars/db beats [web:vars], whatever the depth
    assert web3["tier"] == "inline"  # inventory host vars beat group_vars/
    assert tree.host_vars("web1")["tier"] == "special"  # host_vars/ beats inventory host vars
    assert tree.hosts["db1"].port == 2222
    assert tree.host_vars("cache1")["env"] == "unset"


def test_a_file_source_reads_the_vars_dirs_beside_it() -> None:
    single = Inventory.load(DIR / "01-hosts.ini")
    assert list(single.groups) == ["web", "db"]
    assert single.host_vars("web1")["tier"] == "special"
    assert single.host_vars("db2")["backup_tool"] == "pg_dump"
    assert "prod" not in single.group_vars_dir  # only entities of this inventory


def test_problems_of_every_file_are_collected(tmp_path: Path) -> None:
    (tmp_path / "a.ini").write_text("[web]\nw[3:1]\n")
    (tmp_path / "b.yml").write_text("web:\n  hostz: {}\n")
    with pytest.raises(InventoryError) as info:
        Inventory.load(tmp_path)
    assert [p.location for p in info.value.problems] == [f"{tmp_path / 'a.ini'}:2", f"{tmp_path / 'b.yml'}:2"]
    assert info.value.source == str(tmp_path)


@pytest.mark.parametrize(
    ("name", "content", "location", "fragment"),
    [
        ("web.yml", "tier: [unclosed\n", 2, "bad YAML"),
        ("web.yml", "- a\n- b\n", 1, "must be a mapping"),
        ("all.yml", "$ANSIBLE_VAULT;1.1;AES256\n6236\n", 1, "Ansible Vault files are not supported"),
    ],
)
def test_bad_vars_files_name_file_and_line(
    tmp_path: Path, name: str, content: str, location: int, fragment: str
) -> None:
    (tmp_path / "hosts").write_text("[web]\nw1\n")
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / name).write_text(content)
    with pytest.raises(InventoryError, match=fragment) as info:
        Inventory.load(tmp_path / "hosts")
    assert info.value.problems[0].location == f"{tmp_path / 'group_vars' / name}:{location}"


def test_unreadable_vars_file_and_empty_ones(tmp_path: Path) -> None:
    (tmp_path / "hosts").write_text("[web]\nw1\n/chroot/box\n")
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "host_vars" / "w1.yml").write_text("")  # empty: nothing to merge
    (tmp_path / "group_vars").mkdir()
    assert Inventory.load(tmp_path / "hosts").host_vars("w1") == {}
    (tmp_path / "group_vars" / "web").write_bytes(b"\xff\xfe bad")
    with pytest.raises(InventoryError, match=r"web:1:1: the variables file is not UTF-8 text \(byte 0xff\)"):
        Inventory.load(tmp_path / "hosts")


def test_vars_dir_that_is_a_file_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "hosts").write_text("[web]\nw1\n")
    (tmp_path / "group_vars").write_text("not a directory")
    assert Inventory.load(tmp_path / "hosts").host_vars("w1") == {}


def test_vars_dirs_round_trip_and_compare(tree: Inventory) -> None:
    copy = Inventory.model_validate(tree.model_dump())
    assert copy == tree
    assert copy.host_vars("web3") == tree.host_vars("web3")


def test_a_host_list_like_ansible_dash_i() -> None:
    inventory = Inventory.load("web1, web2:2222,[2001:db8::7]:22,")
    assert list(inventory.hosts) == ["web1", "web2", "2001:db8::7"]
    assert inventory.hosts["web2"].port == 2222
    assert inventory.select("ungrouped") == list(inventory.hosts)
    assert inventory.source == "host list"


def test_home_is_expanded_and_a_bom_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "hosts.ini").write_bytes("\ufeff[web]\nw1\n".encode())
    assert Inventory.load("~/hosts.ini").select("web") == ["w1"]
