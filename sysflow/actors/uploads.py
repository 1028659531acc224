"""Files between the controller and a host, on the one execution path.

An operation that needs a local file (``copy``, ``template``): its command first compares checksums on the
host, and only when the file differs and is not there yet asks for it (``UPLOAD_MARK``, exit
``UPLOAD_NEEDED``); the file is then sent to its stage path and the command runs again to install it.
An unchanged file is one command and no transfer; a changed one, two commands and one transfer.

An operation that brings a file back (``fetch``) runs with the checksum of the controller's copy;
when the host's file differs, its command copies it to a new private file and asks
(``FETCH_MARK`` checksum size path, exit ``FETCH_NEEDED``); the pool gets it, checks the checksum,
renames it into place, and runs the command again, which removes the staged copy.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from sysflow.errors import TransportError
from sysflow.transport import (
    FETCH_MARK,
    FETCH_NEEDED,
    FETCHED_VAR,
    HAVE_SHA_VAR,
    STAGE_SHA_VAR,
    STAGE_SIZE_VAR,
    STAGE_VAR,
    UPLOAD_MARK,
    UPLOAD_NEEDED,
    CommandResult,
    Download,
    Fetching,
    Transport,
    Upload,
    Uploading,
)

__all__ = [
    "SENT_VAR",
    "asked_download",
    "asks_for_upload",
    "run_with_download",
    "run_with_upload",
    "stage_path",
]

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


def asked_download(result: CommandResult) -> tuple[str, int, str] | None:
    """The checksum, size and stage path a fetch's command staged, when it asks to be fetched."""
    if result.exit_status != FETCH_NEEDED:
        return None
    for line in result.stdout.splitlines():
        parts = line.split(" ", 4)
        if len(parts) == 5 and f"{parts[0]} {parts[1]}" == FETCH_MARK and parts[3].isdigit():
            return parts[2], int(parts[3]), parts[4]
    return None


async def run_with_download(
    transport: Transport,
    host: str,
    op_id: str,
    download: Download,
    env: Mapping[str, str] | None,
    timeout: float | None,
    run: Callable[[Mapping[str, str]], Awaitable[CommandResult]],
) -> CommandResult:
    """Run with the checksum of the controller's copy; when the host's file differs, the command stages
    it and asks: get it, check it, rename it into ``download.dest``, and run again to remove the stage."""
    have = await asyncio.to_thread(_sha256_of, download.dest)
    first = await run({**(env or {}), HAVE_SHA_VAR: have})
    asked = asked_download(first)
    if asked is None:
        return first
    sha, _size, staged = asked
    if not isinstance(transport, Fetching):
        raise TransportError(
            f"{type(transport).__name__} cannot bring files back ({download.dest})", host=host
        )
    dest = Path(download.dest)
    tmp = dest.with_name(f".{dest.name}.sysflow-{hashlib.sha256(op_id.encode()).hexdigest()[:8]}")
    try:
        await asyncio.to_thread(dest.parent.mkdir, parents=True, exist_ok=True)
        got = await transport.get(host, staged, str(tmp), timeout=timeout)
        if await asyncio.to_thread(_sha256_of, str(tmp)) != sha:
            raise TransportError(
                f"the file fetched for {dest} does not match its checksum on the host", host=host
            )
        await asyncio.to_thread(os.replace, tmp, dest)
    finally:
        await asyncio.to_thread(tmp.unlink, missing_ok=True)
    return await run({**(env or {}), HAVE_SHA_VAR: sha, STAGE_VAR: staged, FETCHED_VAR: str(got)})


def _sha256_of(path: str) -> str:
    """The file's SHA-256 ("" when there is no file)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1024 * 1024):
                digest.update(chunk)
    except FileNotFoundError:
        return ""
    return digest.hexdigest()
