"""A run that may be killed: ``work(root, store, seed, kill_ms, resume=None)`` in a forked process.

Each host is a directory under ROOT; every task appends its name to the host's ``log`` (a real side
effect), and its check greps for it (so the task is idempotent: it is repeated only where its check
says it did not happen; local commands die with the controller, so none is left running). With KILL_AFTER_MS >= 0 a thread sends SIGKILL to this process
after that many milliseconds: a crash at a random point. The final status goes to ``ROOT/status``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from sysflow.actors.local import LocalTransport
from sysflow.engine.engine import Engine
from sysflow.model.inventory import Inventory
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.transport import CommandResult

HOSTS = 8
TASKS = ("prepare", "upgrade", "restart")


class HostDirs(LocalTransport):
    """Every host is a directory: commands run there (real subprocesses, real files)."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

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
        return await super().run(
            host, command, timeout=timeout, env=env, stdin=stdin, cwd=str(self.root / host)
        )


def inventory(root: Path) -> Inventory:
    inv = Inventory()
    names = [f"h{i}" for i in range(HOSTS)]
    inv.add_group("app", names)
    for name in names:
        (root / name).mkdir(parents=True, exist_ok=True)
    return inv


def workflow() -> MaintenanceWorkflow:
    wf = MaintenanceWorkflow("crashy")
    previous: list[str] = []
    for task in TASKS:
        wf.add_task(
            task,
            f"sleep 0.05; echo {task} >> log",
            depends_on=previous,
            check=f"grep -qx {task} log",
            idempotent=True,  # safe to repeat where its check says it did not happen
        )
        previous = [task]
    wf.set_progressive_execution({"strategy": "rolling", "serial": [1, 3]})
    wf.set_parallelization({"max_parallel_servers": 3})
    return wf


def work(root: Path, store: str, seed: int, kill_ms: int, resume: str | None = None) -> None:
    """Run (or resume) the crashy workflow; with ``kill_ms`` >= 0 this process is SIGKILLed mid-run."""
    engine = Engine(inventory(root), transport=HostDirs(root), store=store)
    if resume is not None:
        result = engine.resume(resume)
    else:
        run = engine.prepare(workflow(), run_id=f"crash-{seed}")  # the run is in the store from here on
        if kill_ms >= 0:
            threading.Thread(target=_kill_after, args=(kill_ms,), daemon=True).start()
        result = asyncio.run(engine.drive(run))
    (root / "status").write_text(result.status.value)


def _kill_after(ms: int) -> None:
    time.sleep(ms / 1000)
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    work(
        Path(sys.argv[1]),
        sys.argv[2],
        int(sys.argv[3]),
        int(sys.argv[4]),
        sys.argv[5] if len(sys.argv) > 5 else None,
    )
