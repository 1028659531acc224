"""Connection settings from inventory vars and an OpenSSH client config, checked against ``ssh -G``.

``ssh -G`` prints the configuration ``ssh`` would use for a host without connecting, so it is the
oracle for "resolve it the way ``ssh`` does".
"""

from __future__ import annotations

import dataclasses
import functools
import getpass
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from sysflow.errors import InventoryError
from sysflow.model.inventory import Inventory
from sysflow.model.ssh_config import ConnectionSettings, resolve_connection

DATA = Path(__file__).parent / "data"
CONFIG = DATA / "ssh_config_fleet"


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private home: no real ~/.ssh/config leaks in, and ``~`` expands predictably."""
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


@functools.cache
def ssh_g(alias: str, *options: str) -> dict[str, list[str]]:
    """What ``ssh -G -F CONFIG`` resolves for ``alias`` (no connection is made; ``~`` unexpanded)."""
    out = subprocess.run(
        ["ssh", "-G", "-F", str(CONFIG), *options, alias],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    seen: dict[str, list[str]] = {}
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        seen.setdefault(key, []).append(value)
    return seen


def expand_identity(path: str, hostname: str, user: str) -> str:
    return os.path.expanduser(path.replace("%h", hostname).replace("%r", user))


RESOLVED: list[tuple[str, ConnectionSettings]] = [
    (
        "web01.example.com",
        ConnectionSettings(
            "web01.example.com",
            "web01.example.com",
            2200,
            "webops",
            ("~/.ssh/web_web01.example.com_webops", "~/.ssh/fleet_ed25519"),
            "bastion",
        ),
    ),
    (
        "web-canary.example.com",
        ConnectionSettings(
            "web-canary.example.com",
            "web-canary.example.com",
            2200,
            "canary",
            ("~/.ssh/canary_ed25519", "~/.ssh/fleet_ed25519"),
            "bastion",
        ),
    ),
    (
        "db-a.example.com",
        ConnectionSettings(
            "db-a.example.com",
            "db-a.example.com.internal",
            5022,
            "fallback",
            ("~/.ssh/fleet_ed25519",),
            "bastion",
        ),
    ),
    (
        "bastion.example.com",
        ConnectionSettings(
            "bastion.example.com", "192.0.2.10", 2022, "jump", ("~/.ssh/fleet_ed25519",), None
        ),
    ),
    ("bastion", ConnectionSettings("bastion", "192.0.2.10", 2022, "jump", (), None)),
    (
        "cache01.example.com",
        ConnectionSettings(
            "cache01.example.com",
            "cache01.example.com",
            2200,
            "cacheops",
            ("~/.ssh/fleet_ed25519",),
            "bastion",
        ),
    ),
    (
        "198.51.100.3",
        ConnectionSettings("198.51.100.3", "198.51.100.3", 22, "<me>", (), "jump10@gw.example.net:2222"),
    ),
    ("other.example.net", ConnectionSettings("other.example.net", "other.example.net", 22, "<me>", (), None)),
    # patterns match case-sensitively, the final hostname is lowercased
    ("WEB01.Example.com", ConnectionSettings("WEB01.Example.com", "web01.example.com", 22, "<me>", (), None)),
]


def expected(settings: ConnectionSettings) -> ConnectionSettings:
    user = getpass.getuser() if settings.username == "<me>" else settings.username
    keys = tuple(os.path.expanduser(k) for k in settings.identity_files)
    return dataclasses.replace(settings, username=user, identity_files=keys)


@pytest.mark.parametrize(("alias", "settings"), RESOLVED, ids=[a for a, _ in RESOLVED])
def test_config_alone(alias: str, settings: ConnectionSettings) -> None:
    assert resolve_connection(alias, {}, CONFIG) == expected(settings)


@pytest.mark.parametrize(("alias", "settings"), RESOLVED, ids=[a for a, _ in RESOLVED])
def test_config_alone_agrees_with_ssh(alias: str, settings: ConnectionSettings) -> None:
    ours = resolve_connection(alias, {}, CONFIG)
    theirs = ssh_g(alias)
    assert ours.hostname == theirs["hostname"][0]
    assert ours.port == int(theirs["port"][0])
    assert ours.username == theirs["user"][0]
    assert ours.proxy_jump == theirs.get("proxyjump", [None])[0]
    if ours.identity_files:  # without any, ssh lists its default keys
        keys = [expand_identity(k, ours.hostname, ours.username) for k in theirs["identityfile"]]
        assert list(ours.identity_files) == keys


@pytest.mark.parametrize(
    ("alias", "host_vars"),
    [
        ("web01.example.com", {"ansible_port": 2222, "ansible_user": "deploy"}),
        ("db-a.example.com", {"ansible_ssh_private_key_file": "{home}/db_key"}),
        ("web01.example.com", {"ansible_host": "198.51.100.99"}),
        ("box", {"ansible_host": "bastion", "ansible_user": "me2"}),
    ],
)
def test_inventory_vars_agree_with_ssh_given_the_same_options(
    home: Path, alias: str, host_vars: dict[str, object]
) -> None:
    if "ansible_ssh_private_key_file" in host_vars:  # ssh -G drops -i files that do not exist
        key = str(host_vars["ansible_ssh_private_key_file"]).format(home=home)
        Path(key).write_text("not a real key")
        host_vars = {**host_vars, "ansible_ssh_private_key_file": key}
    ours = resolve_connection(alias, host_vars, CONFIG)
    options: list[str] = []
    if "ansible_port" in host_vars:
        options += ["-p", str(host_vars["ansible_port"])]
    if "ansible_user" in host_vars:
        options += ["-l", str(host_vars["ansible_user"])]
    if "ansible_ssh_private_key_file" in host_vars:
        options += ["-i", str(host_vars["ansible_ssh_private_key_file"])]
    theirs = ssh_g(str(host_vars.get("ansible_host", alias)), *options)
    assert ours.name == alias
    assert (ours.hostname, ours.port, ours.username) == (
        theirs["hostname"][0],
        int(theirs["port"][0]),
        theirs["user"][0],
    )
    assert ours.proxy_jump == theirs.get("proxyjump", [None])[0]
    if ours.identity_files:
        keys = [expand_identity(k, ours.hostname, ours.username) for k in theirs["identityfile"]]
        assert list(ours.identity_files) == keys


def test_explicit_vars_override_the_config() -> None:
    settings = resolve_connection(
        "web01.example.com",
        {"ansible_port": "2222", "ansible_user": "deploy", "ansible_ssh_private_key_file": "~/k/deploy"},
        CONFIG,
    )
    home = os.path.expanduser("~")
    assert settings.port == 2222
    assert settings.username == "deploy"
    assert settings.identity_files == (
        f"{home}/k/deploy",
        f"{home}/.ssh/web_web01.example.com_deploy",
        f"{home}/.ssh/fleet_ed25519",
    )


def test_ansible_host_is_what_the_config_sees() -> None:
    settings = resolve_connection("web01.example.com", {"ansible_host": "198.51.100.7"}, CONFIG)
    assert (settings.name, settings.hostname, settings.port) == ("web01.example.com", "198.51.100.7", 22)
    assert settings.proxy_jump == "jump10@gw.example.net:2222"


def test_legacy_ansible_ssh_names() -> None:
    settings = resolve_connection(
        "x",
        {"ansible_ssh_host": "other.example.net", "ansible_ssh_port": 2201, "ansible_ssh_user": "legacy"},
        (),
    )
    assert (settings.hostname, settings.port, settings.username) == ("other.example.net", 2201, "legacy")
    newer = resolve_connection("x", {"ansible_port": 2202, "ansible_ssh_port": 2201}, ())
    assert newer.port == 2202


def test_no_config_means_defaults() -> None:
    settings = resolve_connection("web01.example.com", {}, ())
    assert settings == ConnectionSettings("web01.example.com", "web01.example.com", 22, getpass.getuser())


def test_none_reads_the_users_config_when_present(home: Path) -> None:
    assert resolve_connection("web01.example.com", {}).port == 22  # no ~/.ssh/config yet
    (home / ".ssh").mkdir()
    (home / ".ssh" / "config").write_text(CONFIG.read_text())
    assert resolve_connection("web01.example.com", {}).port == 2200


def test_several_config_files_in_order(tmp_path: Path) -> None:
    first = tmp_path / "first"
    first.write_text("Host web01.example.com\n    Port 2999\n")
    settings = resolve_connection("web01.example.com", {}, [first, CONFIG])
    assert settings.port == 2999
    assert settings.username == "webops"


def test_include_and_identity_none(tmp_path: Path) -> None:
    extra = tmp_path / "extra.conf"
    extra.write_text("Host inc.example.org\n    User included\n    IdentityFile none\n")
    main = tmp_path / "main.conf"
    main.write_text(f"Include {extra}\nHost *\n    Port 2345\n")
    settings = resolve_connection("inc.example.org", {}, main)
    assert (settings.username, settings.port, settings.identity_files) == ("included", 2345, ())


def test_missing_config_file_is_an_inventory_error(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="ssh config file not found") as info:
        resolve_connection("h", {}, tmp_path / "nope")
    assert info.value.problems[0].location == str(tmp_path / "nope")


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("ssh_config_bad_port", "Invalid Port integer value"),
        ("ssh_config_bad_missing", "Missing Hostname value"),
    ],
)
def test_bad_config_names_file_and_line(name: str, fragment: str) -> None:
    with pytest.raises(InventoryError, match=fragment) as info:
        resolve_connection("web01", {}, DATA / name)
    assert info.value.problems[0].location == f"{DATA / name}:2"


SSH_ARGS = [
    ("-J jump1", "jump1"),
    ("-Jjump2:2200", "jump2:2200"),
    ("-o ProxyJump=ops@jump3", "ops@jump3"),
    ("-oProxyJump=jump4", "jump4"),
    ("-o StrictHostKeyChecking=no -o 'ProxyJump jump5'", "jump5"),
    ("-o ProxyJump=none", None),
    ("-o StrictHostKeyChecking=no", "bastion"),
]


@pytest.mark.parametrize(("args", "jump"), SSH_ARGS)
def test_proxy_jump_on_ansibles_ssh_command_line(args: str, jump: str | None) -> None:
    for var in ("ansible_ssh_common_args", "ansible_ssh_extra_args"):
        ours = resolve_connection("web01.example.com", {var: args}, CONFIG)
        assert ours.proxy_jump == jump
        theirs = ssh_g("web01.example.com", *shlex.split(args))
        assert ours.proxy_jump == theirs.get("proxyjump", [None])[0]


def test_common_args_come_before_extra_args() -> None:
    host_vars = {"ansible_ssh_common_args": "-J first", "ansible_ssh_extra_args": "-J second"}
    assert resolve_connection("x", host_vars, ()).proxy_jump == "first"
    unparsable = {"ansible_ssh_common_args": "-J 'unclosed", "ansible_ssh_extra_args": "-J second"}
    assert resolve_connection("x", unparsable, ()).proxy_jump == "second"
    assert resolve_connection("x", {"ansible_ssh_common_args": "-J"}, ()).proxy_jump is None


def test_bad_percent_token_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "tokens.conf"
    config.write_text("Host *\n    IdentityFile ~/.ssh/%Z\n")
    with pytest.raises(InventoryError, match="Invalid token expansion") as info:
        resolve_connection("h", {}, config)
    assert info.value.problems[0].location == str(config)


def test_a_key_listed_twice_is_tried_once(home: Path) -> None:
    settings = resolve_connection(
        "web-canary.example.com", {"ansible_ssh_private_key_file": "~/.ssh/fleet_ed25519"}, CONFIG
    )
    assert settings.identity_files == (f"{home}/.ssh/fleet_ed25519", f"{home}/.ssh/canary_ed25519")


def test_bad_ansible_port_is_an_inventory_error() -> None:
    with pytest.raises(InventoryError, match="not a TCP port"):
        resolve_connection("h", {"ansible_port": "ssh"}, ())


def test_inventory_connection_uses_merged_group_vars() -> None:
    inventory = Inventory.load(DATA / "inventory_fleet.ini")
    home = os.path.expanduser("~")
    db = inventory.connection("db-a.example.com", CONFIG)
    assert db == ConnectionSettings(
        "db-a.example.com",
        "db-a.example.com.internal",
        5022,
        "ops",  # ansible_user from [all:vars] beats the config's User
        (f"{home}/.ssh/db_key", f"{home}/.ssh/fleet_ed25519"),
        "bastion",
    )
    canary = inventory.connection("web-canary.example.com", CONFIG)
    assert (canary.port, canary.username) == (2222, "deploy")
    bastion = inventory.connection("bastion.example.com", CONFIG)
    assert (bastion.hostname, bastion.port, bastion.username, bastion.proxy_jump) == (
        "192.0.2.10",
        22,
        "jump",
        None,
    )


def test_connection_settings_are_frozen() -> None:
    settings = ConnectionSettings("a", "a", 22, "u")
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.port = 23  # type: ignore[misc]
