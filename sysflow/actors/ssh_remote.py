"""What runs on the remote side of one SSH channel, and the asyncssh callbacks around it.

Why: the command line sent to the host (exports, ``cd``, ``sudo`` with a password on stdin, and a
marker that lets a timed-out command be found and killed even where sshd refuses signal requests),
the client callbacks that record the host key verdict of a connection attempt, the session
callbacks that stream output into capped collectors, and the mapping of asyncssh / OS errors onto
the ``ConnectionFailed`` family. asyncssh is imported when the first connection opens.
"""

from __future__ import annotations

import asyncio
import errno
import math
import shlex
import socket
from collections.abc import Callable, Mapping
from typing import Any

from sysflow.actors.hostkeys import HostKeyStore, HostKeyVerdict
from sysflow.actors.output import OutputCollector
from sysflow.actors.ssh_options import ENV_NAME, MARKER_VAR
from sysflow.errors import (
    AuthenticationFailed,
    ConnectionFailed,
    ConnectTimeout,
    HostKeyMismatch,
    HostUnreachable,
)
from sysflow.transport import OUTPUT_LINE_CAP

__all__ = [
    "BECOME_EXIT",
    "CommandSession",
    "ConnectClient",
    "become_failure",
    "classify_connect_error",
    "kill_command",
    "new_client",
    "new_session",
    "parse_settle",
    "settle_command",
    "wrap_command",
]

LineTap = Callable[[str, str], None]  # (stdout|stderr, line) of one command's session


def wrap_command(
    command: str,
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    become: str | None = None,
    sudo_password: bool = False,
    marker: str | None = None,
) -> str:
    """The remote command line: exports, ``cd``, and ``sudo`` (password read from stdin first).

    ``marker`` is exported as ``SYSFLOW_CMD_ID`` so every process of the command can be found (and
    killed) by :func:`kill_command` even where sshd refuses signal requests (root logins).
    """
    parts: list[str] = [f"export {MARKER_VAR}={marker}"] if marker else []
    for k, v in (env or {}).items():
        if not ENV_NAME.match(k):
            raise ValueError(f"not an environment variable name: {k!r}")
        parts.append(f"export {k}={shlex.quote(v)}")
    if cwd is not None:
        parts.append(f"cd {shlex.quote(cwd)} || exit 125")
    parts.append(command)
    line = "\n".join(parts)
    if become is None:
        return line
    inner = f"sudo -H -n -u {shlex.quote(become)} -- /bin/sh -c {shlex.quote(line)}"
    if not sudo_password:
        return inner
    # Read the password line from stdin inside the remote shell (a builtin: it never appears in a
    # process list), validate sudo with it on stdin (-S, empty prompt), then run the command with the
    # cached credential; the rest of stdin belongs to the command. No ``exec``: sudo caches the
    # credential for its parent process (no tty), which must be this shell for both calls. A rejected
    # password prints BECOME_REJECTED and exits BECOME_EXIT (see :func:`become_failure`).
    check = (
        'IFS= read -r _sf_pw; printf "%s\\n" "$_sf_pw" | sudo -S -p "" -v >/dev/null 2>&1'
        f" || {{ unset _sf_pw; echo {BECOME_REJECTED} >&2; exit {BECOME_EXIT}; }}; unset _sf_pw"
    )
    return f"{check}\n{inner}"


BECOME_REJECTED = "sysflow-become-rejected"
BECOME_EXIT = 97
_SUDO_NEEDS_PASSWORD = "sudo: a password is required"


def become_failure(exit_status: int | None, stderr: str, host: str, user: str) -> str | None:
    """The one clear per-host line when sudo refused to run the command (a rejected password, or
    no password where sudo needs one); None when the command itself ran."""
    if exit_status == BECOME_EXIT and BECOME_REJECTED in stderr:
        return f"become password rejected by sudo on {host} (user {user})"
    if exit_status == 1 and stderr.lstrip().startswith(_SUDO_NEEDS_PASSWORD):
        return (
            f"{_SUDO_NEEDS_PASSWORD} on {host} (user {user}) — pass --ask-become-pass or set "
            "ansible_become_password"
        )
    return None


def _marker_pattern(marker: str) -> str:
    """An extended regex matching ``SYSFLOW_CMD_ID=<marker>`` that does not match its own text (the
    bracket), so the scanning shell and grep, whose command lines carry it, never find themselves."""
    return shlex.quote(f"{MARKER_VAR[:-1]}[{MARKER_VAR[-1]}]={marker}")


def _scan(pattern: str) -> str:
    # /proc/PID/cmdline finds the command's top shell (sshd runs `$SHELL -c LINE` and LINE exports
    # the marker), /proc/PID/environ every process it started; one grep looks at all of them.
    return (
        f"grep -lsaE {pattern} /proc/[0-9]*/environ /proc/[0-9]*/cmdline 2>/dev/null"
        " | sed -n 's|^/proc/\\([0-9]*\\)/.*|\\1|p' | sort -u"
    )


def kill_command(marker: str) -> str:
    """A remote command that KILLs every process of the command ``marker`` (Linux /proc): its top
    shell (the marker is in its command line) and every process carrying it in its environment."""
    scan = _scan(_marker_pattern(marker))
    return f"for p in $({scan}); do kill -KILL $p; done 2>/dev/null; true"


SETTLE_TAG = "sysflow-settle"
_SETTLE_POLL = 0.1  # seconds between looks while waiting for a command to end
_KILL_LOOKS = 20  # looks (every 0.1 s) for killed processes to be gone


def settle_command(marker: str, *, wait: float, stop: bool) -> str:
    """A remote command that finds the command ``marker``, waits up to ``wait`` seconds for it to end
    (then, or at once when ``wait`` is 0, KILLs it when ``stop``), and prints one line:
    ``sysflow-settle found=0|1 running=0|1 stopped=0|1 looks=N``."""
    pattern = _marker_pattern(marker)
    scan = _scan(pattern)
    looks = max(0, math.ceil(wait / _SETTLE_POLL))
    seconds = max(0, math.ceil(wait)) + 1  # whole seconds: never earlier than `wait`
    kill = f"for p in $({scan}); do kill -KILL $p; done 2>/dev/null"
    # a fractional sleep where the host has one (else whole seconds); the wait ends after `looks`
    # looks or when the clock passes the deadline, whichever comes first
    nap = f"{{ sleep {_SETTLE_POLL} 2>/dev/null || sleep 1; }}"
    return "\n".join(
        [
            f'alive() {{ [ -n "$({scan})" ]; }}',
            f"found=0; running=0; stopped=0; n=0; end=$(( $(date +%s) + {seconds} ))",
            "if alive; then found=1; running=1; fi",
            f"while [ $running = 1 ] && [ $n -lt {looks} ] && [ $(date +%s) -lt $end ]; do",
            f"  {nap}; n=$((n+1)); alive || running=0",
            "done",
            f"if [ $running = 1 ] && [ {int(stop)} = 1 ]; then",
            f"  stopped=1; k=0; {kill}",
            f"  while alive && [ $k -lt {_KILL_LOOKS} ]; do {nap}; k=$((k+1)); {kill}; done",
            "  alive || running=0",
            "fi",
            f'echo "{SETTLE_TAG} found=$found running=$running stopped=$stopped looks=$n"',
        ]
    )


def parse_settle(stdout: str) -> dict[str, int] | None:
    """The fields of :func:`settle_command`'s line, or None when it did not print one."""
    for line in stdout.splitlines():
        if line.startswith(SETTLE_TAG + " "):
            fields = dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)
            try:
                return {k: int(v) for k, v in fields.items()}
            except ValueError:
                return None
    return None


class ConnectClient:
    """asyncssh client callbacks for one connection attempt: host key verdict and loss notice."""

    def __init__(self, store: HostKeyStore, on_lost: Callable[[Any, Exception | None], None]) -> None:
        self.store = store
        self.verdict = HostKeyVerdict.TRUSTED
        self.on_lost = on_lost
        self.conn: Any = None

    def connection_made(self, conn: Any) -> None:
        self.conn = conn

    def connection_lost(self, exc: Exception | None) -> None:
        self.on_lost(self.conn, exc)

    def validate_host_public_key(self, host: str, addr: str, port: int, key: Any) -> bool:
        self.verdict = self.store.check(host, addr, port, key)
        return self.verdict.ok

    def validate_host_ca_key(self, host: str, addr: str, port: int, key: Any) -> bool:
        return False


class CommandSession:
    """asyncssh session callbacks for one command: streams output into capped collectors."""

    def __init__(self, cap: int, tap: LineTap | None = None) -> None:
        self.stdout = OutputCollector(cap)
        self.stderr = OutputCollector(cap)
        self.exit_status: int | None = None
        self.exit_signal: str | None = None
        self.done: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()
        self._tap = tap
        self._partial: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}

    def connection_made(self, chan: Any) -> None:
        return None

    def data_received(self, data: bytes, datatype: int | None) -> None:
        (self.stdout if datatype is None else self.stderr).feed(data)
        if self._tap is not None:
            self._lines("stdout" if datatype is None else "stderr", data)

    def _lines(self, kind: str, data: bytes) -> None:
        """Hand the tap each complete line; keep the rest (at most a line cap) for the next chunk."""
        assert self._tap is not None
        pending = self._partial[kind]
        pending += data
        *lines, rest = pending.split(b"\n")
        for line in lines:
            self._tap(kind, line[:OUTPUT_LINE_CAP].decode(errors="replace"))
        if len(rest) > OUTPUT_LINE_CAP:  # a line without end: show its start, drop the rest
            self._tap(kind, rest[:OUTPUT_LINE_CAP].decode(errors="replace"))
            rest = bytearray()
        self._partial[kind] = bytearray(rest)

    def exit_status_received(self, status: int) -> None:
        self.exit_status = status

    def exit_signal_received(self, signal: str, core_dumped: bool, msg: str, lang: str) -> None:
        self.exit_signal = signal

    def connection_lost(self, exc: Exception | None) -> None:
        if self._tap is not None:  # the last line, when the output did not end with a newline
            for kind, rest in self._partial.items():
                if rest:
                    self._tap(kind, rest.decode(errors="replace"))
                    rest.clear()
        if not self.done.done():
            self.done.set_result(exc)


_CLASSES: dict[str, type[Any]] = {}


def new_client(store: HostKeyStore, on_lost: Callable[[Any, Exception | None], None]) -> ConnectClient:
    """A client object for one attempt: our callbacks over asyncssh's ``SSHClient`` defaults."""
    cls = _CLASSES.get("client")
    if cls is None:
        import asyncssh

        cls = _CLASSES["client"] = type("_Client", (ConnectClient, asyncssh.SSHClient), {})
    client: ConnectClient = cls(store, on_lost)
    return client


def new_session(cap: int, tap: LineTap | None = None) -> CommandSession:
    """A session object for one command over asyncssh's ``SSHClientSession`` defaults; ``tap`` is
    told each line of output as it arrives."""
    cls = _CLASSES.get("session")
    if cls is None:
        import asyncssh

        cls = _CLASSES["session"] = type("_Session", (CommandSession, asyncssh.SSHClientSession), {})
    session: CommandSession = cls(cap, tap)
    return session


def classify_connect_error(exc: BaseException, host: str, client: ConnectClient | None) -> ConnectionFailed:
    """Turn what asyncssh / the OS raised while connecting into our exception family."""
    import asyncssh

    if isinstance(exc, ConnectionFailed):
        return exc
    if client is not None and not client.verdict.ok:
        what = "changed" if client.verdict is HostKeyVerdict.CHANGED else "not in known_hosts"
        return HostKeyMismatch(f"host key {what}", host=host)
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return HostKeyMismatch(f"host key not verifiable: {exc.reason}", host=host)
    if isinstance(exc, asyncssh.PermissionDenied):
        return AuthenticationFailed("authentication failed", host=host)
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return ConnectTimeout("connect timed out", host=host)
    if isinstance(exc, ConnectionRefusedError | socket.gaierror):
        return HostUnreachable(f"unreachable: {exc.strerror or type(exc).__name__}", host=host)
    if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return HostUnreachable(f"unreachable: {exc.strerror}", host=host)
    if isinstance(exc, asyncssh.Error):
        return ConnectionFailed(f"connection failed: {exc.reason}", host=host)
    return ConnectionFailed(f"connection failed: {type(exc).__name__}: {exc}", host=host)
