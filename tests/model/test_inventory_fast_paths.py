"""The inventory readers' fast paths mean what the slow ones mean: an INI value typed without
``ast.literal_eval`` and a host line split without ``shlex`` give what those give, over hand-picked
edge cases and seeded random text; a host built without pydantic's generic construction is the host
``model_construct`` builds."""

from __future__ import annotations

import pickle
import random
import shlex
from typing import Any

import pytest

from sysflow.errors import InventoryError
from sysflow.model import inventory_ini, inventory_yaml
from sysflow.model.inventory import Host, Inventory

EDGES = ["0", "00", "-0", "-", "--5", "5-", "-5", "1_000", "0x1f", "1e5", "1.5", "10.0.0.1", "1.2.3",
         "True", "False", "None", "True.x", "a.b", "a..b", "if", "a.if", "_", "__debug__", "\u0663",
         "web", "h000001.example.com", " 5", "5 "]  # fmt: skip
ALPHABET = "0123456789-._aZx eTrueFalsNon\t'\"#\\=+\x0b\u00a0"


literal = inventory_ini.literal_value  # the slow path every fast path must agree with


def split(line: str) -> list[str] | str:
    try:
        return shlex.split(line, comments=True)
    except ValueError:
        return "refused"


def fast_split(line: str) -> list[str] | str:
    try:
        return inventory_ini._shell_split(line)
    except ValueError:
        return "refused"


def cases() -> list[str]:
    rng = random.Random(21)
    drawn = ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 8))) for _ in range(20_000)]
    return EDGES + drawn


@pytest.mark.parametrize("text", EDGES)
def test_edge_values_type_as_literal_eval_types_them(text: str) -> None:
    value = inventory_ini.ini_value(text)
    assert (value, type(value)) == (literal(text), type(literal(text)))


def test_random_values_and_lines_agree_with_the_slow_paths() -> None:
    for text in cases():
        value = inventory_ini.ini_value(text)
        assert (value, type(value)) == (literal(text), type(literal(text))), text
        assert fast_split(text) == split(text), text


def test_a_member_host_is_what_model_construct_builds() -> None:
    inventory = Inventory()
    fast = inventory.add_host("web1", groups=["web"], datacenter="ams")
    slow = Host.model_construct(name="web1", vars={"datacenter": "ams"})
    slow._inventory = inventory
    for attr in ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__"):
        assert getattr(fast, attr) == getattr(slow, attr), attr
    assert (fast, fast.model_dump(), repr(fast)) == (slow, slow.model_dump(), repr(slow))
    assert fast.effective_vars() == {"datacenter": "ams"} and fast.datacenter == "ams"
    moved = pickle.loads(pickle.dumps(fast))  # travels without its inventory, keeping merged vars
    assert moved.effective_vars() == {"datacenter": "ams"} and moved._inventory is None
    fast.vars = {"datacenter": "fra"}  # validate_assignment still applies
    assert inventory.host_vars("web1") == {"datacenter": "fra"}


def test_a_small_groups_members_come_in_inventory_order() -> None:
    rng = random.Random(7)
    inventory = Inventory()
    names = [f"h{i:03d}" for i in range(200)]
    rng.shuffle(names)
    for name in names:
        inventory.add_host(name)
    picked = rng.sample(names, 9)  # under an eighth of the hosts: ordered by position
    inventory.add_group("small", picked[:5])
    inventory.add_group("parent", picked[5:], children=["small"])
    order = list(inventory.hosts)
    assert inventory.group_hosts("small") == [h for h in order if h in set(picked[:5])]
    assert inventory.group_hosts("parent") == [h for h in order if h in set(picked)]
    inventory.add_host("h999", groups=["small"])  # a new host: positions follow
    assert inventory.group_hosts("parent")[-1] == "h999"


SCALARS = ["1", "0o17", "0x1f", "1_000", "-3", "1.5", ".inf", "-.Inf", ".nan", "1e3", "yes", "No", "on",
           "~", "null", "''", '"5"', "2026-03-01", "2026-03-01 10:00:00", "!unsafe '{{ x }}'", "web",
           "10.0.0.1", "'a: b'", "[1, 2]", "{a: 1}", "!!str 5", "!!binary aGk="]  # fmt: skip
KEYS = ["a", "b", "1", "yes", "~", "'x y'", "<<"]


def _host_vars(rng: random.Random) -> str:
    pairs = [f"{rng.choice(KEYS)}: {rng.choice(SCALARS)}" for _ in range(rng.randint(0, 4))]
    return "{" + ", ".join(p for p in pairs if not p.startswith("<<")) + "}"


def _inventory_text(rng: random.Random) -> str:
    lines = ["all:", "  children:", "    web:", "      hosts:"]
    lines += [f"        h{i}: {_host_vars(rng)}" for i in range(30)]
    lines += ["        anchored: &v {a: 1, b: two}", "        aliased: *v",
              "        merged: {<<: *v, c: 3}", "        nested: {a: {b: 1}}"]  # fmt: skip
    return "\n".join(lines) + "\n"


def test_flat_host_variables_read_as_the_generic_constructor_reads_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = random.Random(5)
    odd = ["web:\n  hosts:\n    h1: {a: =}\n", "web:\n  hosts:\n    h1: {ansible_user: yes, b: 1}\n"]
    texts = [_inventory_text(rng) for _ in range(40)] + odd
    fast = [_parsed(t) for t in texts]
    monkeypatch.setattr(inventory_yaml._YamlReader, "_flat_mapping", lambda self, node: None)
    slow = [_parsed(t) for t in texts]
    assert fast == slow
    assert all(isinstance(r, dict) for r in fast[:40]) and all(isinstance(r, list) for r in fast[40:])


def _parsed(text: str) -> Any:
    """Each host's variables with their types (NaN as text: it equals nothing), or the problems."""
    try:
        inventory = inventory_yaml.parse_yaml(text)
    except InventoryError as exc:
        return [str(p) for p in exc.problems]
    return {
        n: {k: (repr(v), type(v).__name__) for k, v in h.vars.items()} for n, h in inventory.hosts.items()
    }
