"""An operation that needs a local file (``copy``): its command first compares checksums on the
host, and only when the file differs and is not there yet asks for it (``UPLOAD_MARK``, exit
``UPLOAD_NEEDED``); the file is then sent to its stage path and the command runs again to install it.
An unchanged file is one command and no transfer; a changed one, two commands and one transfer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping

from sysflow.errors import TransportError
from sysflow.transport import (
    STAGE_SHA_VAR,
    STAGE_SIZE_VAR,
    STAGE_VAR,
    UPLOAD_MARK,
    UPLOAD_NEEDED,
    CommandResult,
    Transport,
    Upload,
    Uploading,
)

__all__ = ["SENT_VAR", "asks_for_upload", "run_with_upload", "stage_path"]

SENT_VAR = "SYSFLOW_SENT"  # on the second run: the bytes sent (the module reports them)


def stage_path(op_id: str) -> str:
    """Where the operation's file is sent: the same for every attempt (a resend replaces it)."""
    return f"/tmp/.sysflow-stage-{hashlib.sha256(op_id.encode()).hexdigest()[:24]}"


def asks_for_upload(result: CommandResult) -> bool:
    return result.exit_status == UPLOAD_NEEDED and UPLOAD_MARK in result.stdout.splitlines()


async def run_with_upload(
    transport: Transport,
    host: str,
    op_id: str,
    upload: Upload,
    env: Mapping[str, str] | None,
    timeout: float | None,
    run: Callable[[Mapping[str, str]], Awaitable[CommandResult]],
) -> CommandResult:
    """Run (``run(env)``) with the stage path in the environment; send the file when asked, run again."""
    stage = {
        **(env or {}),
        STAGE_VAR: stage_path(op_id),
        STAGE_SHA_VAR: upload.sha256,
        STAGE_SIZE_VAR: str(upload.size),
    }
    first = await run(stage)
    if not asks_for_upload(first):
        return first
    if not isinstance(transport, Uploading):
        raise TransportError(f"{type(transport).__name__} cannot send files ({upload.src})", host=host)
    dest = stage[STAGE_VAR]
    if upload.content is None:
        sent = await transport.put(host, upload.src, dest, timeout=timeout, rate=upload.rate)
    else:
        sent = await transport.put(
            host, upload.src, dest, timeout=timeout, rate=upload.rate, content=upload.content
        )
    return await run({**stage, SENT_VAR: str(sent)})
