"""LocalTransport: the same seam as SSH, on this machine."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from sysflow.actors.local import LocalTransport
from sysflow.clock import ManualClock
from sysflow.errors import CommandTimeout
from sysflow.transport import Transport


async def test_exit_status_streams_and_label() -> None:
    t = LocalTransport()
    assert isinstance(t, Transport)
    r = await t.run("hook", "echo out; echo err >&2; exit 5")
    assert (r.host, r.exit_status, r.stdout, r.stderr, r.ok) == ("hook", 5, "out\n", "err\n", False)
    assert r.stdout_bytes == 4
    assert r.duration >= 0
    await t.close()


async def test_env_cwd_stdin(tmp_path: Path) -> None:
    t = LocalTransport()
    r = await t.run("l", 'printf "%s" "$SF_X"; pwd', env={"SF_X": "v w"}, cwd=str(tmp_path))
    assert r.stdout == f"v w{tmp_path}\n"
    assert (await t.run("l", "cat", stdin="abc")).stdout == "abc"
    assert (await t.run("l", "wc -c", stdin=b"\x00\x01")).stdout.strip() == "2"
    assert (await t.run("l", "echo $HOME")).stdout.strip() == os.environ.get("HOME", "")


async def test_output_cap() -> None:
    r = await LocalTransport(output_cap=100).run("l", "head -c 1000 /dev/zero | tr '\\0' a")
    assert r.truncated
    assert r.stdout_bytes == 1000
    assert "[900 bytes omitted]" in r.stdout


async def test_signal_is_reported() -> None:
    r = await LocalTransport().run("l", "kill -TERM $$")
    assert (r.exit_status, r.signal) == (None, "SIGTERM")


async def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    with pytest.raises(CommandTimeout) as info:
        await LocalTransport().run("l", f"sleep 30 & echo $! > {pidfile}; wait", timeout=0.5)
    assert info.value.timeout == 0.5
    assert info.value.host == "l"
    pid = int(pidfile.read_text())
    for _ in range(100):  # bounded: reaping is asynchronous
        if not _alive(pid):
            break
        await asyncio.sleep(0.02)
    assert not _alive(pid)


async def test_cancel_kills_the_command(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    task = asyncio.create_task(LocalTransport().run("l", f"echo $$ > {pidfile}; exec sleep 30"))
    for _ in range(250):
        if pidfile.exists() and pidfile.read_text().strip():
            break
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    pid = int(pidfile.read_text())
    for _ in range(100):
        if not _alive(pid):
            break
        await asyncio.sleep(0.02)
    assert not _alive(pid)


async def test_times_come_from_the_clock() -> None:
    clock = ManualClock()
    r = await LocalTransport(clock=clock).run("l", "true")
    assert r.start == r.end == clock.now()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
