"""An in-test transport that answers from recorded outputs (no mocks of sysflow internals)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sysflow.errors import HostUnreachable
from sysflow.transport import CommandResult

SPECS = Path(__file__).parent / "specs"


def spec_text(name: str) -> str:
    return (SPECS / name).read_text()


@dataclass
class Reply:
    stdout: str
    exit_status: int = 0
    stderr: str = ""


class ReplayTransport:
    """Answers a command with the reply of the first key contained in it, per host or by default.

    ``replies`` and ``host_replies`` may be changed between calls to play a host whose state moves.
    """

    def __init__(
        self,
        replies: Mapping[str, Reply | str] | None = None,
        *,
        host_replies: Mapping[str, Mapping[str, Reply | str]] | None = None,
        unreachable: frozenset[str] = frozenset(),
    ) -> None:
        self.replies: dict[str, Reply | str] = dict(replies or {})
        self.host_replies: dict[str, dict[str, Reply | str]] = {
            h: dict(r) for h, r in (host_replies or {}).items()
        }
        self.unreachable = unreachable
        self.calls: list[tuple[str, str]] = []

    def _reply(self, host: str, command: str) -> Reply:
        for table in (self.host_replies.get(host, {}), self.replies):
            for key, reply in table.items():
                if key in command:
                    return reply if isinstance(reply, Reply) else Reply(reply)
        return Reply("", 127, f"sh: 1: {command.split()[0]}: not found")

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
        self.calls.append((host, command))
        if host in self.unreachable:
            raise HostUnreachable("connection refused", host=host)
        reply = self._reply(host, command)
        now = datetime(2026, 1, 4, tzinfo=UTC)
        return CommandResult(host, command, reply.exit_status, reply.stdout, reply.stderr, now, now)

    async def close(self) -> None:
        return None
