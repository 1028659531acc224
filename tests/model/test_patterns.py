"""Ansible host patterns over a realistic fleet (tests/model/data/inventory_fleet.ini).

``PATTERN_TABLE`` is the contract: test_inventory_ansible.py checks that ansible-core selects the
same hosts for every row, so the expectations are Ansible's, not ours.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sysflow.errors import InventoryError
from sysflow.model.inventory import Inventory, split_host_pattern

DATA = Path(__file__).parent / "data"
FLEET = DATA / "inventory_fleet.ini"


def fqdn(*short: str) -> set[str]:
    return {f"{s}.example.com" for s in short}


WEB = fqdn("web01", "web02", "web03", "web04", "web05", "web06", "web-canary")
DB = fqdn("db-a", "db-b", "db-c", "db-d", "db-replica-1", "db-replica-5", "db-replica-9")
CACHE = fqdn("cache01", "cache02", "cache03")
UNGROUPED = fqdn("bastion", "mgmt01")
AMS = fqdn("web01", "web02", "web03", "db-a", "db-b", "cache01")
FRA = fqdn("web04", "web05", "web06", "db-c", "db-d", "cache02", "cache03")
ALL = WEB | DB | CACHE | UNGROUPED

PATTERN_TABLE: list[tuple[str, set[str]]] = [
    ("all", ALL),
    ("*", ALL),
    ("", ALL),  # no union term at all: Ansible starts from 'all'
    ("web", WEB),
    ("web:db", WEB | DB),
    ("web,db", WEB | DB),
    ("web, db ,cache", WEB | DB | CACHE),
    ("web:&ams", WEB & AMS),
    ("ams:&web", WEB & AMS),
    ("all:!fra", ALL - FRA),
    ("!fra", ALL - FRA),
    ("&ams", AMS),
    ("frontend:!web", CACHE),
    ("production:&fra:!cache", FRA - CACHE),
    ("production", WEB | DB | CACHE),
    ("backend", DB),
    # unions first, then intersections, then exclusions, whatever the written order
    ("web:!web0*:web02.example.com", fqdn("web-canary")),
    ("!ams:&production:fra", FRA),
    ("web:!web01.example.com:db:&ams", fqdn("web02", "web03", "db-a", "db-b")),
    # globs over host and group names
    ("web0[1-3]*", fqdn("web01", "web02", "web03")),
    ("db-[a:c]*", fqdn("db-a", "db-c")),
    ("*canary*", fqdn("web-canary")),
    ("cache*", CACHE),
    ("back*", DB),
    ("a*", ALL),  # matches the group 'all' (and 'ams')
    ("*.example.com:!ungrouped", ALL - UNGROUPED),
    ("db-replica-?.example.com", fqdn("db-replica-1", "db-replica-5", "db-replica-9")),
    # regexes are anchored at the start (re.match)
    ("~db-[ab]\\..*", fqdn("db-a", "db-b")),
    ("~.*canary", fqdn("web-canary")),
    ("~canary", set()),
    ("~(web|cache)0[13]", fqdn("web01", "web03", "cache01", "cache03")),
    # subscripts index the matched hosts
    ("web[0]", fqdn("web01")),
    ("web[-1]", fqdn("web-canary")),
    ("web[1:3]", fqdn("web02", "web03", "web04")),
    ("web[5:]", fqdn("web06", "web-canary")),
    ("ams[0]:fra[0]", fqdn("web01", "web04")),
    ("web[1:1]", fqdn("web02")),
    ("web[2:0]", fqdn("web03")),  # Ansible's quirk: an end of 0 means "just the start"
    ("web[0-1]", fqdn("web01", "web02")),  # the old dash form still works
    ("web[:2]", set()),  # not a subscript in Ansible's grammar: a glob class that matches nothing
    # names and globs are case-sensitive; more combinations
    ("WEB", set()),
    ("~WEB.*", set()),
    ("all,!web", ALL - WEB),
    ("&web:&ams", WEB & AMS),
    ("web:&db", set()),
    ("ungr*", UNGROUPED),
    # names
    ("ungrouped", UNGROUPED),
    ("bastion.example.com", fqdn("bastion")),
    ("web01.example.com:db-a.example.com", fqdn("web01", "db-a")),
    ("nonexistent", set()),
    ("web:nonexistent", WEB),
    ("192.0.2.10", set()),  # ansible_host is where to connect, not a name
]


@pytest.fixture(scope="module")
def fleet() -> Inventory:
    return Inventory.load(FLEET)


@pytest.mark.parametrize(
    ("pattern", "expected"), PATTERN_TABLE, ids=[p or "<empty>" for p, _ in PATTERN_TABLE]
)
def test_pattern_selects_what_ansible_selects(fleet: Inventory, pattern: str, expected: set[str]) -> None:
    assert set(fleet.select(pattern)) == expected


def test_result_is_in_inventory_order(fleet: Inventory) -> None:
    order = list(fleet.hosts)
    selected = fleet.select("cache:web:bastion.example.com")
    assert selected == [h for h in order if h in selected]
    assert selected[0] == "bastion.example.com"


def test_an_empty_list_selects_nothing_but_an_empty_string_selects_all(fleet: Inventory) -> None:
    assert fleet.select([]) == []
    assert fleet.select(iter(())) == []
    assert fleet.select([""]) == list(fleet.hosts)
    assert fleet.select(["web", ""]) == fleet.select("web")


def test_list_of_patterns_is_one_pattern(fleet: Inventory) -> None:
    assert set(fleet.select(["web", "!web0*"])) == fqdn("web-canary")
    assert set(fleet.select(["ams", "&db"])) == fqdn("db-a", "db-b")


@pytest.mark.parametrize(
    ("pattern", "terms"),
    [
        ("a:b:&c:!d", ["a", "b", "&c", "!d"]),
        ("a, b ,c", ["a", "b", "c"]),
        ("web[01:03]:db", ["web[01:03]", "db"]),
        ("web[1:2],db[0]", ["web[1:2]", "db[0]"]),
        ("fe80::1", ["fe80::1"]),
        ("[2001:db8::1]", ["[2001:db8::1]"]),
        ("  ", []),
        (["a:b", "c"], ["a", "b", "c"]),
    ],
)
def test_split_host_pattern(pattern: str | list[str], terms: list[str]) -> None:
    assert split_host_pattern(pattern) == terms


def test_unmatched_reports_typos_only(fleet: Inventory) -> None:
    assert fleet.unmatched("web:wbe:&ams:!nope:all:bastion.example.com") == ["wbe", "!nope"]
    assert fleet.unmatched(["db-*", "~zz.*"]) == ["~zz.*"]


def test_empty_declared_group_is_not_a_typo() -> None:
    inventory = Inventory()
    inventory.add_group("empty")
    assert inventory.select("empty") == []
    assert inventory.unmatched("empty") == []


def test_bad_regex_is_an_inventory_error(fleet: Inventory) -> None:
    with pytest.raises(InventoryError, match="invalid host pattern"):
        fleet.select("~web(")


def test_subscript_out_of_range_is_an_inventory_error(fleet: Inventory) -> None:
    with pytest.raises(InventoryError, match="subscripted pattern 'web\\[40\\]'"):
        fleet.select("web[40]")


def test_subscript_on_nothing_selects_nothing(fleet: Inventory) -> None:
    assert fleet.select("nothing[3]") == []


def test_regex_with_brackets_is_not_subscripted(fleet: Inventory) -> None:
    assert set(fleet.select("~web0[1]")) == fqdn("web01")


def test_selection_follows_changes() -> None:
    inventory = Inventory()
    inventory.add_group("web", ["w1"])
    assert inventory.select("web") == ["w1"]
    inventory.add_group("web", ["w2"])
    inventory.add_host("w3", groups=["web"])
    assert inventory.select("web") == ["w1", "w2", "w3"]


# -- algebra over random inventories -------------------------------------------------------------

GROUP_NAMES = ["alpha", "beta", "gamma", "delta"]
memberships = st.dictionaries(
    st.sampled_from([f"h{i}" for i in range(12)]), st.sets(st.sampled_from(GROUP_NAMES)), min_size=1
)


def build(members: dict[str, set[str]]) -> Inventory:
    inventory = Inventory()
    for host, groups in members.items():
        inventory.add_host(host, groups=sorted(groups))
    for name in GROUP_NAMES:
        inventory.add_group(name)
    return inventory


@settings(max_examples=60, deadline=None)
@given(members=memberships, a=st.sampled_from(GROUP_NAMES), b=st.sampled_from(GROUP_NAMES))
def test_union_intersection_exclusion_are_set_algebra(members: dict[str, set[str]], a: str, b: str) -> None:
    inventory = build(members)
    sa, sb = set(inventory.select(a)), set(inventory.select(b))
    assert set(inventory.select(f"{a}:{b}")) == sa | sb
    assert set(inventory.select(f"{a},{b}")) == sa | sb
    assert set(inventory.select(f"{a}:&{b}")) == sa & sb
    assert set(inventory.select(f"{a}:!{b}")) == sa - sb
    assert set(inventory.select(f"!{b}:{a}")) == sa - sb  # order of terms does not matter
    assert set(inventory.select(f"!{b}")) == set(inventory.hosts) - sb
    assert set(inventory.select("ungrouped")) == {h for h, g in members.items() if not g}
    assert inventory.select(f"{a}:{b}") == [h for h in inventory.hosts if h in sa | sb]
