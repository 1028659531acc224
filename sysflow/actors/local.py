"""Run commands as local subprocesses: run-once hooks, local tasks, and tests."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import sys
from collections.abc import Mapping

from sysflow.clock import Clock, RealClock
from sysflow.errors import CommandTimeout, TransportError
from sysflow.transport import (
    DEFAULT_OUTPUT_CAP,
    DEFAULT_SETTLE_TIMEOUT,
    CommandResult,
    Settled,
    cap_output,
    valid_command_id,
)

__all__ = ["LocalTransport"]


class LocalTransport:
    """A ``Transport`` whose every host is this machine (``/bin/sh -c``); ``host`` only labels results."""

    def __init__(self, *, clock: Clock | None = None, output_cap: int = DEFAULT_OUTPUT_CAP) -> None:
        self._clock = clock or RealClock()
        self._cap = output_cap

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
        start = self._clock.now()
        proc = await asyncio.create_subprocess_shell(
            command,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=cwd,
            env={**os.environ, **env} if env else None,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        data = stdin.encode() if isinstance(stdin, str) else stdin
        out, err = bytearray(), bytearray()
        try:
            async with asyncio.timeout(timeout):
                await _communicate(proc, data, out, err)
        except TimeoutError:
            await _kill(proc)
            await _drain(proc, out, err)
            so, se = cap_output(bytes(out), self._cap), cap_output(bytes(err), self._cap)
            raise CommandTimeout(
                f"command timed out after {timeout}s",
                host=host,
                timeout=timeout,
                stdout=so.text,
                stderr=se.text,
            ) from None
        except asyncio.CancelledError:
            await _kill(proc)
            raise
        end = self._clock.now()
        so, se = cap_output(bytes(out), self._cap), cap_output(bytes(err), self._cap)
        code = proc.returncode
        sig = signal.Signals(-code).name if code is not None and code < 0 else None
        return CommandResult(
            host=host,
            command=command,
            exit_status=code if code is not None and code >= 0 else None,
            stdout=so.text,
            stderr=se.text,
            start=start,
            end=end,
            signal=sig,
            stdout_bytes=so.total_bytes,
            stderr_bytes=se.total_bytes,
            truncated=so.truncated or se.truncated,
            stdout_sha256=so.sha256,
        )

    async def settle(
        self, host: str, command_id: str, *, wait: bool = True, timeout: float | None = None
    ) -> Settled:
        """Whether a local command carrying ``command_id`` (``SYSFLOW_CMD_ID`` in ``env``) still runs;
        wait for it up to ``timeout`` seconds and stop it then (or at once without ``wait``). Local
        commands die with the controller that started them, so after a crash none is found."""
        from sysflow.actors.ssh_remote import parse_settle, settle_command

        if not valid_command_id(command_id):
            raise ValueError(f"not a command id: {command_id!r}")
        bound = max(0.0, timeout if timeout is not None else DEFAULT_SETTLE_TIMEOUT) if wait else 0.0
        t0 = self._clock.monotonic()
        result = await LocalTransport.run(
            self, host, settle_command(command_id, wait=bound, stop=True), timeout=bound + 15.0
        )
        fields = parse_settle(result.stdout)
        if fields is None:
            raise TransportError(f"cannot tell whether command {command_id} still runs", host=host)
        return Settled.from_fields(host, command_id, fields, self._clock.monotonic() - t0)

    async def put(
        self,
        host: str,
        src: str,
        dest: str,
        *,
        timeout: float | None = None,
        rate: float | None = None,
        content: bytes | None = None,
    ) -> int:
        """Copy ``src`` to a new file ``dest`` (mode 0600) on this machine, as SFTP would; bytes sent.
        ``rate`` is not applied: a copy on the controller uses no network bandwidth."""
        return await asyncio.wait_for(asyncio.to_thread(_copy_new, src, dest, host, content), timeout)

    async def get(self, host: str, src: str, dest: str, *, timeout: float | None = None) -> int:
        """Copy ``src`` to ``dest`` on this machine, as SFTP would bring it; the bytes copied."""
        return await asyncio.wait_for(asyncio.to_thread(_copy_new, src, dest, host), timeout)

    async def close(self) -> None:
        return None


_PR_SET_PDEATHSIG = 1  # prctl option: the signal a child gets when its parent dies


def _copy_new(src: str, dest: str, host: str, content: bytes | None = None) -> int:
    with contextlib.suppress(FileNotFoundError):
        if os.path.isfile(dest) and not os.path.islink(dest):
            os.unlink(dest)  # a stale copy of an earlier attempt
    sent = 0
    try:
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with (
            io.BytesIO(content) if content is not None else open(src, "rb") as local,
            os.fdopen(fd, "wb") as out,
        ):
            while chunk := local.read(256 * 1024):
                out.write(chunk)
                sent += len(chunk)
    except OSError as exc:
        raise TransportError(f"cannot copy {src} to {dest}: {exc.strerror or exc}", host=host) from exc
    return sent


def _die_with_parent() -> None:
    """In the child, before exec: be killed when the controller dies (Linux), as a remote command is
    when its SSH connection drops, so a crashed run leaves no orphan running behind a re-check."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


async def _pump(stream: asyncio.StreamReader | None, buf: bytearray) -> None:
    while stream is not None and (chunk := await stream.read(_CHUNK)):
        buf += chunk


async def _communicate(
    proc: asyncio.subprocess.Process, data: bytes | None, out: bytearray, err: bytearray
) -> None:
    """``proc.communicate(data)``, but what was read so far stays in ``out``/``err`` if it is cut off."""

    async def feed() -> None:
        if proc.stdin is None:
            return
        if data:
            proc.stdin.write(data)
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                await proc.stdin.drain()
        proc.stdin.close()

    await asyncio.gather(feed(), _pump(proc.stdout, out), _pump(proc.stderr, err))
    await proc.wait()


async def _drain(proc: asyncio.subprocess.Process, out: bytearray, err: bytearray) -> None:
    """After a kill: what the command wrote before it died and was not read yet (bounded wait, in
    case something it started still holds the pipes)."""
    with contextlib.suppress(TimeoutError, Exception):
        async with asyncio.timeout(_DRAIN_TIMEOUT):
            await asyncio.gather(_pump(proc.stdout, out), _pump(proc.stderr, err))


_CHUNK = 64 * 1024
_DRAIN_TIMEOUT = 1.0  # seconds to read a killed command's last output


async def _kill(proc: asyncio.subprocess.Process) -> None:
    """Stop the whole process group of a timed-out or cancelled command."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(proc.wait(), 5)
