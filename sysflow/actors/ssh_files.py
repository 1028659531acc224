"""Files over SFTP on a pooled SSH connection: a local file sent to a new file on the host.

Streamed in bounded chunks (memory does not grow with the file), to a path that must not exist yet
(a stale file of an earlier attempt is removed first when the login user may; anything else there,
such as another user's file or a symlink planted in ``/tmp``, fails the transfer), created readable
by the login user only. The command that asked for the file checks its checksum before using it.

Writes are pipelined: up to :data:`IN_FLIGHT` chunks are on their way at once (each is its own SFTP
write at its own offset), so a transfer is not one round trip per chunk; that bounds the memory a
transfer holds to ``(IN_FLIGHT + 1) * CHUNK`` bytes. A ``rate`` (bytes per second: the bandwidth
the task demands from the workflow's bandwidth pools) paces the writes with a :class:`TokenBucket`
on the transport's clock: a chunk is sent only when the bucket holds its bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from typing import Any, BinaryIO

from sysflow.clock import Clock, RealClock
from sysflow.errors import TransportError

__all__ = ["CHUNK", "IN_FLIGHT", "TokenBucket", "get_file", "put_file"]

CHUNK = 256 * 1024  # bytes read and written at a time
IN_FLIGHT = 8  # chunks written at once (2 MiB): enough to fill a link, bounded memory


class TokenBucket:
    """At most ``rate`` bytes per second on average, in bursts of at most ``burst`` bytes.

    The bucket starts full and refills at ``rate``; :meth:`take` removes ``n`` bytes (more than the
    bucket holds puts it in debt) and sleeps on ``clock`` until the bucket is no longer in debt. So
    sending ``S`` bytes in chunks takes at least ``(S - burst) / rate`` seconds, and never waits
    when the bytes are there.
    """

    def __init__(self, rate: float, clock: Clock, burst: float = CHUNK) -> None:
        if rate <= 0:
            raise ValueError(f"a rate must be positive: {rate}")
        self.rate = float(rate)
        self.burst = float(max(burst, 1))
        self._clock = clock
        self._tokens = self.burst
        self._last = clock.monotonic()
        self.waited = 0.0  # seconds spent sleeping, in all

    @property
    def tokens(self) -> float:
        """Bytes the bucket holds now (negative: in debt)."""
        self._refill()
        return self._tokens

    def _refill(self) -> None:
        now = self._clock.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def delay(self, n: int) -> float:
        """Take ``n`` bytes now; the seconds to wait before sending them (0: at once)."""
        self._refill()
        self._tokens -= n
        return -self._tokens / self.rate if self._tokens < 0 else 0.0

    async def take(self, n: int) -> None:
        """Take ``n`` bytes, waiting on the clock until they are paid for."""
        wait = self.delay(n)
        if wait > 0:
            self.waited += wait
            await self._clock.sleep(wait)


async def put_file(
    conn: Any,
    host: str,
    src: str,
    dest: str,
    *,
    rate: float | None = None,
    clock: Clock | None = None,
    in_flight: int = IN_FLIGHT,
    content: bytes | None = None,
) -> int:
    """Send ``src`` (local) to ``dest`` on ``host`` over ``conn``'s SFTP subsystem, at most ``rate``
    bytes per second on average (None: unlimited); the bytes sent."""
    import asyncssh

    bucket = TokenBucket(rate, clock or RealClock()) if rate is not None else None
    try:
        async with conn.start_sftp_client() as sftp:
            with contextlib.suppress(asyncssh.SFTPError):
                if (await sftp.lstat(dest)).type == asyncssh.FILEXFER_TYPE_REGULAR:
                    await sftp.remove(dest)  # ours from an earlier attempt (else: permission denied)
            attrs = asyncssh.SFTPAttrs(permissions=0o600)
            flags = asyncssh.FXF_WRITE | asyncssh.FXF_CREAT | asyncssh.FXF_EXCL
            async with sftp.open(dest, flags, attrs, encoding=None) as remote:
                if content is not None:  # a rendered template: already in memory
                    return await _stream(io.BytesIO(content), remote, bucket, max(1, in_flight))
                with open(src, "rb") as local:  # noqa: ASYNC230 -- one chunk at a time, local disk
                    return await _stream(local, remote, bucket, max(1, in_flight))
    except asyncssh.SFTPError as exc:
        raise TransportError(f"cannot send {src} to {dest}: {exc.reason}", host=host) from exc
    except asyncssh.ChannelOpenError as exc:  # no SFTP subsystem (or no channel left)
        raise TransportError(f"cannot send {src}: the host offers no SFTP ({exc.reason})", host=host) from exc
    except OSError as exc:
        raise TransportError(f"cannot read {src}: {exc.strerror or exc}", host=host) from exc


async def _stream(local: BinaryIO, remote: Any, bucket: TokenBucket | None, in_flight: int) -> int:
    """Write ``local`` to ``remote`` chunk by chunk at their offsets, ``in_flight`` writes at once;
    the first failed write stops the rest and is raised."""
    pending: set[asyncio.Task[int]] = set()

    async def settle(until: int) -> None:
        """Wait until at most ``until`` writes are pending; raise the first failure."""
        nonlocal pending
        while len(pending) > until:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()

    sent = 0
    try:
        while chunk := local.read(CHUNK):
            await settle(in_flight - 1)
            if bucket is not None:
                await bucket.take(len(chunk))
            pending.add(asyncio.create_task(remote.write(chunk, sent)))
            sent += len(chunk)
            del chunk  # only the pending writes hold their chunks
        await settle(0)
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
    return sent


async def get_file(conn: Any, host: str, src: str, dest: str) -> int:
    """Bring ``src`` from ``host`` into the local file ``dest`` over SFTP (streamed by asyncssh);
    the bytes received."""
    import asyncssh

    try:
        async with conn.start_sftp_client() as sftp:
            size = int((await sftp.stat(src)).size or 0)
            await sftp.get(src, dest)
    except asyncssh.SFTPError as exc:
        raise TransportError(f"cannot fetch {src}: {exc.reason}", host=host) from exc
    except asyncssh.ChannelOpenError as exc:
        raise TransportError(
            f"cannot fetch {src}: the host offers no SFTP ({exc.reason})", host=host
        ) from exc
    except OSError as exc:
        raise TransportError(f"cannot write {dest}: {exc.strerror or exc}", host=host) from exc
    return size
