"""Credential rotation during a long run, on real OpenSSH: new connections use the new key.

An administrator rotates the fleet's key in the middle of a run, as one would: the server's
``authorized_keys`` loses key A and gains key B, and B is published where the credential provider
looks (a "vault"). The provider hands out the key it last fetched and fetches again only when the
transport asks with ``refresh=True`` after an authentication failure: the first connections use
A, connections opened after the rotation are refused with A once and then use B. The SSH pool
closes idle connections (a short idle timeout), so a host whose connection was made with A
reconnects with B for its later operations. Nothing fails.

Which key authenticated each command is recorded by the server itself: every ``authorized_keys``
line carries a forced command that exports the key's label before running the client's command,
so each remote log line names the key its connection was authenticated with. Both keys are
passphrase-protected; the passphrases must appear in no log, event, run store or audit log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sysflow.actors.auth import Credentials, SSHAuth, callback_secret
from sysflow.actors.ssh import SSHTransport
from sysflow.actors.ssh_options import SSHTimeouts
from sysflow.audit.log import AuditLog
from sysflow.audit.observer import AuditObserver
from sysflow.engine.engine import Engine
from sysflow.engine.events import Event, EventKind, RecordingObserver
from sysflow.engine.result import RunResult
from sysflow.engine.states import OpState, RunStatus
from sysflow.model.inventory import Inventory
from sysflow.model.ssh_config import ConnectionSettings
from sysflow.model.workflow import MaintenanceWorkflow
from tests.fixtures.sshd import SSHD, host_names, running_sshd

pytestmark = [pytest.mark.ssh]

HOSTS = host_names(6, prefix="rot")
WAVE_1 = HOSTS[:2]
IDLE_S = 0.1  # the pool closes a connection idle this long (the soak below idles 15x longer)
SOAK_S = 1.5  # a controller-side pause between a host's two SSH operations
RUN_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Key:
    label: str
    path: Path
    passphrase: str

    def authorized_line(self) -> str:
        """An authorized_keys line whose forced command tags every command with this key's label."""
        public = Path(f"{self.path}.pub").read_text().strip()
        forced = f'export SYSFLOW_KEY={self.label}; eval \\"$SSH_ORIGINAL_COMMAND\\"'
        return f'command="{forced}" {public}\n'

    def auth(self) -> SSHAuth:
        phrase = self.passphrase
        return SSHAuth.from_keyfile(self.path, passphrase=callback_secret(lambda: phrase))


def _keygen(path: Path, label: str) -> Key:
    passphrase = secrets.token_urlsafe(18)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", f"rotation-{label}", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return Key(label, path, passphrase)


@dataclass
class Vault:
    """Where the administrator publishes the fleet's current key."""

    current: str = "A"


@dataclass
class RotatingProvider:
    """A ``CredentialProvider`` that keeps the key it last fetched; fetches again on ``refresh``."""

    keys: dict[str, SSHAuth]
    vault: Vault
    held: str | None = None
    asked: list[tuple[str, bool, str]] = field(default_factory=list)  # (host, refresh, label)

    async def credentials(
        self, host: str, *, refresh: bool = False, identity_files: Sequence[str] = ()
    ) -> Credentials:
        if refresh or self.held is None:
            self.held = self.vault.current
        self.asked.append((host, refresh, self.held))
        return await self.keys[self.held].credentials(host, refresh=refresh)


@dataclass
class Admin:
    """Rotates the server's key from A to B when the first soak starts (mid-run, mid-wave)."""

    authorized_keys: Path
    new_key: Key
    vault: Vault
    rotated_at: int | None = None  # how many credential requests had been made by then
    provider: RotatingProvider | None = None

    def on_event(self, event: Event) -> None:
        if self.rotated_at is None and event.kind is EventKind.OP_STARTED and event.task == "soak":
            self.authorized_keys.write_text(self.new_key.authorized_line())  # A removed, B added
            self.vault.current = self.new_key.label
            self.rotated_at = len(self.provider.asked) if self.provider is not None else 0


@dataclass(frozen=True)
class Server:
    sshd: SSHD
    key_a: Key
    key_b: Key


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A dedicated sshd (its authorized_keys get rotated) trusting key A only."""
    with running_sshd(tmp_path_factory.mktemp("sshd-rotation")) as sshd:
        keys = tmp_path_factory.mktemp("rotation-keys")
        key_a, key_b = _keygen(keys / "key_a", "A"), _keygen(keys / "key_b", "B")
        yield Server(sshd, key_a, key_b)


def _here(root: Path) -> str:
    """Shell: the directory of the host this command runs on (server address and port)."""
    return f"D={root}/$(echo $SSH_CONNECTION | cut -d' ' -f3,4 | tr ' ' _)"


def _tagged(root: Path, task: str) -> str:
    return f'{_here(root)}; mkdir -p $D && echo "{task} $SYSFLOW_KEY" >> $D/log'


def workflow(root: Path) -> MaintenanceWorkflow:
    wf = MaintenanceWorkflow("rotation")
    wf.add_task("stage", _tagged(root, "stage"))
    wf.add_task("soak", f"sleep {SOAK_S}", depends_on=["stage"], local=True)
    wf.add_task("finish", _tagged(root, "finish"), depends_on=["soak"])
    wf.set_progressive_execution({"strategy": "rolling", "serial": [len(WAVE_1), len(HOSTS)]})
    wf.set_parallelization({"max_parallel_servers": len(HOSTS)})
    return wf


@dataclass
class Outcome:
    result: RunResult
    events: RecordingObserver
    provider: RotatingProvider
    admin: Admin


def _run(server: Server, tmp_path: Path) -> Outcome:
    sshd = server.sshd
    (sshd.workdir / "authorized_keys").write_text(server.key_a.authorized_line())
    inventory = Inventory()
    inventory.add_group("app", HOSTS)
    settings = {
        n: ConnectionSettings(name=n, hostname=sshd.address_of(n), port=sshd.port, username=sshd.username)
        for n in HOSTS
    }
    vault = Vault()
    provider = RotatingProvider({k.label: k.auth() for k in (server.key_a, server.key_b)}, vault)
    admin = Admin(sshd.workdir / "authorized_keys", server.key_b, vault, provider=provider)
    events = RecordingObserver()

    async def main() -> RunResult:
        async with SSHTransport(
            settings, provider, known_hosts=sshd.known_hosts, timeouts=SSHTimeouts(idle=IDLE_S)
        ) as transport:
            with AuditLog(tmp_path / "audit.log") as audit:
                engine = Engine(
                    inventory,
                    transport=transport,
                    store=tmp_path / "state.db",
                    observers=[events, admin, AuditObserver(audit)],
                )
                async with asyncio.timeout(RUN_TIMEOUT_S):
                    return await engine.run(workflow(tmp_path / "remote"), run_id="rotation")

    return Outcome(asyncio.run(main()), events, provider, admin)


def _tags(root: Path, sshd: SSHD, host: str) -> list[tuple[str, str]]:
    """(task, key label) per remote log line of ``host``."""
    log = root / f"{sshd.address_of(host)}_{sshd.port}" / "log"
    return [(task, key) for task, key in (line.split() for line in log.read_text().splitlines())]


def test_a_key_rotated_mid_run_is_used_by_new_connections_and_nothing_fails(
    server: Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    out = _run(server, tmp_path)

    assert out.result.status is RunStatus.COMPLETED, out.result.reason
    assert {r.state for r in out.result.ops.values()} == {OpState.SUCCEEDED}
    assert out.admin.rotated_at is not None  # the key was rotated while the run was going
    tags = {h: _tags(tmp_path / "remote", server.sshd, h) for h in HOSTS}
    for host in HOSTS:  # every SSH task ran once, A never again once B was in use
        assert [t for t, _ in tags[host]] == ["stage", "finish"], host
        keys = [k for _, k in tags[host]]
        assert keys == sorted(keys), f"{host}: {keys}"
        assert tags[host][-1][1] == "B", host  # connections made after the rotation use B
    # a wave-1 host connected with A, its idle connection was closed, it reconnected with B
    assert any(tags[h][0][1] == "A" for h in WAVE_1), tags
    assert all(k == "B" for h in HOSTS[len(WAVE_1) :] for _, k in tags[h])
    _assert_provider_refreshed_then_gave_b(out)
    _assert_no_passphrase_anywhere(server, tmp_path, out, caplog.text)


def _assert_provider_refreshed_then_gave_b(out: Outcome) -> None:
    """Before the rotation only A; after it, a host offering A was refused once and its refresh
    fetched B; once the provider held B, only B."""
    asked = out.provider.asked
    before, after = asked[: out.admin.rotated_at], asked[out.admin.rotated_at :]
    assert before and {label for _, _, label in before} == {"A"}
    assert any(refresh for _, refresh, _ in after)
    for host in HOSTS:
        mine = [(refresh, label) for h, refresh, label in after if h == host]
        if mine and mine[0] == (False, "A"):  # offered A after the rotation: refused, then B
            assert mine[:2] == [(False, "A"), (True, "B")], f"{host}: {mine}"
            mine = mine[1:]
        assert {label for _, label in mine} <= {"B"}, f"{host}: {mine}"
    first_refresh = next(i for i, (_, refresh, _) in enumerate(asked) if refresh)
    assert {label for _, _, label in asked[first_refresh:]} == {"B"}


def _assert_no_passphrase_anywhere(server: Server, tmp_path: Path, out: Outcome, logs: str) -> None:
    events = json.dumps([e.to_dict() for e in out.events.events], default=str)
    assert len(out.events.events) > 0
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("state.db*"))
    audit = (tmp_path / "audit.log").read_bytes()
    assert audit.count(b"op_finished") >= len(HOSTS) * 3
    sshd_log = (server.sshd.workdir / "sshd.log").read_bytes()
    for key in (server.key_a, server.key_b):
        secret = key.passphrase
        assert secret not in logs
        assert secret not in events
        assert secret.encode() not in stored
        assert secret.encode() not in audit
        assert secret.encode() not in sshd_log
        assert secret not in repr(out.result)
