"""A timed-out command keeps what it printed before it was stopped (real OpenSSH sshd, loopback).

From the transport (``CommandTimeout.stdout``/``.stderr``, capped like any output) up to the
operation's record and the run store: a run over the test sshd whose command prints, then overruns
its timeout, records the operation failed with ``CommandTimeout`` and its partial output.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sysflow.actors.auth import SSHAuth
from sysflow.actors.local import LocalTransport
from sysflow.actors.ssh import SSHTransport
from sysflow.engine.engine import Engine
from sysflow.engine.states import OpState, RunStatus
from sysflow.engine.store import RunStore
from sysflow.errors import CommandTimeout
from sysflow.model.inventory import Inventory
from sysflow.model.workflow import MaintenanceWorkflow
from tests.fixtures.sshd import SSHD

pytestmark = pytest.mark.ssh

SLOW = "echo started; echo half-way >&2; sleep 30.125; echo never"


def _transport(sshd: SSHD, names: list[str], **kw: object) -> SSHTransport:
    auth = SSHAuth.from_keyfile(sshd.client_key)
    return SSHTransport(sshd.settings(names), auth, known_hosts=sshd.known_hosts, **kw)  # type: ignore[arg-type]


async def test_ssh_timeout_keeps_what_the_command_printed(sshd: SSHD) -> None:
    async with _transport(sshd, ["t0301"]) as t:
        began = time.monotonic()
        with pytest.raises(CommandTimeout) as info:
            await t.run("t0301", SLOW, timeout=1.0)
        assert time.monotonic() - began < 15.0  # stopped, not waited for
    assert info.value.host == "t0301" and info.value.timeout == 1.0
    assert info.value.stdout == "started\n"
    assert info.value.stderr == "half-way\n"


async def test_ssh_timeout_output_is_capped_head_and_tail(sshd: SSHD) -> None:
    noisy = "head -c 200000 /dev/zero | tr '\\0' x; echo; echo tail-line; sleep 30.25"
    async with _transport(sshd, ["t0302"], output_cap=1024) as t:
        with pytest.raises(CommandTimeout) as info:
            await t.run("t0302", noisy, timeout=1.5)
    out = info.value.stdout
    assert out.startswith("x" * 512) and "bytes omitted" in out and out.endswith("tail-line\n")
    assert len(out) < 1024 + 100


async def test_local_timeout_keeps_what_the_command_printed() -> None:
    with pytest.raises(CommandTimeout) as info:
        await LocalTransport().run("local", SLOW, timeout=0.5)
    assert info.value.stdout == "started\n" and info.value.stderr == "half-way\n"


async def test_the_record_of_a_timed_out_operation_keeps_its_partial_output(
    sshd: SSHD, tmp_path: Path
) -> None:
    inventory = Inventory()
    inventory.add_group("app", ["t0303"])
    workflow = MaintenanceWorkflow("timeouts")
    workflow.add_task("slow", SLOW, timeout=1)
    store = tmp_path / "state.db"
    engine = Engine(
        inventory,
        SSHAuth.from_keyfile(sshd.client_key),
        ssh_config=sshd.write_client_config(tmp_path / "ssh_config", ["t0303"]),
        known_hosts=sshd.known_hosts,
        store=store,
    )
    result = await engine.run(workflow)
    assert result.status is RunStatus.FAILED  # max_failures 0: the one host failing stops the run
    rec = result.ops["slow@t0303"]
    assert rec.state is OpState.FAILED
    assert rec.error is not None and rec.error.startswith("CommandTimeout"), rec.error
    assert rec.stdout == "started\n" and rec.stderr == "half-way\n"
    assert rec.duration is not None and rec.duration < 15.0
    with RunStore(store) as db:  # and the run store keeps it too
        stored = db.ops(result.run_id)["slow@t0303"]
    assert stored.state is OpState.FAILED and stored.stdout == "started\n"
