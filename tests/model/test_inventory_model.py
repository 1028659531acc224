"""The Python API of Inventory: building, implicit groups, cycles, variable precedence, copies."""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from sysflow.errors import InventoryError
from sysflow.model.inventory import Group, Host, Inventory


def brief_inventory() -> Inventory:
    inventory = Inventory()
    inventory.add_group("web_servers", ["web01.example.com", "web02.example.com", "web03.example.com"])
    inventory.add_group("db_servers", ["db01.example.com", "db02.example.com"])
    inventory.add_group("cache_servers", ["cache01.example.com", "cache02.example.com"])
    return inventory


def test_the_brief_api() -> None:
    inventory = brief_inventory()
    assert len(inventory) == 7
    assert inventory.select("*") == list(inventory.hosts)
    assert inventory.select("web_servers:db_servers") == [
        "web01.example.com",
        "web02.example.com",
        "web03.example.com",
        "db01.example.com",
        "db02.example.com",
    ]
    assert "db01.example.com" in inventory
    assert [h.name for h in inventory][:1] == ["web01.example.com"]
    assert inventory.group_hosts("ungrouped") == []


def test_add_host_with_vars_and_groups() -> None:
    inventory = Inventory()
    host = inventory.add_host("h1", groups=["web", "all"], datacenter="ams", ansible_port=2222)
    assert isinstance(host, Host)
    assert host.datacenter == "ams"
    assert host.port == 2222
    assert inventory.groups["web"].hosts == ["h1"]
    assert "all" not in inventory.groups
    again = inventory.add_host("h1", segment="rack7")
    assert again is host
    assert host.segment == "rack7"


def test_implicit_groups_through_add_group() -> None:
    inventory = Inventory()
    view = inventory.add_group("all", ["lonely"], vars={"ntp": "pool"}, children=["web"])
    assert view.name == "all"
    assert view.hosts == ["lonely"]
    assert inventory.vars == {"ntp": "pool"}
    assert "web" in inventory.groups
    inventory.add_group("ungrouped", ["spare"], vars={"role": "spare"})
    assert inventory.ungrouped_vars == {"role": "spare"}
    assert inventory.group_hosts("ungrouped") == ["lonely", "spare"]
    assert inventory.host_vars("spare") == {"ntp": "pool", "role": "spare"}
    assert inventory.host_groups("spare") == ["ungrouped"]
    assert inventory.has_group("all")
    assert inventory.has_group("ungrouped")
    assert inventory.has_group("web")
    assert not inventory.has_group("db")
    assert inventory.group_names() == ["all", "ungrouped", "web"]


def test_implicit_groups_cannot_nest_elsewhere() -> None:
    inventory = Inventory()
    inventory.add_group("web")
    with pytest.raises(InventoryError, match="cannot be a child"):
        inventory.add_child("web", "all")
    with pytest.raises(InventoryError, match="cannot be a child"):
        inventory.add_group("ungrouped", children=["web"])


def test_cycles_are_refused_with_the_path() -> None:
    inventory = Inventory()
    inventory.add_group("a", children=["b"])
    inventory.add_group("b", children=["c"])
    with pytest.raises(InventoryError, match="a -> b -> c -> a"):
        inventory.add_group("c", children=["a"])
    with pytest.raises(InventoryError, match="own ancestor: a -> a"):
        inventory.add_child("a", "a")
    assert inventory.groups["c"].children == []


def test_children_bring_their_hosts() -> None:
    inventory = Inventory()
    inventory.add_group("leaf", ["h2", "h1"])
    inventory.add_group("mid", ["h3"], children=["leaf"])
    inventory.add_group("top", children=["mid", "leaf"])
    inventory.add_group("leaf", ["h1"])  # already a member: no duplicate
    assert inventory.group_hosts("top") == ["h2", "h1", "h3"]
    assert inventory.host_groups("h1") == ["leaf", "mid", "top"]
    assert inventory.group_hosts("nope") == []


def test_variable_precedence_depth_priority_name() -> None:
    inventory = Inventory()
    inventory.add_group("all", vars={"v": "all", "only_all": 1})
    inventory.add_group("zz", ["h"], vars={"v": "zz"})
    inventory.add_group("aa", ["h"], vars={"v": "aa"})
    assert inventory.host_vars("h")["v"] == "zz"  # same depth and priority: later name wins
    inventory.add_group("aa", vars={"ansible_group_priority": 3})
    assert inventory.host_vars("h")["v"] == "aa"
    inventory.add_group("aa", vars={"ansible_group_priority": "bogus"})
    assert inventory.host_vars("h")["v"] == "zz"  # an unusable priority counts as the default
    inventory.add_group("parent", vars={"v": "parent"}, children=["deep"])
    inventory.add_group("deep", ["h"], vars={"v": "deep"})
    assert inventory.host_vars("h")["v"] == "deep"  # deeper groups win over shallower
    inventory.add_host("h", v="host")
    assert inventory.host_vars("h") == {"v": "host", "only_all": 1}


def test_unknown_host() -> None:
    inventory = Inventory(source="fleet.ini")
    with pytest.raises(InventoryError, match="unknown host 'ghost'") as info:
        inventory.host_vars("ghost")
    assert info.value.problems[0].location == "fleet.ini"


@pytest.mark.parametrize("port", ["22x", 0, 70000, True, 22.5])
def test_bad_port_is_an_inventory_error(port: object) -> None:
    inventory = Inventory()
    host = inventory.add_host("h", ansible_port=port)
    with pytest.raises(InventoryError, match="not a TCP port"):
        _ = host.port


def test_port_as_string_is_accepted() -> None:
    assert Inventory().add_host("h", ansible_port="2222").port == 2222


def test_standalone_host_uses_its_own_vars() -> None:
    host = Host(name="x", vars={"ansible_host": "192.0.2.1", "datacenter": "ams"})
    assert (host.address, host.datacenter, host.segment, host.user, host.key_file) == (
        "192.0.2.1",
        "ams",
        "ams",
        None,
        None,
    )
    assert host.effective_vars() == host.vars
    assert host.effective_vars() is not host.vars


def test_pickled_host_keeps_its_merged_vars() -> None:
    inventory = Inventory()
    inventory.add_group("ams", ["h"], vars={"datacenter": "ams", "ansible_user": "ops"})
    host = pickle.loads(pickle.dumps(inventory.hosts["h"]))
    assert (host.datacenter, host.user) == ("ams", "ops")
    assert host == inventory.hosts["h"]
    assert host != "h"
    lone = pickle.loads(pickle.dumps(Host(name="solo", vars={"datacenter": "fra"})))
    assert lone.datacenter == "fra"


def test_round_trip_through_dict_and_equality() -> None:
    inventory = brief_inventory()
    inventory.add_group("all", vars={"ntp": "pool"})
    copy = Inventory.model_validate(inventory.model_dump())
    assert copy == inventory
    assert copy.hosts["web01.example.com"].effective_vars() == {"ntp": "pool"}
    assert inventory != "inventory"
    copy.add_host("extra")
    assert copy != inventory


def test_group_model_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="extra"):
        Group.model_validate({"name": "g", "hostz": []})


def test_import_sysflow_stays_light() -> None:
    code = (
        "import sys, sysflow, sysflow.model.inventory;"
        "heavy = [m for m in ('asyncssh', 'sysflow.model.inventory_files', 'ansible') if m in sys.modules];"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", ["", 7])
def test_host_names_must_be_non_empty_strings(name: object) -> None:
    with pytest.raises(InventoryError, match="must be a non-empty string"):
        Inventory().add_host(name)  # type: ignore[arg-type]


def test_membership_stays_unique_even_after_hand_edits() -> None:
    inventory = Inventory()
    for _ in range(2):
        inventory.add_host("h1", groups=["web"])
        inventory.add_group("web", ["h2"], children=["kids"])
    assert inventory.groups["web"].hosts == ["h1", "h2"]
    assert inventory.groups["web"].children == ["kids"]
    inventory.groups["web"].hosts = ["h2"]  # replaced by hand: the index follows
    inventory.add_host("h1", groups=["web"])
    inventory.add_host("h2", groups=["web"])
    assert inventory.groups["web"].hosts == ["h2", "h1"]


def test_all_host_vars_equals_host_vars_one_by_one() -> None:
    inventory = Inventory.load(Path(__file__).parent / "data" / "inventory_dir")
    everything = inventory.all_host_vars()
    assert list(everything) == list(inventory.hosts)
    assert everything == {h: inventory.host_vars(h) for h in inventory.hosts}
    assert inventory.all_host_vars(["db1"]) == {"db1": inventory.host_vars("db1")}
    with pytest.raises(InventoryError, match="unknown host"):
        inventory.all_host_vars(["ghost"])


def test_host_vars_see_direct_edits() -> None:
    inventory = Inventory()
    inventory.add_group("web", ["w1"], vars={"tier": "web"})
    assert inventory.host_vars("w1") == {"tier": "web"}
    inventory.groups["web"].vars["tier"] = "edited"
    inventory.vars["ntp"] = "pool"
    assert inventory.host_vars("w1") == {"ntp": "pool", "tier": "edited"}
    assert inventory.all_host_vars() == {"w1": {"ntp": "pool", "tier": "edited"}}


def test_deep_copies_are_independent() -> None:
    inventory = Inventory()
    inventory.add_group("ams", ["h"], vars={"datacenter": "ams"})
    clone = inventory.model_copy(deep=True)
    assert clone == inventory
    clone.add_group("ams", vars={"datacenter": "changed"})
    assert clone.hosts["h"].datacenter == "changed"
    assert inventory.hosts["h"].datacenter == "ams"
    lone = copy.deepcopy(inventory.hosts["h"])  # a host copied alone keeps what it resolved to
    assert lone.datacenter == "ams"
    assert copy.deepcopy(lone).datacenter == "ams"


def test_implicit_groups_under_all_are_not_declared() -> None:
    inventory = Inventory()
    inventory.add_child("all", "ungrouped")
    inventory.add_child("all", "all")
    inventory.add_child("all", "web")
    assert list(inventory.groups) == ["web"]


def test_a_pickled_inventory_owns_its_hosts_again() -> None:
    inventory = Inventory()
    inventory.add_group("ams", ["h"], vars={"datacenter": "ams"})
    clone = pickle.loads(pickle.dumps(inventory))
    assert clone == inventory
    assert clone.hosts["h"]._inventory is clone
    clone.add_group("ams", vars={"datacenter": "moved"})
    assert clone.hosts["h"].datacenter == "moved"
