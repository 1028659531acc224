"""Credential providers: rotation at connect time, and secrets that never show up anywhere."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import asyncssh
import pytest

from sysflow.actors.auth import (
    CredentialProvider,
    Credentials,
    Secret,
    SSHAuth,
    callback_secret,
    env_secret,
    keyring_secret,
)
from sysflow.actors.ssh import ConnectionSettings, RetryPolicy, SSHTransport
from sysflow.errors import AuthenticationFailed
from tests.fixtures.ssh_servers import FakeSSHServer, start_fake_server

PASSWORD = "pw-Zq8!rotating-secret"
PASSPHRASE = "pp-K3y#passphrase-secret"
FEW_ROUNDS = {"rounds": 2, "ignore_few_rounds": True}  # bcrypt KDF rounds: keep tests fast


def test_secret_never_shows_itself() -> None:
    s = Secret(PASSWORD)
    for text in (repr(s), str(s), f"{s}", f"{s!r}", repr(Credentials(password=s, become_password=s))):
        assert PASSWORD not in text
    assert s.reveal() == PASSWORD
    assert s == Secret(PASSWORD)
    assert s != PASSWORD
    assert hash(s) == hash(Secret(PASSWORD))
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(s)


async def test_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_SECRET", "from-env")
    assert env_secret("T_SECRET")() == "from-env"
    assert env_secret("T_MISSING")() is None

    async def later() -> str:
        return "async-value"

    auth = SSHAuth.from_password(callback_secret(later), username="u")
    creds = await auth.credentials("h")
    assert creds.password is not None
    assert creds.password.reveal() == "async-value"
    assert creds.username == "u"
    assert not creds.uses_agent
    assert isinstance(auth, CredentialProvider)


def test_keyring_source_without_keyring_fails_clearly() -> None:
    try:
        import keyring  # type: ignore[import-not-found, unused-ignore]  # noqa: F401
    except ImportError:
        with pytest.raises(AuthenticationFailed, match="keyring"):
            keyring_secret("svc", "user")()
    else:  # pragma: no cover - depends on the machine
        assert callable(keyring_secret("svc", "user"))


def test_constructors_need_a_source() -> None:
    with pytest.raises(ValueError, match="callback"):
        SSHAuth.from_password()
    with pytest.raises(ValueError, match="callback"):
        SSHAuth().with_become()


async def test_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    key = tmp_path / "id"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(key, passphrase=PASSPHRASE, **FEW_ROUNDS)
    monkeypatch.setenv("X_USER", "deploy")
    monkeypatch.setenv("X_KEY_FILE", str(key))
    monkeypatch.setenv("X_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("X_PASSWORD", PASSWORD)
    monkeypatch.setenv("X_BECOME_PASSWORD", "become-secret")
    monkeypatch.setenv("SSH_AUTH_SOCK", str(tmp_path / "agent.sock"))
    auth = SSHAuth.from_env("X_")
    creds = await auth.credentials("h")
    assert creds.username == "deploy"
    assert len(creds.client_keys) == 1
    assert creds.agent_path == str(tmp_path / "agent.sock")
    assert creds.password is not None
    assert creds.password.reveal() == PASSWORD
    assert creds.become_password is not None
    for text in (repr(auth), repr(creds)):
        assert PASSWORD not in text
        assert PASSPHRASE not in text
        assert "become-secret" not in text


async def test_combinators_and_agent(tmp_path: Path) -> None:
    key = tmp_path / "id"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(key)
    auth = (
        SSHAuth.from_agent("/run/agent.sock", username="ops")
        .with_key(key)
        .with_password(env="NOPE_PASSWORD")
        .with_become(env="NOPE_BECOME")
        .with_username("root")
    )
    creds = await auth.credentials("h")
    assert creds.agent_path == "/run/agent.sock"
    assert creds.username == "root"
    assert len(creds.client_keys) == 1
    assert creds.password is None  # the variable is not set
    assert "agent" in repr(auth)
    assert "password=<provider>" in repr(auth)


async def test_identity_files_from_ssh_config_are_added_once(tmp_path: Path) -> None:
    key = tmp_path / "id"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(key)
    auth = SSHAuth.from_keyfile(key)
    creds = await auth.credentials("h", identity_files=[str(key), str(tmp_path / "missing")])
    assert len(creds.client_keys) == 1
    creds2 = await SSHAuth().credentials("h", identity_files=[str(key)])
    assert len(creds2.client_keys) == 1


async def test_keys_are_cached_and_reloaded_when_rotated(tmp_path: Path) -> None:
    path = tmp_path / "id"
    first = asyncssh.generate_private_key("ssh-ed25519")
    first.write_private_key(path)
    auth = SSHAuth.from_keyfile(path)
    a = (await auth.credentials("h")).client_keys[0]
    assert (await auth.credentials("h")).client_keys[0] is a  # cached: not re-read per connect
    second = asyncssh.generate_private_key("ssh-ed25519")
    second.write_private_key(path)
    b = (await auth.credentials("h")).client_keys[0]
    assert b.public_data == second.public_data
    c = (await auth.credentials("h", refresh=True)).client_keys[0]
    assert c is not b  # refresh drops the cache


async def test_wrong_passphrase_never_appears(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    path = tmp_path / "id"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(path, passphrase=PASSPHRASE, **FEW_ROUNDS)
    wrong = PASSPHRASE + "-wrong"
    auth = SSHAuth.from_keyfile(path, passphrase=lambda: wrong)
    with pytest.raises(AuthenticationFailed) as info:
        await auth.credentials("h")
    missing = SSHAuth.from_keyfile(path)
    with pytest.raises(AuthenticationFailed, match="cannot load key") as info2:
        await missing.credentials("h")
    absent = SSHAuth.from_keyfile(tmp_path / "absent")
    with pytest.raises(AuthenticationFailed, match="absent"):
        await absent.credentials("h")
    out = capsys.readouterr()
    for text in (str(info.value), repr(info.value), str(info2.value), caplog.text, out.out, out.err):
        assert PASSPHRASE not in text
        assert wrong not in text


async def _password_server(tmp_path: Path) -> FakeSSHServer:
    server = await start_fake_server(tmp_path)
    server.state.authorized_keys.clear()
    server.state.password = PASSWORD
    return server


async def test_secrets_never_reach_logs_or_errors(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Password, key passphrase and become password: grep every captured output for them."""
    caplog.set_level(logging.DEBUG)
    asyncssh.set_debug_level(2)
    server = await _password_server(tmp_path)
    key = tmp_path / "enc_key"
    enc = asyncssh.generate_private_key("ssh-ed25519")
    enc.write_private_key(key, passphrase=PASSPHRASE, **FEW_ROUNDS)
    server.state.authorized_keys.append(enc)
    settings = {"web1": ConnectionSettings("web1", server.host, server.port, "admin")}
    vault = {"password": PASSWORD}
    auth = (
        SSHAuth.from_password(lambda: vault["password"])
        .with_key(key, passphrase=lambda: PASSPHRASE)
        .with_become(lambda: "become-" + PASSWORD)
    )
    errors: list[str] = []
    try:
        async with SSHTransport(settings, auth, known_hosts=server.known_hosts) as t:
            r = await t.run("web1", "echo ok")
            errors.append(repr(t) + repr(auth) + repr(r))
        server.state.authorized_keys.clear()
        vault["password"] = "stale-" + PASSWORD
        async with SSHTransport(
            settings, auth, known_hosts=server.known_hosts, retry=RetryPolicy(retries=0)
        ) as t:
            with pytest.raises(AuthenticationFailed) as info:
                await t.run("web1", "true")
            errors += [str(info.value), repr(info.value)]
    finally:
        asyncssh.set_debug_level(1)
        server.close()
    out = capsys.readouterr()
    captured = "\n".join([caplog.text, out.out, out.err, *errors])
    assert "web1" in caplog.text or "127.0.0.1" in caplog.text  # asyncssh did log the handshake
    for secret in (PASSWORD, PASSPHRASE, "become-" + PASSWORD):
        assert secret not in captured


async def test_rotated_password_is_used_at_next_connect(tmp_path: Path) -> None:
    server = await _password_server(tmp_path)
    vault = {"password": PASSWORD}
    settings = {"web1": ConnectionSettings("web1", server.host, server.port, "admin")}
    try:
        async with SSHTransport(
            settings, SSHAuth.from_password(lambda: vault["password"]), known_hosts=server.known_hosts
        ) as t:
            assert (await t.run("web1", "echo one")).ok
            server.state.password = vault["password"] = "rotated-" + PASSWORD
            t.host_keys  # noqa: B018 - the store is shared, not per connection
            await t.close()
        async with SSHTransport(
            settings, SSHAuth.from_password(lambda: vault["password"]), known_hosts=server.known_hosts
        ) as t:
            assert (await t.run("web1", "echo two")).ok
        assert server.state.auth_failures == 0
    finally:
        server.close()


async def test_rotated_key_file_is_used_at_next_connect(tmp_path: Path) -> None:
    server = await start_fake_server(tmp_path)
    path = tmp_path / "rotating_key"
    old = asyncssh.generate_private_key("ssh-ed25519")
    old.write_private_key(path)
    server.state.authorized_keys[:] = [old]
    settings = {n: ConnectionSettings(n, server.host, server.port, "admin") for n in ("a", "b")}
    try:
        async with SSHTransport(settings, SSHAuth.from_keyfile(path), known_hosts=server.known_hosts) as t:
            assert (await t.run("a", "echo a")).ok
            new = asyncssh.generate_private_key("ssh-ed25519")
            new.write_private_key(path)
            server.state.authorized_keys[:] = [new]
            assert (await t.run("b", "echo b")).ok  # a new connection: the new key
            assert (await t.run("a", "echo a2")).ok  # the pooled one keeps working
        assert server.state.auth_failures == 0
    finally:
        server.close()
