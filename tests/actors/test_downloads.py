"""A ``fetch`` operation through the host pool (the local transport stands for SSH; the real sshd
runs in tests/cli/test_fetch_sshd.py): brought back once, not again while equal, a transport that
cannot bring files back says so, and a file that changed in transit is refused, not kept."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sysflow.actors.local import LocalTransport
from sysflow.actors.ops import ErrorKind, OpRequest
from sysflow.model.task import Task
from tests.actors.pools import CommandsOnly, run_requests


class Tampering(LocalTransport):
    """The local transport, bringing back other bytes than the host staged."""

    async def get(self, host: str, src: str, dest: str, *, timeout: float | None = None) -> int:
        await asyncio.to_thread(Path(dest).write_text, "tampered\n")
        return 9


def _request(task: Task, host: str = "web1") -> OpRequest:
    return OpRequest(f"fetch@{host}", host, task.id, task.run, timeout=30, download=task.download_for(host))


def test_brought_back_once_and_not_again_while_equal(tmp_path: Path) -> None:
    src = tmp_path / "app.log"
    src.write_text("line 1\n")
    task = Task(id="fetch", fetch={"src": str(src), "dest": str(tmp_path / "got")})
    first, second = run_requests(LocalTransport(), _request(task), _request(task))
    copy = tmp_path / "got" / "web1" / str(src).lstrip("/")
    assert first.error_kind is ErrorKind.NONE, first
    assert copy.read_text() == "line 1\n" and first.stdout.startswith("::sysflow changed\nfetched ")
    assert second.stdout.splitlines() == ["::sysflow ok"]


def test_a_transport_that_cannot_bring_files_back_says_so(tmp_path: Path) -> None:
    src = tmp_path / "a"
    src.write_text("x\n")
    task = Task(id="fetch", fetch={"src": str(src), "dest": str(tmp_path / "got")})
    (result,) = run_requests(CommandsOnly(), _request(task))
    assert result.error_kind is ErrorKind.TRANSPORT_ERROR
    assert "CommandsOnly cannot bring files back" in result.error_message


def test_a_file_changed_in_transit_is_refused_and_not_kept(tmp_path: Path) -> None:
    src = tmp_path / "a"
    src.write_text("original\n")
    task = Task(id="fetch", fetch={"src": str(src), "dest": str(tmp_path / "got")})
    (result,) = run_requests(Tampering(), _request(task))
    assert result.error_kind is ErrorKind.TRANSPORT_ERROR
    assert "does not match its checksum on the host" in result.error_message
    assert not (tmp_path / "got" / "web1" / str(src).lstrip("/")).exists()
    assert not list((tmp_path / "got" / "web1").rglob(".*sysflow-*"))  # no partial file left
