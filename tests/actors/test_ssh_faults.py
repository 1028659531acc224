"""Every fault gives the right exception or result within its timeout (in-process asyncssh servers)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from pathlib import Path

import asyncssh
import pytest

from sysflow.actors.auth import Credentials, Secret, SSHAuth
from sysflow.actors.ssh import (
    ConnectionSettings,
    RetryPolicy,
    SSHLimits,
    SSHTimeouts,
    SSHTransport,
)
from sysflow.clock import ManualClock
from sysflow.errors import (
    AuthenticationFailed,
    CommandTimeout,
    ConnectionFailed,
    ConnectTimeout,
    HostKeyMismatch,
    HostKeyUnknown,
    HostUnreachable,
    TransportError,
)
from tests.fixtures.ssh_servers import (
    FakeSSHServer,
    FreezableProxy,
    refused_port,
    silent_server,
    start_fake_server,
)

FAST_RETRY = RetryPolicy(retries=2, base=0.01, cap=0.02)
QUICK = SSHTimeouts(connect=2.0, login=2.0, kill_grace=1.0)


def _settings(server: FakeSSHServer, *names: str, port: int | None = None) -> dict[str, ConnectionSettings]:
    return {
        n: ConnectionSettings(n, server.host, port or server.port, "admin", (str(server.client_key),))
        for n in names or ("web1", "web2")
    }


def _transport(server: FakeSSHServer, *names: str, **kw: object) -> SSHTransport:
    kw.setdefault("timeouts", QUICK)
    kw.setdefault("retry", FAST_RETRY)
    return SSHTransport(
        _settings(server, *names),
        kw.pop("auth", SSHAuth()),  # type: ignore[arg-type]
        known_hosts=server.known_hosts,
        **kw,  # type: ignore[arg-type]
    )


async def test_scripted_server_runs_commands(fake_ssh: FakeSSHServer) -> None:
    async with _transport(fake_ssh) as t:
        assert (await t.run("web1", "echo hello")).stdout == "hello\n"
        assert (await t.run("web1", "exit 4")).exit_status == 4
        assert (await t.run("web1", "whoami")).stdout == "admin\n"
        missing = await t.run("web1", "frobnicate")
        assert (missing.exit_status, missing.stderr) == (127, "frobnicate: not found\n")
    assert fake_ssh.state.connections == 1


async def test_connection_refused_is_unreachable_after_retries(tmp_path: Path) -> None:
    port = refused_port()
    settings = {"gone": ConnectionSettings("gone", "127.0.0.1", port, "admin")}
    async with SSHTransport(settings, SSHAuth(), known_hosts=tmp_path / "none", retry=FAST_RETRY) as t:
        with pytest.raises(HostUnreachable) as info:
            await t.run("gone", "true")
        assert info.value.host == "gone"
        assert isinstance(info.value, ConnectionError)
        assert t.stats().connect_failures == 3
        assert t.stats().connections_open == 0


async def test_slow_handshake_times_out(tmp_path: Path) -> None:
    async with silent_server() as port:
        settings = {"mute": ConnectionSettings("mute", "127.0.0.1", port, "admin")}
        timeouts = SSHTimeouts(connect=0.2, login=0.1)
        async with SSHTransport(
            settings,
            SSHAuth(),
            known_hosts=tmp_path / "none",
            timeouts=timeouts,
            retry=RetryPolicy(retries=0),
        ) as t:
            with pytest.raises(ConnectTimeout) as info:
                await t.run("mute", "true")
            assert isinstance(info.value, TimeoutError)
            assert info.value.host == "mute"


async def test_drop_in_the_middle_of_a_command_is_not_retried(fake_ssh: FakeSSHServer) -> None:
    async with _transport(fake_ssh) as t:
        with pytest.raises(ConnectionFailed, match="lost during the command"):
            await t.run("web1", "drop")
        assert fake_ssh.state.commands == ["drop"]
        for _ in range(100):  # the loss notice may trail the channel's end
            if t.stats().connections_open == 0:
                break
            await asyncio.sleep(0.01)
        assert t.stats().connections_open == 0
        assert (await t.run("web1", "echo back")).stdout == "back\n"  # the next command reconnects
        assert fake_ssh.state.connections == 2


async def test_command_that_never_ends_is_stopped(fake_ssh: FakeSSHServer) -> None:
    async with _transport(fake_ssh) as t:
        with pytest.raises(CommandTimeout) as info:
            await t.run("web1", "hang", timeout=0.3)
        assert info.value.timeout == 0.3
        for _ in range(200):
            if fake_ssh.state.stopped:
                break
            await asyncio.sleep(0.01)
        assert fake_ssh.state.stopped == ["hang"]
        assert (await t.run("web1", "echo alive")).ok  # the connection survives


async def test_host_gone_silent_is_detected_by_keepalive(fake_ssh: FakeSSHServer) -> None:
    proxy = await FreezableProxy(fake_ssh.port).start()
    settings = {
        "web1": ConnectionSettings("web1", "127.0.0.1", proxy.port, "admin", (str(fake_ssh.client_key),))
    }
    known = fake_ssh.known_hosts.read_text().replace(f":{fake_ssh.port} ", f":{proxy.port} ")
    fake_ssh.known_hosts.write_text(known)
    timeouts = SSHTimeouts(keepalive_interval=0.1, keepalive_count_max=2, kill_grace=0.2)
    try:
        async with SSHTransport(
            settings, SSHAuth(), known_hosts=fake_ssh.known_hosts, timeouts=timeouts
        ) as t:
            assert (await t.run("web1", "echo up")).ok
            task = asyncio.create_task(t.run("web1", "hang"))
            for _ in range(200):
                if fake_ssh.state.commands[-1:] == ["hang"]:
                    break
                await asyncio.sleep(0.01)
            proxy.freeze()
            with pytest.raises(ConnectionFailed, match="lost during the command"):
                await asyncio.wait_for(task, timeout=10)  # no command timeout: keepalive ends it
    finally:
        await proxy.close()


async def test_hundred_megabytes_of_output(fake_ssh: FakeSSHServer) -> None:
    size = 100 * 2**20
    async with _transport(fake_ssh, output_cap=4096) as t:
        r = await t.run("web1", f"big {size}", timeout=60)
    assert r.ok
    assert r.truncated
    assert r.stdout_bytes == size
    assert len(r.stdout) < 4200
    block = b"x" * (2**20 - 1) + b"\n"
    expected = hashlib.sha256()
    for _ in range(100):
        expected.update(block)
    assert r.stdout_sha256 == expected.hexdigest()


async def test_changed_host_key_names_the_host(tmp_path: Path) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519")
    server = await start_fake_server(tmp_path, known_host_key=other)
    try:
        async with _transport(server, "db7") as t:
            with pytest.raises(HostKeyMismatch, match="db7: host key changed") as info:
                await t.run("db7", "true")
            assert "ssh-keygen -R" in str(info.value) and "man-in-the-middle" in str(info.value)
            assert server.state.auth_attempts == 0
            assert t.stats().connect_failures == 1  # never retried
    finally:
        server.close()


async def test_unknown_host_key_is_refused_by_default(fake_ssh: FakeSSHServer, tmp_path: Path) -> None:
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    async with SSHTransport(_settings(fake_ssh), SSHAuth(), known_hosts=empty, retry=FAST_RETRY) as t:
        with pytest.raises(HostKeyUnknown, match="not in known_hosts") as info:
            await t.run("web1", "true")
        assert str(empty) in str(info.value) and "--host-keys accept-new" in str(info.value)
        assert t.stats().connect_failures == 1  # never retried


async def test_host_key_checking_off_only_when_asked(fake_ssh: FakeSSHServer, tmp_path: Path) -> None:
    async with SSHTransport(
        _settings(fake_ssh), SSHAuth(), known_hosts=tmp_path / "none", host_key_policy="off"
    ) as t:
        assert (await t.run("web1", "echo ok")).ok


class _Rotating:
    """A provider holding a vault the operator rotates; counts how often it is asked."""

    def __init__(self, first: str, after_refresh: str) -> None:
        self.first, self.after_refresh = first, after_refresh
        self.calls: list[bool] = []

    async def credentials(
        self, host: str, *, refresh: bool = False, identity_files: Sequence[str] = ()
    ) -> Credentials:
        self.calls.append(refresh)
        password = self.after_refresh if refresh else self.first
        return Credentials(username="admin", password=Secret(password))


async def test_auth_failure_asks_once_more_then_succeeds(tmp_path: Path) -> None:
    server = await start_fake_server(tmp_path)
    server.state.authorized_keys.clear()
    server.state.password = "new-pass"
    provider = _Rotating("old-pass", "new-pass")
    try:
        async with _transport(server, auth=provider) as t:
            assert (await t.run("web1", "echo in")).stdout == "in\n"
        assert provider.calls == [False, True]
        assert server.state.auth_failures >= 1
    finally:
        server.close()


async def test_auth_failure_twice_fails(tmp_path: Path) -> None:
    server = await start_fake_server(tmp_path)
    server.state.authorized_keys.clear()
    server.state.password = "right"
    provider = _Rotating("wrong-1", "wrong-2")
    try:
        async with _transport(server, auth=provider) as t:
            with pytest.raises(AuthenticationFailed) as info:
                await t.run("web1", "true")
        assert provider.calls == [False, True]
        assert "wrong-1" not in str(info.value)
        assert "wrong-2" not in str(info.value)
    finally:
        server.close()


async def test_channels_per_connection_never_exceed_max_sessions(fake_ssh: FakeSSHServer) -> None:
    async with _transport(fake_ssh, limits=SSHLimits(max_sessions=3)) as t:
        results = await asyncio.gather(*(t.run("web1", "slow 0.05") for _ in range(12)))
    assert all(r.ok for r in results)
    assert fake_ssh.state.peak_sessions == 3
    assert fake_ssh.state.connections == 1


async def test_server_refusing_channels_lowers_the_limit(fake_ssh: FakeSSHServer) -> None:
    fake_ssh.state.max_sessions = 3  # the server's MaxSessions is below ours (10)
    async with _transport(fake_ssh) as t:
        results = await asyncio.gather(*(t.run("web1", "slow 0.05") for _ in range(12)))
        assert all(r.ok for r in results)
        assert fake_ssh.state.refused >= 1
        assert fake_ssh.state.peak_sessions <= 3
        assert fake_ssh.state.connections == 1
        results = await asyncio.gather(*(t.run("web1", "slow 0.01") for _ in range(6)))
        assert all(r.ok for r in results)


async def test_a_single_refused_channel_fails(fake_ssh: FakeSSHServer) -> None:
    fake_ssh.state.max_sessions = 0
    async with _transport(fake_ssh) as t:
        with pytest.raises(ConnectionFailed, match="refused a channel"):
            await t.run("web1", "echo x")


async def test_global_connection_cap_evicts_idle_connections(fake_ssh: FakeSSHServer) -> None:
    names = [f"n{i}" for i in range(6)]
    async with _transport(fake_ssh, *names, limits=SSHLimits(max_connections=2)) as t:
        peak = 0
        for n in names:
            assert (await t.run(n, f"echo {n}")).stdout == f"{n}\n"
            peak = max(peak, t.stats().connections_open)
        results = await asyncio.gather(*(t.run(n, "slow 0.02") for n in names))
        assert all(r.ok for r in results)
        assert peak == 2
        assert t.stats().connections_open <= 2


async def test_per_shard_cap(fake_ssh: FakeSSHServer) -> None:
    names = ["a1", "a2", "a3", "b1"]
    limits = SSHLimits(max_connections_per_shard=1)
    async with _transport(fake_ssh, *names, limits=limits, shard_of=lambda n: n[0]) as t:
        for n in names:
            assert (await t.run(n, "echo x")).ok
        assert t.stats().connections_open == 2  # one for shard a, one for shard b


async def test_new_connections_are_paced_per_target(fake_ssh: FakeSSHServer) -> None:
    clock = ManualClock()
    names = [f"p{i}" for i in range(5)]
    limits = SSHLimits(connect_rate_per_target=10.0, max_startups_per_target=2)
    async with _transport(fake_ssh, *names, limits=limits, clock=clock) as t:
        await asyncio.gather(*(t.connect(n) for n in names))
    assert clock.monotonic() >= 0.4  # five starts spaced 0.1 s apart on the clock


async def test_closed_transport_refuses_and_reports(fake_ssh: FakeSSHServer) -> None:
    t = _transport(fake_ssh)
    await t.connect("web1")
    await t.close()
    with pytest.raises(TransportError, match="closed"):
        await t.connect("web1")


async def test_close_while_connecting_finishes_the_work_then_closes(fake_ssh: FakeSSHServer) -> None:
    t = _transport(fake_ssh)
    task = asyncio.create_task(t.run("web1", "echo late"))
    connecting = asyncio.create_task(t.connect("web2"))
    await asyncio.sleep(0)  # both connects have started
    await t.close()
    assert (await task).stdout == "late\n"
    await connecting
    assert t.stats().connections_open == 0
    assert fake_ssh.state.connections == 2


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="max_sessions"):
        SSHLimits(max_sessions=0)


def test_settings_resolution_and_jump_specs() -> None:
    from sysflow.actors.ssh_options import jump_hops, jump_settings, settings_resolver

    bare = settings_resolver(None)("db9")
    assert (bare.hostname, bare.port, bare.username) == ("db9", 22, "")
    table = settings_resolver({"a": ConnectionSettings("a", "192.0.2.1", 2222, "ops")})
    assert table("a").hostname == "192.0.2.1"
    assert table("b").hostname == "b"
    hop = jump_settings("admin@bastion:2200", table)
    assert (hop.hostname, hop.port, hop.username) == ("bastion", 2200, "admin")
    assert jump_settings("a", table) == table("a")
    assert jump_hops(ConnectionSettings("x", "x", 22, "", proxy_jump="j1, j2")) == ["j1", "j2"]
    assert jump_hops(ConnectionSettings("x", "x", 22, "", proxy_jump="none")) == []


def test_command_wrapping_quotes_everything() -> None:
    from sysflow.actors.ssh_remote import kill_command, wrap_command

    line = wrap_command("id", env={"A": "x y"}, cwd="/d ir", marker="m1")
    assert line == "export SYSFLOW_CMD_ID=m1\nexport A='x y'\ncd '/d ir' || exit 125\nid"
    become = wrap_command("id", become="web user")
    assert become == "sudo -H -n -u 'web user' -- /bin/sh -c id"
    assert "sudo -S" in wrap_command("id", become="root", sudo_password=True)
    # the marker as a pattern that cannot match the scan's own command line (grep's, the shell's)
    assert "'SYSFLOW_CMD_I[D]=m1'" in kill_command("m1") and "SYSFLOW_CMD_ID=m1" not in kill_command("m1")


def test_backoff_is_jittered_exponential_and_capped() -> None:
    import random

    policy = RetryPolicy(retries=5, base=1.0, cap=4.0, jitter=0.5)
    rng = random.Random(7)
    delays = [policy.delay(i, rng) for i in range(5)]
    for i, d in enumerate(delays):
        raw = min(4.0, 2.0**i)
        assert raw * 0.5 <= d <= raw


def test_connect_errors_are_classified() -> None:
    import errno
    import socket

    from sysflow.actors.ssh_remote import classify_connect_error

    def kind(exc: BaseException) -> type[Exception]:
        return type(classify_connect_error(exc, "h1", None))

    assert kind(asyncssh.HostKeyNotVerifiable("nope")) is HostKeyMismatch
    assert kind(asyncssh.PermissionDenied("no")) is AuthenticationFailed
    assert kind(TimeoutError()) is ConnectTimeout
    assert kind(ConnectionRefusedError(errno.ECONNREFUSED, "refused")) is HostUnreachable
    assert kind(socket.gaierror(-2, "Name or service not known")) is HostUnreachable
    assert kind(OSError(errno.EHOSTUNREACH, "No route to host")) is HostUnreachable
    assert kind(asyncssh.ConnectionLost("gone")) is ConnectionFailed
    assert kind(RuntimeError("odd")) is ConnectionFailed
    same = HostUnreachable("x", host="h1")
    assert classify_connect_error(same, "h1", None) is same
    assert (
        str(classify_connect_error(RuntimeError("odd"), "h1", None))
        == "h1: connection failed: RuntimeError: odd"
    )
