"""Files over real SFTP at a bandwidth limit: a transfer held to a rate takes about size / rate (a
loose lower bound: the machine may be slower, never faster), an unlimited one is pipelined and
arrives whole; and through ``sysflow run`` a copy task's demand on a bandwidth pool is its rate."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sysflow.actors.auth import SSHAuth
from sysflow.actors.ssh import SSHTransport
from tests.cli.test_modules_sshd import run_workflow
from tests.fixtures.sshd import SSHD

pytestmark = pytest.mark.ssh

MB = 1024 * 1024


@pytest.fixture
def stage() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="sysflow-put-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path)


def _transport(sshd: SSHD, host: str) -> SSHTransport:
    return SSHTransport(
        sshd.settings([host]), SSHAuth.from_keyfile(sshd.client_key), known_hosts=sshd.known_hosts
    )


async def test_a_rate_limited_transfer_takes_size_over_rate(sshd: SSHD, tmp_path: Path, stage: Path) -> None:
    src = tmp_path / "blob"
    src.write_bytes(os.urandom(4 * MB))
    async with _transport(sshd, "h0081") as transport:
        began = time.monotonic()
        sent = await transport.put("h0081", str(src), str(stage / "limited"), rate=2_000_000)  # 16 Mbit/s
        took = time.monotonic() - began
        assert sent == 4 * MB
        assert took >= 1.5  # (4 MiB - one 256 KiB burst) / 2 MB/s = 1.97 s
        assert (stage / "limited").read_bytes() == src.read_bytes()
        assert (stage / "limited").stat().st_mode & 0o777 == 0o600

        began = time.monotonic()
        assert await transport.put("h0081", str(src), str(stage / "unlimited")) == 4 * MB
        assert time.monotonic() - began < took
        assert (stage / "unlimited").read_bytes() == src.read_bytes()


async def test_a_failed_write_fails_the_transfer_and_names_the_file(sshd: SSHD, tmp_path: Path) -> None:
    from sysflow.errors import TransportError

    src = tmp_path / "blob"
    src.write_bytes(b"x" * MB)
    async with _transport(sshd, "h0082") as transport:
        with pytest.raises(TransportError, match=r"cannot send .*blob"):
            await transport.put("h0082", str(src), "/nonexistent-dir/blob", rate=10_000_000)


WORKFLOW = """\
name: push
become: true
parallelism:
  pools:
    - {{name: uplink, capacity: 100, unit: Mbit/s}}
tasks:
  - id: blob
    resources: {{uplink: {mbps}}}
    copy:
      src: {src}
      dest: "{{{{ vars.etc }}}}/{{{{ host.name }}}}.blob"
"""


def test_a_copy_task_sends_at_its_bandwidth_demand(sshd: SSHD, tmp_path: Path, stage: Path) -> None:
    src = tmp_path / "blob.bin"
    src.write_bytes(os.urandom(2 * MB))
    stage.chmod(0o755)
    began = time.monotonic()
    run = run_workflow(sshd, tmp_path, WORKFLOW.format(mbps=4, src=src), ["h0083"], etc=str(stage))
    took = time.monotonic() - began
    assert run.returncode == 0, run.stdout + run.stderr
    assert (stage / "h0083.blob").read_bytes() == src.read_bytes()
    assert took >= 3.0  # 4 Mbit/s: (2 MiB - 256 KiB) / 500 kB/s = 3.7 s for the transfer alone
