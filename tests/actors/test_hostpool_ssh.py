"""End to end: 500 hosts of the test sshd through LocalBackend → HostPool → SSHTransport.

The proof is on the "remote" side: each command appends its sequence number and the SSH server
address it arrived on (``$SSH_CONNECTION``) to a file named after the host, so every host's file must
hold each number exactly once, in submission order, all written over SSH to that host's alias.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from sysflow.actors.auth import SSHAuth
from sysflow.actors.backends import LocalBackend, ShardSpec
from sysflow.actors.hostpool import HostPool
from sysflow.actors.ops import OpRequest
from sysflow.actors.ssh import SSHTransport
from tests.fixtures.sshd import SSHD, host_names

pytestmark = [pytest.mark.ssh, pytest.mark.slow]

HOSTS = 500
STEPS = 3  # operations per host, each depending on the previous one's file content


def _factory(sshd: SSHD, names: list[str]) -> functools.partial[SSHTransport]:
    return functools.partial(
        SSHTransport,
        sshd.settings(names),
        SSHAuth.from_keyfile(sshd.client_key),
        known_hosts=sshd.known_hosts,
    )


def _step(out: Path, host: str, n: int) -> OpRequest:
    # Fails (exit 9) unless the previous step already wrote its line: order is checked remotely too.
    prev = f"{n - 1} " if n else ""
    guard = f'[ "$(tail -n1 {out / host} 2>/dev/null | cut -d" " -f1) " = "{prev}" ] || exit 9; ' if n else ""
    cmd = f'{guard}echo "{n} $(echo $SSH_CONNECTION | cut -d" " -f3)" >> {out / host}'
    return OpRequest(op_id=f"step{n}@{host}", host=host, task=f"step{n}", command=cmd, timeout=60)


async def test_500_hosts_each_ran_each_step_once_in_order(sshd: SSHD, tmp_path: Path) -> None:
    names = host_names(HOSTS)
    half = HOSTS // 2
    shards = [
        ShardSpec("dc-a", tuple(names[:half]), _factory(sshd, names[:half]), max_in_flight=100),
        ShardSpec("dc-b", tuple(names[half:]), _factory(sshd, names[half:]), max_in_flight=100),
    ]
    backend = LocalBackend()
    await backend.start(shards)
    requests = [_step(tmp_path, h, n) for n in range(STEPS) for h in names]
    results = await backend.gather(requests, timeout=600)
    failed = [(r.op_id, r.error_kind, r.error_message) for r in results if not r.ok]
    assert failed == []
    load = await backend.load()
    assert load["dc-a"].connections_open + load["dc-b"].connections_open == HOSTS
    assert sum(x.completed for x in load.values()) == HOSTS * STEPS
    await backend.stop()
    for host in names:
        lines = [line.split() for line in (tmp_path / host).read_text().splitlines()]
        assert [n for n, _ in lines] == [str(n) for n in range(STEPS)], host
        assert {addr for _, addr in lines} == {sshd.address_of(host)}, host


async def test_hostpool_load_counts_ssh_connections(sshd: SSHD, tmp_path: Path) -> None:
    names = host_names(5)
    async with HostPool("s", factory=_factory(sshd, names)) as pool:
        assert pool.load().connections_open == 0
        results = await pool.run_batch([_step(tmp_path, h, 0) for h in names])
        assert all(r.ok for r in results)
        assert pool.load().connections_open == 5
