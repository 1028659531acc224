"""The reboot protocol through a HostPool, over a scripted transport on virtual time: it reconnects
(drops the pooled connection) before every poll, a new boot id is success, the old one is never
"rebooted" however long it answers, a refused reboot command fails at once without a wait, and a
command that does not ask (nothing required, a check probe) is returned as it is."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sysflow.actors.hostpool import HostPool
from sysflow.actors.ops import ErrorKind, OpRequest, OpResult
from sysflow.actors.reboot import asked_boot_id
from sysflow.errors import ConnectionFailed, HostUnreachable
from sysflow.sim.loop import current_virtual_clock, run_virtual
from sysflow.transport import COMMAND_ID_VAR, REBOOT_MARK, REBOOT_NEEDED, CommandResult, Reboot

REBOOT = Reboot("cat -- /boot_id", "systemctl reboot", timeout=120.0, interval=1.0, max_interval=8.0)
ASK = "probe"  # the module's command, as far as this transport is concerned


class Scripted:
    """A host that reboots as told: ``drop`` seconds after the reboot command its connection dies and
    it is down ``down`` seconds (None: for good); ``refuse`` makes the reboot command exit 1."""

    def __init__(self, *, drop: float = 0.0, down: float | None = 30.0, refuse: bool = False) -> None:
        self.drop, self.down, self.refuse = drop, down, refuse
        self.boot, self.issued_at = "old-id", None
        self.log: list[tuple[float, str]] = []
        self.envs: list[Mapping[str, str] | None] = []

    async def run(
        self, host: str, command: str, *, timeout: float | None = None, env=None, stdin=None, cwd=None
    ):  # type: ignore[no-untyped-def]
        now = current_virtual_clock().monotonic()
        self.log.append((now, command))
        self.envs.append(env)
        if self.issued_at is not None:
            gone = self.issued_at + self.drop
            if now >= gone and (self.down is None or now < gone + self.down):
                raise HostUnreachable("connection refused", host=host)
            if self.down is not None and now >= gone + self.down:
                self.boot = "new-id"
        if command == ASK:
            return _result(host, command, REBOOT_NEEDED, f"{REBOOT_MARK} {self.boot}\nreboot asked\n")
        if command == REBOOT.command:
            if self.refuse:
                return _result(host, command, 1, "", "Failed to reboot: Access denied\n")
            self.issued_at = now
            if self.drop == 0:
                raise ConnectionFailed("connection lost during the command", host=host)
            return _result(host, command, 0, "")
        if command == REBOOT.boot_id_command:
            return _result(host, command, 0, f"{self.boot}\n")
        return _result(host, command, 0, "::sysflow ok\n")

    async def disconnect(self, host: str) -> None:
        self.log.append((current_virtual_clock().monotonic(), "disconnect"))

    async def close(self) -> None:
        pass


def _result(host: str, command: str, status: int, out: str, err: str = "") -> CommandResult:
    now = datetime.now()
    return CommandResult(host, command, status, out, err, now, now)


def _run(transport: Scripted, command: str = ASK) -> OpResult:
    async def main() -> OpResult:
        pool = HostPool("s", transport, clock=current_virtual_clock())
        env = ((COMMAND_ID_VAR, "a" * 32),)
        req = OpRequest("op1", "web1", "reboot", command, timeout=60.0, env=env, reboot=REBOOT)
        return await pool.run_op(req)

    return run_virtual(main())


def test_a_new_boot_id_after_the_drop_is_success_with_each_poll_on_a_new_connection() -> None:
    host = Scripted(down=30.0)
    result = _run(host)
    assert result.ok, result
    assert result.stdout.startswith("::sysflow changed\nreboot asked\nrebooted: boot id old-id -> new-id\n")
    assert "went down after 0.0 s" in result.stdout
    assert 30 <= result.duration < 30 + 8 + 1  # back after 30 s, seen within one (bounded) poll interval
    polls = [i for i, (_, c) in enumerate(host.log) if c == REBOOT.boot_id_command]
    assert polls and all(host.log[i - 1][1] == "disconnect" for i in polls)  # reconnect, then read
    gaps = [b - a for (a, _), (b, _) in zip(host.log, host.log[1:], strict=False) if b > a]
    assert max(gaps) <= 8.0  # the backoff is bounded
    assert (
        host.envs[0] == {COMMAND_ID_VAR: "a" * 32} and host.envs[-1] is None
    )  # polls: a marker of their own


def test_a_host_that_keeps_answering_the_old_boot_id_is_not_rebooted_and_fails_at_the_timeout() -> None:
    host = Scripted(drop=1000.0)  # the reboot command returned 0, and nothing ever went down
    result = _run(host)
    assert result.error_kind is ErrorKind.COMMAND_TIMEOUT
    assert result.error_message.startswith(
        "web1: reboot: did not come back with a new boot id within 120 s of the reboot command "
        "(it never went down; last: it still answers with the old boot id; old boot id old-id)"
    )
    assert 120 <= result.duration <= 121


def test_a_late_drop_is_waited_for() -> None:
    host = Scripted(drop=20.0, down=10.0)
    result = _run(host)
    assert result.ok, result
    assert result.duration >= 30
    old = [t for t, c in host.log if c == REBOOT.boot_id_command and t < 20]
    assert old  # the old boot answered polls before the drop, and none of them was taken for success


def test_a_host_that_never_comes_back_fails_at_the_timeout_saying_it_went_down() -> None:
    result = _run(Scripted(down=None))
    assert result.error_kind is ErrorKind.COMMAND_TIMEOUT
    assert "it went down after 0.0 s and did not come back; last: no answer (connection refused)" in (
        result.error_message
    )


def test_a_refused_reboot_command_fails_at_once_and_the_host_is_not_waited_for() -> None:
    host = Scripted(refuse=True)
    result = _run(host)
    assert result.error_kind is ErrorKind.COMMAND_FAILED and result.exit_status == 1
    assert "reboot: web1: the reboot command was refused (exit 1), not rebooted (boot id old-id): " in (
        result.stderr
    )
    assert "Access denied" in result.stderr
    assert [c for _, c in host.log] == [ASK, REBOOT.command]


def test_a_command_that_does_not_ask_is_the_result() -> None:
    host = Scripted()
    result = _run(host, "check")  # a resume's check probe carries the reboot too: it never asks
    assert result.ok and result.stdout == "::sysflow ok\n"
    assert [c for _, c in host.log] == ["check"]


def test_asked_boot_id_reads_the_mark_only_with_its_exit_status() -> None:
    asked = _result("h", "x", REBOOT_NEEDED, f"{REBOOT_MARK} abc-123\nwhy\n")
    assert asked_boot_id(asked) == "abc-123"
    assert asked_boot_id(_result("h", "x", 0, f"{REBOOT_MARK} abc-123\n")) is None
    assert asked_boot_id(_result("h", "x", REBOOT_NEEDED, "something else\n")) is None
