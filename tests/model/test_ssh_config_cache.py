"""The ssh config is tokenized once per file content, and resolves exactly as asyncssh alone does."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

import pytest
from asyncssh.config import ConfigParseError, SSHClientConfig

from sysflow.errors import InventoryError
from sysflow.model.ssh_config import _cached_config_class, resolve_connection

DATA = Path(__file__).parent / "data"

FLEET = """\
Host h1 h2,h3
    HostName %h.internal
    Port = 2201
    ConnectTimeout =5
Host [odd] h4
    User= bracket
Match originalhost h2 user ops
    IdentityFile ~/.ssh/%h_%r
Host h*
    User=ops
    ForwardAgent yes
Host h3 !h2
    ProxyJump jump
Include extra_does_not_exist
Host *
    ServerAliveInterval 30
    ProxyCommand ssh -W %h:%p gw
"""


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def options(cls: Any, paths: list[Path], alias: str, user: Any = (), port: Any = ()) -> dict[str, Any]:
    config = cls.load(None, paths, False, False, False, getpass.getuser(), user, alias, port)
    return dict(config._options)


@pytest.mark.parametrize("alias", ["h1", "h2", "h3", "h4", "[odd]", "odd", "x", "H1"])
@pytest.mark.parametrize(("user", "port"), [((), ()), ("root", 22)])
def test_same_options_as_asyncssh(tmp_path: Path, alias: str, user: Any, port: Any) -> None:
    config = tmp_path / "config"
    config.write_text(FLEET)
    paths = [config, DATA / "ssh_config_fleet"]
    ours = options(_cached_config_class(), paths, alias, user, port)
    assert ours == options(SSHClientConfig, paths, alias, user, port)


def test_an_edited_file_is_read_again(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("Host a\n    Port 2201\n")
    assert resolve_connection("a", {}, config).port == 2201
    config.write_text("Host a\n    Port 2202\n")
    assert resolve_connection("a", {}, config).port == 2202


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("Host a\n    User 'unclosed\n", "No closing quotation"),
        ("Host a\n    Port\n", "Missing Port value"),
        ("Host a\n    Port 22 23\n", "Extra data at end: 23"),
    ],
)
def test_errors_name_the_line_as_asyncssh_does(tmp_path: Path, text: str, fragment: str) -> None:
    config = tmp_path / "config"
    config.write_text(text)
    with pytest.raises(ConfigParseError) as theirs:
        options(SSHClientConfig, [config], "a")
    with pytest.raises(ConfigParseError) as ours:
        options(_cached_config_class(), [config], "a")
    assert str(ours.value) == str(theirs.value)
    assert fragment in str(ours.value)
    with pytest.raises(InventoryError, match=f"{config.name}:2"):
        resolve_connection("a", {}, config)


def test_undecodable_file_fails_as_asyncssh_fails(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_bytes(b"Host a\n    User \xff\xfe\n")
    with pytest.raises(UnicodeDecodeError):
        options(SSHClientConfig, [config], "a")
    with pytest.raises(UnicodeDecodeError):
        options(_cached_config_class(), [config], "a")


def test_unreadable_file_fails_as_asyncssh_fails(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        options(_cached_config_class(), [tmp_path / "missing"], "a")


def test_many_distinct_configs_stay_bounded(tmp_path: Path) -> None:
    from sysflow.model import ssh_config

    for i in range(ssh_config._PARSED_CACHE_SIZE + 3):
        config = tmp_path / f"config{i}"
        config.write_text(f"Host a\n    Port {3000 + i}\n")
        assert resolve_connection("a", {}, config).port == 3000 + i
    assert len(ssh_config._parsed) <= ssh_config._PARSED_CACHE_SIZE


RUNS = """\
Host a b
    Port 2201
Host c
    Port 2203
Host a
    User second-a
    IdentityFile ~/.ssh/a2
Match originalhost b
    User matched-b
Host d a
    HostName %h.d
    Port 2204
Host x*
    User wild
Host e
    User e
Host *
    IdentityFile ~/.ssh/all
"""


@pytest.mark.parametrize("alias", ["a", "b", "c", "d", "e", "x1", "zz"])
def test_runs_of_literal_host_blocks_resolve_as_asyncssh_does(tmp_path: Path, alias: str) -> None:
    config = tmp_path / "config"
    config.write_text(RUNS)
    ours = options(_cached_config_class(), [config], alias)
    assert ours == options(SSHClientConfig, [config], alias)
