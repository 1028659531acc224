"""One conversion of a command's result: a stream the transport already capped and digested is kept
as it is, and gives exactly the result that capping it again would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sysflow.actors.ops import ErrorKind, OpRequest, Where, result_of
from sysflow.transport import CommandResult, cap_output

T0 = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)
CAP = 1024
OUTPUTS = ["", "ok\n", "é€😀\n" * 60, "x" * 300, "y" * 5000, "ü" * (CAP // 2 + 3)]


def _result(stdout: str, stderr: str, *, digested: bool) -> CommandResult:
    so, se = cap_output(stdout), cap_output(stderr)
    return CommandResult(
        host="web01",
        command="true",
        exit_status=0 if not stderr else 2,
        stdout=so.text,
        stderr=se.text,
        start=T0,
        end=T0 + timedelta(seconds=3),
        stdout_bytes=so.total_bytes if digested else 0,
        stderr_bytes=se.total_bytes if digested else 0,
        truncated=so.truncated or se.truncated,
        stdout_sha256=so.sha256 if digested else "",
    )


@pytest.mark.parametrize("stdout", OUTPUTS)
@pytest.mark.parametrize("stderr", ["", "warning: é\n", "z" * 3000])
def test_a_digested_stream_gives_the_result_capping_again_would(stdout: str, stderr: str) -> None:
    req = OpRequest("t@web01", "web01", "t", "true")
    where = Where("shard-0", "shard-0@here", T0 + timedelta(seconds=3))
    fast = result_of(req, _result(stdout, stderr, digested=True), where, T0, 3.0, 1, CAP)
    slow = result_of(req, _result(stdout, stderr, digested=False), where, T0, 3.0, 1, CAP)
    assert (fast.stdout, fast.stderr, fast.truncated) == (slow.stdout, slow.stderr, slow.truncated)
    assert len(fast.stdout.encode()) <= CAP + 64 and len(fast.stderr.encode()) <= CAP + 64
    assert fast.output_sha256 == cap_output(stdout).sha256  # the digest of what the host printed
    assert fast.stdout_bytes == len(stdout.encode()) and fast.stderr_bytes == len(stderr.encode())
    assert fast.error_kind is (ErrorKind.NONE if not stderr else ErrorKind.COMMAND_FAILED)
