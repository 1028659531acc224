"""Files over SFTP on a pooled SSH connection: a local file sent to a new file on the host.

Streamed in bounded chunks (memory does not grow with the file), to a path that must not exist yet
(a stale file of an earlier attempt is removed first when the login user may; anything else there,
such as another user's file or a symlink planted in ``/tmp``, fails the transfer), created readable
by the login user only. The command that asked for the file checks its checksum before using it.
"""

from __future__ import annotations

import contextlib
from typing import Any

from sysflow.errors import TransportError

__all__ = ["CHUNK", "put_file"]

CHUNK = 256 * 1024  # bytes read and written at a time: the memory a transfer holds


async def put_file(conn: Any, host: str, src: str, dest: str) -> int:
    """Send ``src`` (local) to ``dest`` on ``host`` over ``conn``'s SFTP subsystem; the bytes sent."""
    import asyncssh

    sent = 0
    try:
        async with conn.start_sftp_client() as sftp:
            with contextlib.suppress(asyncssh.SFTPError):
                if (await sftp.lstat(dest)).type == asyncssh.FILEXFER_TYPE_REGULAR:
                    await sftp.remove(dest)  # ours from an earlier attempt (else: permission denied)
            attrs = asyncssh.SFTPAttrs(permissions=0o600)
            flags = asyncssh.FXF_WRITE | asyncssh.FXF_CREAT | asyncssh.FXF_EXCL
            async with sftp.open(dest, flags, attrs, encoding=None) as remote:
                with open(src, "rb") as local:  # noqa: ASYNC230 -- one chunk at a time, local disk
                    while chunk := local.read(CHUNK):
                        await remote.write(chunk, sent)
                        sent += len(chunk)
    except asyncssh.SFTPError as exc:
        raise TransportError(f"cannot send {src} to {dest}: {exc.reason}", host=host) from exc
    except asyncssh.ChannelOpenError as exc:  # no SFTP subsystem (or no channel left)
        raise TransportError(f"cannot send {src}: the host offers no SFTP ({exc.reason})", host=host) from exc
    except OSError as exc:
        raise TransportError(f"cannot read {src}: {exc.strerror or exc}", host=host) from exc
    return sent
