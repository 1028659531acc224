"""SSHTransport against the real OpenSSH sshd of the test session (loopback aliases only)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sysflow.actors.auth import SSHAuth
from sysflow.actors.ssh import ConnectionSettings, SSHLimits, SSHTimeouts, SSHTransport
from sysflow.errors import AuthenticationFailed, CommandTimeout, TransportError
from tests.fixtures.sshd import SSHD, host_names

pytestmark = pytest.mark.ssh


def _transport(sshd: SSHD, names: list[str], **kw: object) -> SSHTransport:
    auth = kw.pop("auth", SSHAuth.from_keyfile(sshd.client_key))
    user = kw.pop("user", None)
    settings = sshd.settings(names, user=user)  # type: ignore[arg-type]
    return SSHTransport(settings, auth, known_hosts=sshd.known_hosts, **kw)  # type: ignore[arg-type]


async def test_exit_status_and_both_streams(sshd: SSHD) -> None:
    names = host_names(3)
    async with _transport(sshd, names) as t:
        for n in names:
            r = await t.run(n, "echo hi; echo err >&2; exit 3")
            assert (r.exit_status, r.stdout, r.stderr, r.ok) == (3, "hi\n", "err\n", False)
            assert r.host == n
            assert r.start <= r.end
        ok = await t.run(names[0], "true")
        assert ok.ok
        stats = t.stats()
        assert (stats.connections_open, stats.connects_done, stats.channels_in_flight) == (3, 3, 0)
        assert stats.commands_done == 4


async def test_env_cwd_and_stdin(sshd: SSHD, tmp_path: Path) -> None:
    async with _transport(sshd, ["h0001"]) as t:
        r = await t.run(
            "h0001", 'printf "%s|" "$FOO" "$BAR"; pwd', env={"FOO": "a b'c", "BAR": "$HOME"}, cwd="/tmp"
        )
        assert r.stdout == "a b'c|$HOME|/tmp\n"
        r = await t.run("h0001", "cat", stdin="line one\nline two\n")
        assert r.stdout == "line one\nline two\n"
        r = await t.run("h0001", "wc -c", stdin=b"\x00\x01\x02")
        assert r.stdout.strip() == "3"
        r = await t.run("h0001", "pwd", cwd=str(tmp_path / "missing"))
        assert r.exit_status == 125
        with pytest.raises(ValueError, match="environment variable"):
            await t.run("h0001", "true", env={"BAD-NAME": "x"})


async def test_sessions_get_the_stock_home(sshd: SSHD) -> None:
    async with _transport(sshd, ["h0002"]) as t:
        r = await t.run("h0002", "echo $HOME")
        assert r.stdout.strip() == str(sshd.home)


async def test_output_is_capped_head_and_tail(sshd: SSHD) -> None:
    async with _transport(sshd, ["h0003"], output_cap=1000) as t:
        r = await t.run("h0003", "printf 'H%.0s' $(seq 600); printf 'T%.0s' $(seq 4400)")
        assert r.truncated
        assert r.stdout_bytes == 5000
        assert r.stdout.startswith("H" * 500)
        assert r.stdout.endswith("T" * 500)
        assert "[4000 bytes omitted]" in r.stdout
        assert r.stdout_sha256 == hashlib.sha256(b"H" * 600 + b"T" * 4400).hexdigest()


async def test_signal_is_reported(sshd: SSHD) -> None:
    async with _transport(sshd, ["h0004"]) as t:
        r = await t.run("h0004", "kill -TERM $$")
        assert r.exit_status is None
        assert r.signal == "TERM"
        assert not r.ok


async def test_timed_out_command_is_stopped_on_the_host(sshd: SSHD) -> None:
    async with _transport(sshd, ["h0005"]) as t:
        with pytest.raises(CommandTimeout) as info:
            await t.run("h0005", "sleep 37.25", timeout=0.5)
        assert info.value.host == "h0005"
        assert info.value.timeout == 0.5
        for _ in range(50):  # bounded: the KILL travels asynchronously
            r = await t.run("h0005", "pgrep -f 'slee[p] 37.25' || true")
            if r.stdout == "":
                break
            await asyncio.sleep(0.05)
        assert r.stdout == ""
        assert t.stats().connects_done == 1


async def test_cancelled_command_is_stopped_on_the_host(sshd: SSHD) -> None:
    async with _transport(sshd, ["h0006"]) as t:
        task = asyncio.create_task(t.run("h0006", "sleep 38.5"))
        for _ in range(100):
            if (await t.run("h0006", "pgrep -f 'slee[p] 38.5' || true")).stdout:
                break
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(50):
            r = await t.run("h0006", "pgrep -f 'slee[p] 38.5' || true")
            if r.stdout == "":
                break
            await asyncio.sleep(0.05)
        assert r.stdout == ""


async def test_channels_multiplex_on_one_connection(sshd: SSHD) -> None:
    async with _transport(sshd, ["h0007"], limits=SSHLimits(max_sessions=4)) as t:
        results = await asyncio.gather(*(t.run("h0007", f"echo {i}") for i in range(20)))
        assert [r.stdout for r in results] == [f"{i}\n" for i in range(20)]
        assert t.stats().connects_done == 1
        assert t.stats().peak_channels_in_flight == 4  # the rest waited for a free channel


@pytest.mark.slow
async def test_thousand_connections_then_500_hosts_in_order(sshd: SSHD) -> None:
    names = host_names(1000)
    runs = sshd.workdir / "runs"
    runs.mkdir(exist_ok=True)
    async with _transport(sshd, names, limits=SSHLimits(max_connections=1000)) as t:
        sem = asyncio.Semaphore(100)

        async def connect(n: str) -> None:
            async with sem:
                await t.connect(n)

        t0 = time.perf_counter()
        await asyncio.gather(*(connect(n) for n in names))
        print(f"1000 connects: {time.perf_counter() - t0:.1f}s")
        assert t.stats().connections_open == 1000
        assert t.stats().connects_done == 1000
        assert t.stats().peak_connections_open == 1000

        async def steps(n: str) -> list[int | None]:
            async with sem:
                return [(await t.run(n, f"echo {n} {i} >> {runs}/{n}")).exit_status for i in range(3)]

        t0 = time.perf_counter()
        statuses = await asyncio.gather(*(steps(n) for n in names[:500]))
        print(f"1500 commands: {time.perf_counter() - t0:.1f}s")
        assert all(s == [0, 0, 0] for s in statuses)
        assert t.stats().connects_done == 1000
    assert t.stats().connections_open == 0
    for n in names[:500]:
        assert (runs / n).read_text() == "".join(f"{n} {i}\n" for i in range(3))


async def test_passphrase_key_and_certificate(sshd: SSHD, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SSHD_PASSPHRASE", sshd.passphrase)
    auth = SSHAuth.from_keyfile(sshd.client_key_encrypted, passphrase_env="TEST_SSHD_PASSPHRASE")
    async with _transport(sshd, ["h0010"], auth=auth) as t:
        assert (await t.run("h0010", "true")).ok
    async with _transport(sshd, ["h0011"], auth=SSHAuth.from_keyfile(sshd.client_cert_key)) as t:
        assert (await t.run("h0011", "true")).ok
    explicit = SSHAuth.from_keyfile(sshd.client_cert_key, certificate=sshd.client_cert)
    async with _transport(sshd, ["h0012"], auth=explicit) as t:
        assert (await t.run("h0012", "true")).ok


async def test_unauthorised_key_fails(sshd: SSHD, tmp_path: Path) -> None:
    import asyncssh

    stranger = tmp_path / "stranger"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(stranger)
    settings = sshd.settings(["h0013"], key=stranger)
    async with SSHTransport(settings, SSHAuth.from_keyfile(stranger), known_hosts=sshd.known_hosts) as t:
        with pytest.raises(AuthenticationFailed, match="h0013"):
            await t.run("h0013", "true")
        assert t.stats().connect_failures == 2  # the first try, and the one after a fresh ask


async def test_become_feeds_the_password_and_never_echoes_it(sshd: SSHD) -> None:
    """Real sudo, as the non-root login with a sudoers entry that asks for its password."""
    auth = SSHAuth.from_keyfile(sshd.client_key).with_become(lambda: sshd.become_password)
    async with _transport(sshd, ["h0014"], auth=auth, user=sshd.become_user) as t:
        r = await t.run("h0014", "id -u; echo $SUDO_USER; cat", become=True, stdin="payload\n")
        assert r.stdout == f"0\n{sshd.become_user}\npayload\n", r.stderr
        assert sshd.become_password not in r.stdout + r.stderr
        r = await t.run("h0014", "id -un", become="nobody")
        assert r.stdout == "nobody\n", r.stderr
        r = await t.run("h0014", "id -un")
        assert r.stdout == f"{sshd.become_user}\n"
    async with _transport(sshd, ["h0014"], user=sshd.become_user) as t:
        with pytest.raises(
            TransportError, match=rf"sudo: a password is required on h0014 \(user {sshd.become_user}\)"
        ):
            await t.run("h0014", "id -u", become="root")
    wrong = SSHAuth.from_keyfile(sshd.client_key).with_become(lambda: "not-" + sshd.become_password)
    async with _transport(sshd, ["h0014"], auth=wrong, user=sshd.become_user) as t:
        with pytest.raises(
            TransportError, match=rf"^become password rejected by sudo on h0014 \(user {sshd.become_user}\)$"
        ):
            await t.run("h0014", "id -u", become=True)


async def test_timed_out_become_command_is_stopped(sshd: SSHD) -> None:
    auth = SSHAuth.from_keyfile(sshd.client_key).with_become(lambda: sshd.become_password)
    async with _transport(sshd, ["h0023"], auth=auth, user=sshd.become_user) as t:
        with pytest.raises(CommandTimeout):
            await t.run("h0023", "sleep 39.75", become=True, timeout=0.5)
        for _ in range(50):
            r = await t.run("h0023", "pgrep -f 'slee[p] 39.75' || true")
            if r.stdout == "":
                break
            await asyncio.sleep(0.05)
        assert r.stdout == ""


@pytest.fixture
def ssh_agent(sshd: SSHD, tmp_path: Path) -> Iterator[Path]:
    """A private ssh-agent holding the fixture's client key; stopped by its PID."""
    sock = tmp_path / "agent.sock"
    agent = subprocess.run(["ssh-agent", "-a", str(sock)], check=True, capture_output=True, text=True)
    pid = int(agent.stdout.split("SSH_AGENT_PID=")[1].split(";")[0])
    try:
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        subprocess.run(["ssh-add", "-q", str(sshd.client_key)], check=True, env=env, capture_output=True)
        yield sock
    finally:
        os.kill(pid, signal.SIGTERM)


async def test_keys_from_ssh_agent(sshd: SSHD, ssh_agent: Path, tmp_path: Path) -> None:
    table = sshd.settings(["h0024"], key=tmp_path / "no-such-key")  # only the agent can log in
    async with SSHTransport(table, SSHAuth.from_agent(str(ssh_agent)), known_hosts=sshd.known_hosts) as t:
        assert (await t.run("h0024", "echo agent")).stdout == "agent\n"


async def test_identity_files_from_settings(sshd: SSHD) -> None:
    settings = sshd.settings(["h0015"])
    async with SSHTransport(settings, SSHAuth(), known_hosts=sshd.known_hosts) as t:
        assert (await t.run("h0015", "true")).ok


async def test_proxy_jump_tunnels_through_a_jump_host(sshd: SSHD) -> None:
    table = sshd.settings(["h0016", "h0017", "bastion1"])
    jumped = table["h0017"]
    table["h0017"] = ConnectionSettings(
        name="h0017",
        hostname=jumped.hostname,
        port=jumped.port,
        username=jumped.username,
        identity_files=jumped.identity_files,
        proxy_jump="bastion1",
    )
    table["h0018"] = ConnectionSettings(
        name="h0018",
        hostname=sshd.address_of("h0018"),
        port=sshd.port,
        username="root",
        proxy_jump=f"root@{sshd.address_of('h0019')}:{sshd.port}",
    )
    async with SSHTransport(table, SSHAuth.from_keyfile(sshd.client_key), known_hosts=sshd.known_hosts) as t:
        assert (await t.run("h0017", "echo via")).stdout == "via\n"
        assert (await t.run("h0018", "echo via2")).stdout == "via2\n"
        assert t.stats().connects_done == 4  # two jumps, two targets
    assert t.stats().connections_open == 0


async def test_idle_connections_are_closed(sshd: SSHD) -> None:
    async with _transport(sshd, ["h0020"], timeouts=SSHTimeouts(idle=0.2)) as t:
        assert (await t.run("h0020", "true")).ok
        for _ in range(100):
            if t.stats().connections_open == 0:
                break
            await asyncio.sleep(0.05)
        assert t.stats().connections_open == 0
        assert (await t.run("h0020", "true")).ok
        assert t.stats().connects_done == 2


async def test_close_drains_running_commands_then_refuses(sshd: SSHD) -> None:
    t = _transport(sshd, ["h0021"])
    running = asyncio.create_task(t.run("h0021", "sleep 0.3; echo done"))
    for _ in range(500):
        if t.stats().channels_in_flight:
            break
        await asyncio.sleep(0.01)
    await t.close()
    assert (await running).stdout == "done\n"
    assert t.stats().connections_open == 0
    with pytest.raises(TransportError, match="closed"):
        await t.run("h0021", "true")
    await t.close()  # idempotent


async def test_host_certificate_trusted_through_cert_authority(sshd: SSHD) -> None:
    assert sshd.known_hosts_ca is not None
    settings = sshd.settings(["h0025"])
    auth = SSHAuth.from_keyfile(sshd.client_key)
    async with SSHTransport(settings, auth, known_hosts=sshd.known_hosts_ca) as t:
        assert (await t.run("h0025", "true")).ok


async def test_accept_new_records_the_key(sshd: SSHD, tmp_path: Path) -> None:
    empty, learned = tmp_path / "known_hosts", tmp_path / "learned"
    empty.write_text("")
    settings = sshd.settings(["h0022"])
    auth = SSHAuth.from_keyfile(sshd.client_key)
    async with SSHTransport(
        settings, auth, known_hosts=empty, host_key_policy="accept-new", accept_new_file=learned
    ) as t:
        assert (await t.run("h0022", "true")).ok
    assert learned.read_text().startswith(f"[{sshd.address_of('h0022')}]:{sshd.port} ssh-ed25519 ")
    async with SSHTransport(settings, auth, known_hosts=learned) as t:
        assert (await t.run("h0022", "true")).ok


async def test_inventory_and_openssh_client_config(sshd: SSHD, tmp_path: Path) -> None:
    """HostName, Port, User and IdentityFile come from an OpenSSH client config, as ssh reads it."""
    from sysflow.model.inventory import Inventory

    names = host_names(3, prefix="cfg")
    config = sshd.write_client_config(tmp_path / "ssh_config", names)
    inventory = Inventory()
    for n in names:
        inventory.add_host(n, ["web"])

    def resolve(name: str) -> object:
        return inventory.connection(name, ssh_config=config)

    async with SSHTransport(resolve, SSHAuth(), known_hosts=sshd.known_hosts) as t:  # type: ignore[arg-type]
        results = [await t.run(n, "echo $SSH_CONNECTION") for n in names]
    for n, r in zip(names, results, strict=True):
        assert r.stdout.split()[2] == sshd.address_of(n)
