"""HostKeyStore: strict by default, accept-new writes where told, a changed key is never accepted."""

from __future__ import annotations

from pathlib import Path

import asyncssh
import pytest

from sysflow.actors.hostkeys import (
    DEFAULT_KNOWN_HOSTS,
    HostKeyPolicy,
    HostKeyStore,
    HostKeyVerdict,
    host_pattern,
)


def _key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519")


def _line(pattern: str, key: asyncssh.SSHKey) -> str:
    return f"{pattern} {' '.join(key.export_public_key('openssh').decode().split()[:2])}\n"


def test_patterns() -> None:
    assert host_pattern("web1", 22) == "web1"
    assert host_pattern("web1", None) == "web1"
    assert host_pattern("192.0.2.1", 2222) == "[192.0.2.1]:2222"


def test_strict_trusts_known_refuses_unknown_and_changed(tmp_path: Path) -> None:
    good, other = _key(), _key()
    kh = tmp_path / "known_hosts"
    kh.write_text(_line("web1", good) + _line("[127.0.0.9]:2200", good))
    store = HostKeyStore(kh)
    assert store.policy is HostKeyPolicy.STRICT
    assert store.check("web1", "192.0.2.1", 22, good) is HostKeyVerdict.TRUSTED
    assert store.check("127.0.0.9", "127.0.0.9", 2200, good) is HostKeyVerdict.TRUSTED
    assert store.check("web1", "192.0.2.1", 22, other) is HostKeyVerdict.CHANGED
    assert store.check("web2", "192.0.2.2", 22, good) is HostKeyVerdict.UNKNOWN
    assert not HostKeyVerdict.CHANGED.ok
    assert HostKeyVerdict.ACCEPTED.ok


def test_loaded_once_and_shared(tmp_path: Path) -> None:
    kh = tmp_path / "known_hosts"
    kh.write_text(_line("web1", _key()))
    store = HostKeyStore([kh, tmp_path / "absent"])
    first = store.asyncssh_known_hosts()
    kh.write_text("")  # later edits are not re-read per connection
    assert store.asyncssh_known_hosts() is first
    assert store.files == (kh, tmp_path / "absent")


def test_accept_new_appends_then_trusts_and_still_refuses_changes(tmp_path: Path) -> None:
    learned = tmp_path / "sub" / "learned_hosts"
    store = HostKeyStore(tmp_path / "none", policy="accept-new", accept_new_file=learned)
    key, other = _key(), _key()
    assert store.check("db1", "192.0.2.5", 2222, key) is HostKeyVerdict.ACCEPTED
    assert store.check("db1", "192.0.2.5", 2222, key) is HostKeyVerdict.TRUSTED
    assert store.check("db1", "192.0.2.5", 2222, other) is HostKeyVerdict.CHANGED
    assert learned.read_text() == _line("[db1]:2222", key)
    again = HostKeyStore(tmp_path / "none", policy="accept-new", accept_new_file=learned)
    assert again.check("db1", "192.0.2.5", 2222, key) is HostKeyVerdict.TRUSTED
    assert again.check("db1", "192.0.2.5", 2222, other) is HostKeyVerdict.CHANGED


def test_accept_new_needs_a_file() -> None:
    with pytest.raises(ValueError, match="accept_new_file"):
        HostKeyStore(policy=HostKeyPolicy.ACCEPT_NEW)


def test_off_only_when_asked(tmp_path: Path) -> None:
    store = HostKeyStore(tmp_path / "none", policy="off")
    assert store.asyncssh_known_hosts() is None
    assert store.check("any", "198.51.100.4", 22, _key()) is HostKeyVerdict.TRUSTED
    assert "off" in repr(store)
    with pytest.raises(ValueError):
        HostKeyStore(policy="sometimes")


def test_default_file_is_the_users_known_hosts() -> None:
    assert HostKeyStore().files == (DEFAULT_KNOWN_HOSTS.expanduser(),)


def test_certificates_are_asked_for_only_where_a_ca_is_trusted(tmp_path: Path) -> None:
    ca, key = _key(), _key()
    kh = tmp_path / "known_hosts"
    kh.write_text("@cert-authority *.corp" + _line("", ca) + _line("web1", key))
    store = HostKeyStore(kh)
    assert store.wants_certificates("db.corp", 22)
    assert store.wants_certificates("db.corp", 22)  # cached
    assert not store.wants_certificates("web1", 22)
    assert not HostKeyStore(kh, policy="off").wants_certificates("db.corp", 22)
