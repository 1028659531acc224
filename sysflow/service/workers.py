"""The worker processes the service owns: start one per run, relay its events, reap it.

A worker's stdout is read as fast as it writes (one line, one event, straight into the hub, which
never waits on clients), so the engine in the worker is never held back by who watches. Its stderr
is kept (the last lines) for the event that reports its exit. Stopping the service stops its
workers; their runs are then interrupted, and ``sysflow resume`` continues them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sysflow.service.hub import EventHub
from sysflow.service.worker import WorkerJob

__all__ = ["Worker", "Workers"]

log = logging.getLogger(__name__)

_LINE_LIMIT = 16 * 1024 * 1024  # one event's JSON may carry a long command
_STOP_GRACE = 5.0  # seconds a worker has to end after SIGTERM before it is killed


@dataclass(eq=False)
class Worker:
    """One worker process and what it runs."""

    job: WorkerJob
    process: asyncio.subprocess.Process
    stderr: deque[str] = field(default_factory=lambda: deque(maxlen=20))
    started: asyncio.Event = field(default_factory=asyncio.Event)  # its first event arrived
    done: asyncio.Event = field(default_factory=asyncio.Event)
    code: int | None = None


class Workers:
    """Starts workers, relays their events into ``hub``, and stops them all at the end."""

    def __init__(self, hub: EventHub) -> None:
        self.hub = hub
        self.running: dict[str, Worker] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, job: WorkerJob) -> Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sysflow.service.worker",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            limit=_LINE_LIMIT,
        )  # fmt: skip
        assert process.stdin is not None
        process.stdin.write(job.model_dump_json().encode())
        await process.stdin.drain()
        process.stdin.close()
        worker = Worker(job, process)
        self.running[job.run_id] = worker
        task = asyncio.create_task(self._relay(worker))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return worker

    async def _relay(self, worker: Worker) -> None:
        proc = worker.process
        assert proc.stdout is not None
        assert proc.stderr is not None
        errors = asyncio.create_task(self._keep_stderr(worker))
        async for line in proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                log.warning("worker of %s wrote a line that is not an event", worker.job.run_id)
                continue
            self.hub.publish(event)
            worker.started.set()
        await errors
        worker.code = await proc.wait()
        self.running.pop(worker.job.run_id, None)
        self.hub.publish(
            {
                "kind": "worker_exited",
                "run_id": worker.job.run_id,
                "at": datetime.now(UTC).isoformat(),
                "message": "\n".join(worker.stderr) if worker.code not in (0, 1) else "",
                "data": {"exit_code": worker.code},
            }
        )
        worker.done.set()

    async def wait_started(self, worker: Worker, timeout: float = 60.0) -> None:
        """Until the run is recorded and announced (its first event) or its worker ended."""
        waits = [asyncio.create_task(worker.started.wait()), asyncio.create_task(worker.done.wait())]
        _, pending = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()

    async def _keep_stderr(self, worker: Worker) -> None:
        assert worker.process.stderr is not None
        async for line in worker.process.stderr:
            worker.stderr.append(line.decode(errors="replace").rstrip())

    async def stop(self) -> None:
        """Stop every worker (SIGTERM, then SIGKILL after a grace period) and wait for the relays."""
        for worker in list(self.running.values()):
            with contextlib.suppress(ProcessLookupError):
                worker.process.terminate()
        for worker in list(self.running.values()):
            try:
                await asyncio.wait_for(worker.done.wait(), _STOP_GRACE)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    worker.process.kill()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
