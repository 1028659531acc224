"""How one request's command runs over a transport: as the login user or through sudo, and with what
its module asks of the host pool between two runs of it (a reboot awaited, a file sent or fetched)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from sysflow.actors.ops import OpRequest
from sysflow.actors.reboot import run_with_reboot
from sysflow.actors.uploads import run_with_download, run_with_upload
from sysflow.clock import Clock
from sysflow.transport import CommandResult, Transport

__all__ = ["run_request", "takes_become"]


async def run_request(transport: Transport, req: OpRequest, clock: Clock) -> CommandResult:
    """Run ``req``'s command once, or as often as its module's protocol needs; one attempt."""
    if req.reboot is None and req.download is None and req.upload is None and req.become is None:
        # a plain command (most of them): no closures, no protocol between two runs
        return await transport.run(req.host, req.command, timeout=req.timeout, env=req.env_map, cwd=req.cwd)

    async def on(env: Mapping[str, str] | None, command: str, timeout: float | None) -> CommandResult:
        if req.become is not None and takes_become(transport):
            run: Any = transport.run  # the SSH transport's run, beyond the Transport protocol
            result: CommandResult = await run(
                req.host, command, timeout=timeout, env=env, cwd=req.cwd, become=req.become
            )
            return result
        return await transport.run(req.host, command, timeout=timeout, env=env, cwd=req.cwd)

    async def once(env: Mapping[str, str] | None) -> CommandResult:
        return await on(env, req.command, req.timeout)

    if req.reboot is not None:  # reboot and wait for a new boot id, when the command asks
        return await run_with_reboot(
            transport, req.host, req.reboot, req.env_map, clock, lambda: once(req.env_map), on
        )
    if req.download is not None:  # bring a file back, when the command staged it
        return await run_with_download(
            transport, req.host, req.op_id, req.download, req.env_map, req.timeout, once
        )
    if req.upload is not None:  # send a file, when the command asks for it
        return await run_with_upload(
            transport, req.host, req.op_id, req.upload, req.env_map, req.timeout, once
        )
    return await once(req.env_map)


def takes_become(transport: Transport) -> bool:
    """Whether ``transport.run`` runs commands as another user (``become=``; the SSH transport does).
    Simulated and scripted transports do not: they run the command as written."""
    return _takes_become(type(transport))


@functools.cache
def _takes_become(kind: type) -> bool:
    import inspect

    run = getattr(kind, "run", None)
    return run is not None and "become" in inspect.signature(run).parameters
