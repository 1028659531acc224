"""SSHTransport against the real OpenSSH sshd of the test session."""

from __future__ import annotations

from sysflow.actors.auth import SSHAuth
from sysflow.actors.ssh import SSHTransport
from tests.fixtures.sshd import SSHD, host_names


async def test_runs_true_on_a_host(sshd: SSHD) -> None:
    names = host_names(3)
    async with SSHTransport(sshd.settings(names), SSHAuth.from_keyfile(sshd.client_key), known_hosts=sshd.known_hosts) as t:
        for n in names:
            r = await t.run(n, "echo hi; echo err >&2; exit 3")
            assert (r.exit_status, r.stdout, r.stderr) == (3, "hi\n", "err\n")
        assert t.stats().connections_open == 3
