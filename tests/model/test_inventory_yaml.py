"""Ansible YAML (and JSON) inventories: the same fleet as the INI file, YAML forms, malformed files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sysflow.errors import InventoryError
from sysflow.model.inventory import Inventory

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def fleet_ini() -> Inventory:
    return Inventory.load(DATA / "inventory_fleet.ini")


@pytest.mark.parametrize(
    "name", ["inventory_fleet.yml", "inventory_fleet.json", "inventory_fleet_export.yml"]
)
def test_yaml_and_json_fleet_mean_what_the_ini_fleet_means(fleet_ini: Inventory, name: str) -> None:
    inventory = Inventory.load(DATA / name)
    assert set(inventory.hosts) == set(fleet_ini.hosts)
    assert set(inventory.groups) == set(fleet_ini.groups)
    for host in fleet_ini.hosts:
        assert inventory.host_vars(host) == fleet_ini.host_vars(host), host
        assert set(inventory.host_groups(host)) == set(fleet_ini.host_groups(host)), host
    for group in fleet_ini.groups:
        assert set(inventory.group_hosts(group)) == set(fleet_ini.group_hosts(group)), group
    assert inventory.source == str(DATA / name)


def test_yaml_values_keep_their_types() -> None:
    inventory = Inventory.load(DATA / "inventory_edge.yml")
    v = inventory.host_vars("single-host")
    assert v["nested"] == {"a": [1, 2], "b": {"c": None}}
    assert v["unsafe"] == "{{ not_templated }}"  # !unsafe is read as a plain string
    assert v["tier"] == "host-level"
    assert inventory.host_vars("pg2")["extra"] is True  # YAML 1.1 'yes'
    assert inventory.host_vars("pg2")["tier"] == "replica"  # ansible_group_priority 10 wins
    assert inventory.hosts["pg1"].port == 5432
    assert inventory.group_hosts("db") == ["pg1", "pg2", "pg3", "pg4"]
    assert "empty_group" in inventory.groups
    assert inventory.group_hosts("empty_group") == []
    assert inventory.vars == {"tier": "all", "dc": "ams"}


def test_string_sections_stand_for_one_entry() -> None:
    inventory = Inventory.from_yaml_text(
        "web:\n  hosts: w1\n  children: kids\n  vars: flag\nkids:\n  hosts: k1\n"
    )
    assert inventory.select("web") == ["w1", "k1"]
    assert inventory.groups["web"].vars == {"flag": None}


def test_null_sections_and_hosts_are_allowed() -> None:
    inventory = Inventory.from_yaml_text("all:\n  hosts:\n  children:\n    web:\n      hosts:\n        w1:\n")
    assert inventory.select("web") == ["w1"]


def test_from_yaml_text_names_its_source() -> None:
    with pytest.raises(InventoryError) as info:
        Inventory.from_yaml_text("web:\n  hosts:\n    w[3:1]:\n", source="inline.yml")
    assert info.value.problems[0].location == "inline.yml:3"


def test_recursive_alias_is_refused() -> None:
    text = "web: &loop\n  children:\n    inner: *loop\n"
    with pytest.raises(InventoryError, match=r"<yaml>:3:12: recursive alias \*loop"):
        Inventory.from_yaml_text(text)


def test_json_that_yaml_cannot_read_still_loads() -> None:
    long_key = "k" * 1100  # fine in JSON, too long for a YAML implicit key
    text = json.dumps({"web": {"hosts": {"w1": {"datacenter": "ams", long_key: 1}}}}, indent="\t")
    inventory = Inventory.from_json_text(text, source="long.json")
    assert inventory.select("web") == ["w1"]
    assert inventory.hosts["w1"].datacenter == "ams"
    assert inventory.host_vars("w1")[long_key] == 1
    with pytest.raises(InventoryError, match="unknown key 'hostz'") as info:
        Inventory.from_json_text(json.dumps({"web": {"hostz": {long_key: 1}}}), source="long.json")
    assert info.value.problems[0].location == "long.json"  # no line numbers on this path


def test_a_yaml_parse_error_without_a_mark_is_still_reported() -> None:
    with pytest.raises(InventoryError, match="bad YAML"):
        Inventory.from_yaml_text("a: 1\n---\nb: 2\n")
    with pytest.raises(InventoryError, match="bad YAML") as info:
        Inventory.from_yaml_text("web:\n  hosts: \x07\n", source="bell.yml")
    assert info.value.problems[0].location.startswith("bell.yml")


def test_unsafe_lists_and_mappings() -> None:
    text = "web:\n  vars:\n    l: !unsafe ['{{ a }}']\n    m: !unsafe {k: '{{ b }}'}\n  hosts: w1\n"
    assert Inventory.from_yaml_text(text).host_vars("w1") == {"l": ["{{ a }}"], "m": {"k": "{{ b }}"}}


# -- malformed files ---------------------------------------------------------------------------

MALFORMED_YAML: list[tuple[str, list[tuple[int, str]]]] = [
    ("inventory_bad_syntax.yml", [(6, "bad YAML")]),
    ("inventory_bad_key.yml", [(4, "unknown key 'host' in group 'web'")]),
    ("inventory_bad_range.yml", [(5, "[05:01]")]),
    ("inventory_bad_cycle.yml", [(5, "group 'b' would be its own ancestor: b -> a -> b")]),
    ("inventory_bad_hosts_list.yml", [(3, "'hosts' of group 'web' must be a mapping, found a list")]),
    ("inventory_bad_group_list.yml", [(4, "group 'web' must be a mapping")]),
    ("inventory_bad_hostvars.yml", [(3, "variables of host 'web01.example.com' must be a mapping")]),
    ("inventory_bad_plugin.yml", [(1, "inventory plugin configuration")]),
    ("inventory_bad_root.yml", [(1, "mapping of groups, found a list")]),
    ("inventory_bad_empty.yml", [(1, "empty")]),
    ("inventory_bad_tag.yml", [(3, "Ansible Vault values are not supported")]),
    ("inventory_bad_int_host.yml", [(3, "host name 10 must be a string")]),
    (
        "inventory_bad_many.yml",
        [
            (7, "[3:1]"),
            (8, "unknown key 'childs'"),
            (12, "'vars' of group 'db' must be a mapping"),
            (13, "group 'cache' must be a mapping"),
        ],
    ),
    ("inventory_bad_syntax.json", [(5, "bad JSON")]),
    ("inventory_bad_key.json", [(5, "unknown key 'hostz'")]),
]


@pytest.mark.parametrize(("name", "expected"), MALFORMED_YAML, ids=[n for n, _ in MALFORMED_YAML])
def test_malformed_yaml_names_file_and_line(name: str, expected: list[tuple[int, str]]) -> None:
    path = DATA / name
    with pytest.raises(InventoryError) as info:
        Inventory.load(path)
    problems = info.value.problems
    assert [p.location for p in problems] == [f"{path}:{line}" for line, _ in expected]
    for problem, (_, fragment) in zip(problems, expected, strict=True):
        assert fragment in problem.message
    assert info.value.source == str(path)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("web:\n  hosts:\n    [a, b]: {}\n", "host name"),
        ("? [a]\n: {}\n", "group name"),
        ("web:\n  vars:\n    1: x\n", "variable name 1 must be a string"),
        ("web:\n  children:\n    - a\n", "'children' of group 'web' must be a mapping"),
        ("web:\n  hosts:\n    w1: 5\n", "variables of host 'w1' must be a mapping"),
        ("web:\n  children:\n    1:\n", "group name 1 must be a string"),
        ("? {a: 1}\n: {}\n", "group name (a mapping) must be a string"),
        (
            "web:\n  vars:\n    x: !!python/name:os.system\n",
            "cannot read value: could not determine a constructor",
        ),
    ],
)
def test_more_malformed_shapes(text: str, fragment: str) -> None:
    with pytest.raises(InventoryError, match="<yaml>:") as info:
        Inventory.from_yaml_text(text)
    assert fragment in str(info.value)


def test_bad_connection_variables_are_problems_of_their_line() -> None:
    text = (
        "all:\n"
        "  vars:\n"
        "    ansible_user: [a, b]\n"
        "  hosts:\n"
        "    web01:\n"
        "      ansible_host: 192.0.2.1\n"
        "      ansible_port: 22x99\n"
        "    'web02:0':\n"
    )
    with pytest.raises(InventoryError) as info:
        Inventory.from_yaml_text(text, "hosts.yaml")
    assert [str(p) for p in info.value.problems] == [
        "hosts.yaml:3: group all: ansible_user must be a string, not list ['a', 'b']",
        "hosts.yaml:7: host web01: ansible_port '22x99' is not a TCP port (an integer 1-65535)",
        "hosts.yaml:8: host web02:0: ansible_port 0 is not a TCP port (an integer 1-65535)",
    ]


def test_connection_problems_of_an_inventory_built_in_python() -> None:
    inventory = Inventory(source="fleet")
    inventory.add_host("web01", ansible_port="22x99")
    inventory.add_group("db", ["db01"], vars={"ansible_ssh_port": 70000})
    assert [str(p) for p in inventory.connection_problems()] == [
        "fleet: group db: ansible_ssh_port 70000 is not a TCP port (an integer 1-65535)",
        "fleet: host web01: ansible_port '22x99' is not a TCP port (an integer 1-65535)",
    ]
