"""What the file-transfer tests share: a transport that runs commands but moves no files, and a way
to run requests one after another through one host pool."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from sysflow.actors.hostpool import HostPool
from sysflow.actors.local import LocalTransport
from sysflow.actors.ops import OpRequest, OpResult
from sysflow.transport import CommandResult


class CommandsOnly:
    """A transport that runs commands (locally) but cannot send or bring back files."""

    def __init__(self) -> None:
        self._local = LocalTransport()

    async def run(
        self,
        host: str,
        command: str,
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        stdin: str | bytes | None = None,
        cwd: str | None = None,
    ) -> CommandResult:
        return await self._local.run(host, command, timeout=timeout, env=env, stdin=stdin, cwd=cwd)

    async def close(self) -> None:
        await self._local.close()


def run_requests(transport: Any, *requests: OpRequest) -> list[OpResult]:
    """Run ``requests`` one after another through one host pool over ``transport``."""

    async def go() -> list[OpResult]:
        pool = HostPool("local", transport)
        try:
            return [await pool.run_op(r) for r in requests]
        finally:
            await pool.close()

    return asyncio.run(go())
