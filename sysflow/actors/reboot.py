"""Reboot and wait (``reboot``): never "rebooted" before the host went down and came back.

The operation's command reads the host's boot id and asks for the reboot (``REBOOT_MARK`` and the
id, exit ``REBOOT_NEEDED``); a command that does not ask (nothing required, a failure, a ``check``
probe) is the result as it is. When it asks:

1. the reboot command runs; a connection that dies under it, a signal or a hang is what a reboot
   looks like; a clean non-zero exit is a refusal (the host is still up): the operation fails;
2. the transport forgets its pooled connection to the host (:class:`~sysflow.transport.Reconnecting`),
   and polls: reconnect and read the boot id, with a backoff doubling from ``interval`` up to
   ``max_interval``;
3. a boot id other than the recorded one is success. No answer means the host is down; the old boot
   id means it has not rebooted yet (a host that drops its connection late keeps answering for a
   while), whatever the reboot command said;
4. ``timeout`` seconds after the reboot command, the operation fails (``CommandTimeout``) naming the
   host, how long, and what was seen last.

Only the transport and the clock are used, so the same protocol runs over SSH and on the simulator's
virtual clock (where a reboot is modelled: down time, a host that never comes back, a late drop).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace

from sysflow.clock import Clock
from sysflow.errors import CommandTimeout, ConnectionFailed, TransportError
from sysflow.transport import (
    COMMAND_ID_VAR,
    REBOOT_MARK,
    REBOOT_NEEDED,
    CommandResult,
    Reboot,
    Reconnecting,
    Transport,
)

__all__ = ["RunOn", "asked_boot_id", "run_with_reboot"]

RunOn = Callable[[Mapping[str, str] | None, str, float | None], Awaitable[CommandResult]]
"""Runs ``(env, command, timeout)`` on the operation's host, as the operation runs its command."""


def asked_boot_id(result: CommandResult) -> str | None:
    """The boot id a command that asks for a reboot printed with ``REBOOT_MARK``; None: it did not ask."""
    if result.exit_status != REBOOT_NEEDED:
        return None
    for line in result.stdout.splitlines():
        if line.startswith(REBOOT_MARK + " "):
            return line[len(REBOOT_MARK) + 1 :].strip() or None
    return None


@dataclass
class _Seen:
    """What the wait saw: when the host stopped answering, and the latest answer (or lack of one)."""

    down_at: float | None = None  # seconds after the reboot command
    last: str = "no poll yet"


async def run_with_reboot(
    transport: Transport,
    host: str,
    reboot: Reboot,
    env: Mapping[str, str] | None,
    clock: Clock,
    first: Callable[[], Awaitable[CommandResult]],
    run: RunOn,
) -> CommandResult:
    """Run the operation's command (``first``); when it asks, reboot the host and wait for a new boot id."""
    asked = await first()
    old = asked_boot_id(asked)
    if old is None:
        return asked
    start, t0 = clock.now(), clock.monotonic()
    seen = _Seen()
    # a marker of their own: stopping a stuck poll must not kill what the reboot command started
    env = {k: v for k, v in (env or {}).items() if k != COMMAND_ID_VAR} or None
    try:
        issued = await run(env, reboot.command, reboot.probe_timeout)
    except ConnectionFailed:  # the session died under the command: the host is going down
        seen.down_at, seen.last = clock.monotonic() - t0, "the connection dropped under the reboot command"
    except CommandTimeout:  # no answer within the probe timeout: going down, or stuck; the polls tell
        seen.last = f"the reboot command gave no answer within {reboot.probe_timeout:g} s"
    else:
        if issued.exit_status not in (0, None):  # it ran and said no: the host is as it was
            why = (issued.stderr.strip() or issued.stdout.strip() or "no output")[-400:]
            return replace(
                issued,
                stdout=_why(asked),
                stderr=f"reboot: {host}: the reboot command was refused (exit {issued.exit_status}), "
                f"not rebooted (boot id {old}): {why}\n",
            )
    new = await _wait(transport, host, reboot, env, clock, run, old, t0, seen)
    back = clock.monotonic() - t0
    down = f"went down after {seen.down_at:.1f} s, " if seen.down_at is not None else ""
    stdout = (
        f"::sysflow changed\n{_why(asked)}rebooted: boot id {old} -> {new}\n"
        f"{down}answered again after {back:.1f} s\n"
    )
    return CommandResult(host, reboot.command, 0, stdout, "", start, clock.now())


async def _wait(
    transport: Transport,
    host: str,
    reboot: Reboot,
    env: Mapping[str, str] | None,
    clock: Clock,
    run: RunOn,
    old: str,
    t0: float,
    seen: _Seen,
) -> str:
    """Poll until a boot id other than ``old`` answers; ``CommandTimeout`` when ``timeout`` passes."""
    delay = reboot.interval
    while True:
        await _forget(transport, host)
        left = reboot.timeout - (clock.monotonic() - t0)
        if left <= 0:
            raise _timed_out(host, reboot, old, seen)
        await clock.sleep(min(delay, left))
        delay = min(delay * 2, reboot.max_interval)
        left = reboot.timeout - (clock.monotonic() - t0)
        if left <= 0:
            raise _timed_out(host, reboot, old, seen)
        try:
            got = await run(env, reboot.boot_id_command, min(reboot.probe_timeout, left))
        except TransportError as exc:  # cannot connect, lost, no answer: down (or not back yet)
            if seen.down_at is None:
                seen.down_at = clock.monotonic() - t0
            seen.last = f"no answer ({str(exc).removeprefix(f'{host}: ')})"
            continue
        answer = got.stdout.strip()
        if not got.ok or not answer or "\n" in answer:
            seen.last = f"the boot id read failed (exit {got.exit_status}): {got.stderr.strip()[:200]}"
        elif answer == old:
            seen.last = "it still answers with the old boot id"
        else:
            return answer


async def _forget(transport: Transport, host: str) -> None:
    """Make the next command connect anew (a pooled connection may be the dead old boot's)."""
    if isinstance(transport, Reconnecting):
        await transport.disconnect(host)


def _timed_out(host: str, reboot: Reboot, old: str, seen: _Seen) -> CommandTimeout:
    went = (
        f"it went down after {seen.down_at:.1f} s and did not come back"
        if seen.down_at is not None
        else "it never went down"
    )
    return CommandTimeout(
        f"reboot: did not come back with a new boot id within {reboot.timeout:g} s of the "
        f"reboot command ({went}; last: {seen.last}; old boot id {old})",
        host=host,
        timeout=reboot.timeout,
    )


def _why(asked: CommandResult) -> str:
    """What the asking command said besides the mark (why the reboot: required, or asked)."""
    lines = [ln for ln in asked.stdout.splitlines() if ln and not ln.startswith(REBOOT_MARK)]
    return "".join(f"{ln}\n" for ln in lines)
