"""Who owns a run: the controller process (host, pid, process start time, claim token) and whether
it still lives. A reused pid is not mistaken for the owner (its start time differs), and a zombie
counts as dead. ``RunStore`` records owners; the engine claims, heartbeats and disowns through it.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sysflow.errors import RunOwned

__all__ = [
    "DEFAULT_OWNER_TTL",
    "Owner",
    "owned_error",
    "owner_alive",
    "owner_values",
    "pid_alive",
    "process_start",
]

DEFAULT_OWNER_TTL = 60.0  # seconds an owner's heartbeat stays fresh (the engine passes its lease TTL)


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def process_start(pid: int) -> str | None:
    """``<boot id>:<start time in clock ticks>`` of a live process (Linux ``/proc/<pid>/stat``), ""
    where /proc is not there but the process exists, None when it does not exist (or is a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return "" if pid_alive(pid) else None
    fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) ": comm may hold spaces
    if not fields or fields[0] in ("Z", "X"):  # a zombie is dead: it only waits to be reaped
        return None
    return f"{_boot_id()}:{fields[19]}"  # field 22 of stat: start time


def pid_alive(pid: int | None) -> bool:
    """Whether a process with this id exists (on this machine)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True, slots=True)
class Owner:
    """The controller process that owns a run: where it runs, which process, since when."""

    host: str
    pid: int
    start: str  # process_start() of pid when it took the run ("" when unknown)
    token: str  # unique per claim: fences this claim's writes
    since: str  # ISO time it took the run

    @classmethod
    def this_process(cls) -> Owner:
        pid = os.getpid()
        return cls(
            socket.gethostname(),
            pid,
            process_start(pid) or "",
            uuid.uuid4().hex,
            datetime.now().astimezone().isoformat(timespec="seconds"),
        )

    def describe(self) -> str:
        return f"host {self.host}, pid {self.pid}, since {self.since}"


def owner_alive(owner: Owner, heartbeat: float | None, *, now: float, ttl: float) -> bool:
    """Whether ``owner`` still runs its run: its heartbeat is fresh and, when it is on this host,
    its process exists and is the one that took the run (same start time: no reused pid)."""
    if heartbeat is None or now - heartbeat > ttl:
        return False
    if owner.host == socket.gethostname():
        current = process_start(owner.pid)
        if current is None:
            return False
        if owner.start and current and current != owner.start:
            return False
    return True


def owner_values(owner: Owner) -> tuple[str, int, str, str, str]:
    return (owner.host, owner.pid, owner.start, owner.token, owner.since)


def owned_error(run_id: str, owner: Owner, heartbeat: float | None, *, lost: bool = False) -> RunOwned:
    age = None if heartbeat is None else max(0.0, time.time() - heartbeat)
    beat = "" if age is None else f", heartbeat {age:.0f}s ago"
    what = "was taken over by" if lost else "is owned by a live controller:"
    return RunOwned(
        f"run {run_id} {what} {owner.describe()}{beat}",
        run_id=run_id,
        host=owner.host,
        pid=owner.pid,
        since=owner.since,
        heartbeat_age=age,
    )
