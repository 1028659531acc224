"""Ansible INI inventories: structure, value typing, ranges, and every malformed file named by line."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sysflow.errors import InventoryError
from sysflow.model.inventory import Inventory
from sysflow.model.inventory_files import RangeError, expand_host_range, ini_value, split_port

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def fleet() -> Inventory:
    return Inventory.load(DATA / "inventory_fleet.ini")


def test_fleet_hosts_in_file_order_with_ranges_expanded(fleet: Inventory) -> None:
    names = list(fleet.hosts)
    assert len(names) == 19
    assert names[:4] == [
        "bastion.example.com",
        "mgmt01.example.com",
        "web01.example.com",
        "web02.example.com",
    ]
    assert "web06.example.com" in names
    assert [n for n in names if n.startswith("db-replica")] == [
        "db-replica-1.example.com",
        "db-replica-5.example.com",
        "db-replica-9.example.com",
    ]
    assert [n for n in names if n.startswith("db-") and "replica" not in n] == [
        f"db-{c}.example.com" for c in "abcd"
    ]


def test_fleet_groups_and_children(fleet: Inventory) -> None:
    assert list(fleet.groups) == ["web", "db", "cache", "ams", "fra", "frontend", "backend", "production"]
    assert fleet.groups["production"].children == ["frontend", "backend"]
    assert fleet.groups["frontend"].hosts == []
    assert len(fleet.group_hosts("production")) == 17
    assert fleet.group_hosts("ungrouped") == ["bastion.example.com", "mgmt01.example.com"]
    assert fleet.host_groups("web01.example.com") == ["web", "ams", "frontend", "production"]
    assert fleet.host_groups("bastion.example.com") == ["ungrouped"]


def test_inline_values_are_typed_like_ansible(fleet: Inventory) -> None:
    canary = fleet.hosts["web-canary.example.com"].vars
    assert canary == {
        "ansible_port": 2222,
        "ansible_user": "deploy",
        "weight": 10,
        "ratio": 0.5,
        "enabled": True,
        "label": "yes",
    }


def test_group_vars_and_precedence(fleet: Inventory) -> None:
    v = fleet.host_vars("db-a.example.com")
    assert v["datacenter"] == "ams"
    assert v["segment"] == "ams-core"
    assert v["tz"] == "Europe/Amsterdam"
    assert v["ports"] == [80, 443]
    assert v["limits"] == {"cpu": 4, "mem": "8G"}
    assert v["ansible_user"] == "ops"  # from [all:vars]
    assert fleet.host_vars("web-canary.example.com")["ansible_user"] == "deploy"  # host beats all
    assert fleet.host_vars("bastion.example.com")["ansible_user"] == "jump"
    assert "ansible_group_priority" not in fleet.host_vars("web04.example.com")


def test_host_properties_read_merged_vars(fleet: Inventory) -> None:
    db = fleet.hosts["db-c.example.com"]
    assert db.datacenter == "fra"
    assert db.segment == "fra"  # defaults to the datacenter
    assert fleet.hosts["db-a.example.com"].segment == "ams-core"
    assert db.user == "ops"
    assert db.key_file == "~/.ssh/db_key"
    assert db.port is None
    assert db.address == "db-c.example.com"
    bastion = fleet.hosts["bastion.example.com"]
    assert (bastion.address, bastion.user, bastion.datacenter) == ("192.0.2.10", "jump", None)
    assert fleet.hosts["mgmt01.example.com"].port == 2201


def test_from_ini_text_names_its_source() -> None:
    inventory = Inventory.from_ini_text("[web]\nw1 datacenter=ams\n", source="inline.ini")
    assert inventory.source == "inline.ini"
    assert inventory.select("web") == ["w1"]
    with pytest.raises(InventoryError) as info:
        Inventory.from_ini_text("[web]\nw[2:1]\n", source="inline.ini")
    assert info.value.problems[0].location == "inline.ini:2"
    assert info.value.source == "inline.ini"


def test_groups_declared_after_use_are_linked() -> None:
    inventory = Inventory.from_ini_text(
        "[top:children]\nmid\n[mid:children]\nleaf\n[leaf]\nh1\n[mid:vars]\nx=1\n"
    )
    assert inventory.select("top") == ["h1"]
    assert inventory.host_vars("h1") == {"x": 1}


# -- malformed files ---------------------------------------------------------------------------

MALFORMED_INI: list[tuple[str, list[tuple[int, str]]]] = [
    ("inventory_bad_range.ini", [(3, "must have begin <= end")]),
    ("inventory_bad_section.ini", [(4, "unknown type 'hostz'")]),
    ("inventory_bad_header.ini", [(1, "invalid section header '[web servers]'")]),
    ("inventory_bad_hostvar.ini", [(2, "got 'ansible_port'"), (2, "got '22'")]),
    ("inventory_bad_cycle.ini", [(12, "group 'a' would be its own ancestor: a -> b -> c -> a")]),
    ("inventory_bad_undefined_child.ini", [(5, "[prod:children] includes undefined group 'missing'")]),
    ("inventory_bad_vars_undefined.ini", [(4, "[ghost:vars] is not valid for undefined group 'ghost'")]),
    ("inventory_bad_quote.ini", [(2, "No closing quotation")]),
    ("inventory_bad_groupvar.ini", [(4, "expected key=value in [web:vars]")]),
    (
        "inventory_bad_yaml_as.ini",
        [(1, "looks like a YAML file"), (2, "reserved for a port"), (3, "reserved")],
    ),
    (
        "inventory_bad_many.ini",
        [
            (4, "[09:07]"),
            (5, "got 'port'"),
            (8, "bad step '0'"),
            (9, "equal width"),
            (10, "unclosed host range"),
            (11, "ends in ':'"),
            (13, "unknown type 'typo'"),
            (19, "undefined group 'nosuchgroup'"),
        ],
    ),
]


@pytest.mark.parametrize(("name", "expected"), MALFORMED_INI, ids=[n for n, _ in MALFORMED_INI])
def test_malformed_ini_names_file_and_line(name: str, expected: list[tuple[int, str]]) -> None:
    path = DATA / name
    with pytest.raises(InventoryError) as info:
        Inventory.load(path)
    problems = info.value.problems
    assert [p.location for p in problems] == [f"{path}:{line}" for line, _ in expected]
    for problem, (_, fragment) in zip(problems, expected, strict=True):
        assert fragment in problem.message
    for line, _ in expected:
        assert f"{path}:{line}:" in str(info.value)


def test_children_of_ungrouped_are_refused() -> None:
    with pytest.raises(InventoryError, match="'ungrouped' cannot have children"):
        Inventory.from_ini_text("[web]\nw1\n[ungrouped:children]\nweb\n")


# -- pieces ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "expanded"),
    [
        ("web[01:03].example.com", ["web01.example.com", "web02.example.com", "web03.example.com"]),
        ("web[8:10]", ["web8", "web9", "web10"]),
        ("web[08:10]", ["web08", "web09", "web10"]),
        ("db-[a:c]", ["db-a", "db-b", "db-c"]),
        ("db-[X:Z]", ["db-X", "db-Y", "db-Z"]),
        ("n[1:10:4]", ["n1", "n5", "n9"]),
        ("n[a:e:2]", ["na", "nc", "ne"]),
        ("n[:2]", ["n0", "n1", "n2"]),
        ("r[1:2]-s[a:b]", ["r1-sa", "r1-sb", "r2-sa", "r2-sb"]),
        ("plain.example.com", ["plain.example.com"]),
    ],
)
def test_expand_host_range(pattern: str, expanded: list[str]) -> None:
    assert expand_host_range(pattern) == expanded


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("web[05:01]", "begin <= end"),
        ("web[c:a]", "begin <= end"),
        ("web[1:2:3:4]", "begin:end or begin:end:step"),
        ("web[1]", "begin:end or begin:end:step"),
        ("web[1:]", "end value"),
        ("web[1:5:x]", "bad step"),
        ("web[01:100]", "equal width"),
        ("web[a:5]", "numbers or single letters"),
        ("web[1:3", "unclosed"),
    ],
)
def test_bad_ranges(pattern: str, message: str) -> None:
    with pytest.raises(RangeError, match=message):
        expand_host_range(pattern)


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("web01", ("web01", None)),
        ("web01:2222", ("web01", 2222)),
        ("web[01:03]:2222", ("web[01:03]", 2222)),
        ("web[01:03]", ("web[01:03]", None)),
        ("fe80::1", ("fe80::1", None)),
        ("[2001:db8::1]:22", ("2001:db8::1", 22)),
        ("[2001:db8::1]", ("2001:db8::1", None)),
        ("name:abc", ("name:abc", None)),
        (":22", (":22", None)),
    ],
)
def test_split_port(text: str, parts: tuple[str, int | None]) -> None:
    assert split_port(text) == parts


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("22", 22),
        ("'22'", "22"),
        ("0x1f", 31),
        ("1.5", 1.5),
        ("True", True),
        ("true", "true"),
        ("yes", "yes"),
        ("None", None),
        ("[1, 'a']", [1, "a"]),
        ("(1, 2)", [1, 2]),
        ("{1, 2}", [1, 2]),
        ("{'k': (1,)}", {"k": [1]}),
        ("b'raw'", "raw"),
        ("...", "..."),
        ("1j", "1j"),
        ("0777", "0777"),
        ("a b c", "a b c"),
        ("{a: 1}", "{a: 1}"),
        ("", ""),
    ],
)
def test_ini_value_typing(text: str, value: object) -> None:
    assert ini_value(text) == value
    assert type(ini_value(text)) is type(value)


# -- loading by extension or content -----------------------------------------------------------


def test_format_is_detected_from_content(tmp_path: Path) -> None:
    ini = tmp_path / "hosts"
    ini.write_text((DATA / "inventory_fleet.ini").read_text())
    yml = tmp_path / "prod"
    yml.write_text((DATA / "inventory_fleet.yml").read_text())
    jsn = tmp_path / "prod-json"
    jsn.write_text((DATA / "inventory_fleet.json").read_text())
    reference = Inventory.load(DATA / "inventory_fleet.ini")
    for path in (ini, yml, jsn):
        assert Inventory.load(path) == reference, path
    doc = tmp_path / "doc"
    doc.write_text("# only a comment\n---\nweb:\n  hosts: w1\n")
    assert Inventory.load(doc).select("web") == ["w1"]
    (tmp_path / "blank").write_text("\n# nothing\n")
    assert len(Inventory.load(tmp_path / "blank")) == 0
    cfg = tmp_path / "hosts.cfg"
    cfg.write_text("w1\n")
    assert Inventory.load(cfg).select("ungrouped") == ["w1"]


def test_unreadable_file_is_an_inventory_error(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="cannot read inventory") as info:
        Inventory.load(tmp_path / "missing.ini")
    assert info.value.problems[0].location == str(tmp_path / "missing.ini")
    binary = tmp_path / "binary.ini"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(InventoryError, match=r"binary.ini:1:3: the inventory file is binary \(a NUL byte\)"):
        Inventory.load(binary)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ('[web]\nw1\n"" x=1\n', 3, "no host name"),
        ("[top:children]\nweb extra\n[web]\nw1\n", 2, "expected a group name in [top:children]"),
    ],
)
def test_more_malformed_lines(text: str, line: int, fragment: str) -> None:
    with pytest.raises(InventoryError) as info:
        Inventory.from_ini_text(text, source="t.ini")
    assert info.value.problems[0].location == f"t.ini:{line}"
    assert fragment in info.value.problems[0].message


def test_variables_named_like_parameters() -> None:
    inventory = Inventory.from_ini_text("[web]\nw1:2200 name=front groups=x ansible_port=2222\n")
    assert inventory.hosts["w1"].vars == {"ansible_port": 2222, "name": "front", "groups": "x"}
    yaml_inventory = Inventory.from_yaml_text(
        "web:\n  hosts:\n    w1:\n      name: front\n      groups: [a]\n"
    )
    assert yaml_inventory.hosts["w1"].vars == {"name": "front", "groups": ["a"]}


@settings(max_examples=80, deadline=None)
@given(
    beg=st.integers(0, 500),
    span=st.integers(0, 40),
    step=st.integers(1, 7),
    width=st.integers(1, 4),
)
def test_numeric_ranges_expand_like_range(beg: int, span: int, step: int, width: int) -> None:
    end = beg + span
    width = max(width, len(str(end)))
    names = expand_host_range(f"n[{beg:0{width}d}:{end:0{width}d}:{step}].x")
    padded = width > 1 and f"{beg:0{width}d}".startswith("0")
    assert names == [f"n{i:0{width if padded else 0}d}.x" for i in range(beg, end + 1, step)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "web01 ansible_port=22x99",
            "host web01: ansible_port '22x99' is not a TCP port (an integer 1-65535)",
        ),
        ("web01 ansible_port=70000", "ansible_port 70000 is not a TCP port"),
        ("web01 ansible_port=0", "ansible_port 0 is not a TCP port"),
        ("web01 ansible_port=22.5", "ansible_port 22.5 is not a TCP port"),
        ("web01:99999", "host web01:99999: ansible_port 99999 is not a TCP port"),
        ("web01 ansible_user=''", "ansible_user is empty"),
        ("web01 ansible_host='a b'", "ansible_host 'a b' holds whitespace"),
        ('web01 ansible_ssh_common_args="-o \'x"', "cannot be split like a shell line"),
        ("web01\n[all:vars]\nansible_port=ssh", "[all:vars]: ansible_port 'ssh' is not a TCP port"),
    ],
)
def test_bad_connection_variables_are_problems_of_their_line(text: str, message: str) -> None:
    with pytest.raises(InventoryError) as info:
        Inventory.from_ini_text(text, "hosts.ini")
    (problem,) = info.value.problems
    assert problem.location == f"hosts.ini:{text.count(chr(10)) + 1}"
    assert message in problem.message


def test_good_connection_variables_load() -> None:
    inventory = Inventory.from_ini_text(
        'web01:2222 ansible_user=deploy\nweb02 ansible_port="22" ansible_host=192.0.2.2\n', "hosts.ini"
    )
    assert [inventory.host("web01").port, inventory.host("web02").port] == [2222, 22]
