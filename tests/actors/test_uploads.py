"""A ``copy`` operation through the host pool: the file is sent only when the host's copy differs,
a stale stage from an interrupted transfer is sent again, a file that changed after validation is
refused, and a transport that cannot send files says so (the local transport stands for SSH here;
tests/cli/test_copy_sshd.py runs the same over SFTP on the real sshd)."""

from __future__ import annotations

import os
from pathlib import Path

from sysflow.actors.local import LocalTransport
from sysflow.actors.ops import ErrorKind, OpRequest
from sysflow.actors.uploads import stage_path
from sysflow.model.task import Task
from tests.actors.pools import CommandsOnly, run_requests


class CountingLocal(LocalTransport):
    """The local transport, counting the files it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []

    async def put(
        self, host: str, src: str, dest: str, *, timeout: float | None = None, rate: float | None = None
    ) -> int:
        self.sent.append(dest)
        return await super().put(host, src, dest, timeout=timeout, rate=rate)


def _request(task: Task, op_id: str = "cfg@local") -> OpRequest:
    return OpRequest(op_id, "local", task.id, task.run, timeout=30, upload=task.upload)


def test_sent_when_it_differs_and_not_again_when_equal(tmp_path: Path) -> None:
    src, dest = tmp_path / "app.conf", tmp_path / "etc-app.conf"
    src.write_text("port = 8080\n")
    dest.write_text("port = 80\n")
    task = Task(id="cfg", copy={"src": str(src), "dest": str(dest)})
    transport = CountingLocal()
    first, second = run_requests(transport, _request(task), _request(task))
    assert first.error_kind is ErrorKind.NONE, first
    assert dest.read_text() == "port = 8080\n" and len(transport.sent) == 1  # sent once only
    assert "-port = 80\n+port = 8080" in first.stdout and "sent app.conf: 12 bytes" in first.stdout
    assert not os.path.exists(transport.sent[0])  # the stage is gone once installed
    assert second.stdout.splitlines() == ["::sysflow ok"]


def test_a_stale_stage_is_sent_again(tmp_path: Path) -> None:
    src, dest = tmp_path / "a", tmp_path / "b"
    src.write_text("new\n")
    task = Task(id="cfg", copy={"src": str(src), "dest": str(dest)})
    Path(stage_path("cfg@stale")).write_text("")  # an interrupted transfer left an empty file
    transport = CountingLocal()
    (result,) = run_requests(transport, _request(task, "cfg@stale"))
    assert result.error_kind is ErrorKind.NONE, result
    assert dest.read_text() == "new\n" and len(transport.sent) == 1


def test_a_file_that_changed_since_validation_is_refused_not_installed(tmp_path: Path) -> None:
    src, dest = tmp_path / "a", tmp_path / "b"
    src.write_text("validated\n")
    task = Task(id="cfg", copy={"src": str(src), "dest": str(dest)})
    src.write_text("edited after the run was planned\n")
    (result,) = run_requests(CountingLocal(), _request(task, "cfg@edited"))
    assert result.error_kind is ErrorKind.COMMAND_FAILED
    assert "copy: the file sent to" in result.stderr and "is not a (sha256 " in result.stderr
    assert not dest.exists() and not os.path.exists(stage_path("cfg@edited"))


def test_a_transport_that_cannot_send_files_says_so(tmp_path: Path) -> None:
    src, dest = tmp_path / "a", tmp_path / "b"
    src.write_text("x\n")
    task = Task(id="cfg", copy={"src": str(src), "dest": str(dest)})
    (result,) = run_requests(CommandsOnly(), _request(task, "cfg@nofiles"))
    assert result.error_kind is ErrorKind.TRANSPORT_ERROR
    assert result.error_message == f"local: CommandsOnly cannot send files ({src})"
    assert not dest.exists()
