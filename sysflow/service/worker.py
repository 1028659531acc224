"""A worker process of the service: runs one run and writes its events to stdout, one JSON a line.

``python -m sysflow.service.worker`` reads a :class:`WorkerJob` (JSON) on stdin. The run is the
engine's, as ``sysflow run`` or ``sysflow sim`` would run it: this process owns it in the run store
(owner, heartbeat, host leases), and it polls the store for the controls the service (or ``sysflow
approve``/``pause``/``cancel`` in another shell) writes, with :func:`sysflow.cli.run.poll_controls`.
On the simulator, ``pace`` real seconds pass at each jump of virtual time, so people can watch a
simulated run; 0 runs it as fast as the machine allows. A simulated run reads the store's controls
every ``SIM_CONTROL_POLL`` virtual seconds (a real one every ``CONTROL_POLL_INTERVAL``): each read
is a jump of virtual time, and at 2 s they were nine jumps in ten of a paced run.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from sysflow.engine.events import Event

if TYPE_CHECKING:
    from sysflow.engine.engine import Engine
    from sysflow.engine.result import RunResult
    from sysflow.model.inventory import Inventory
    from sysflow.model.workflow import MaintenanceWorkflow

__all__ = ["PIPE_BYTES", "SIM_CONTROL_POLL", "EventWriter", "WorkerJob", "main", "widen_pipe"]

SIM_CONTROL_POLL = 30.0  # virtual seconds between a simulated run's reads of the store's controls


class WorkerJob(BaseModel):
    """What a worker runs: stored inputs, the run id the service chose, where, and how."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: str
    workflow: Path
    inventory: Path
    store: Path
    simulate: bool = False
    seed: int = 1
    pace: float = 0.0
    start: datetime | None = None  # virtual start of a simulated run (default: now, to the minute)
    key: Path | None = None
    known_hosts: Path | None = None


class EventWriter:
    """Each event as one JSON line, flushed at once (the service relays it to the clients)."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def on_event(self, event: Event) -> None:
        self.out.write(json.dumps(event.to_dict(), default=str, sort_keys=True) + "\n")
        self.out.flush()


async def _drive(engine: Engine, workflow: MaintenanceWorkflow, job: WorkerJob) -> RunResult:
    from sysflow.cli.run import CONTROL_POLL_INTERVAL, poll_controls

    run = engine.prepare(workflow, run_id=job.run_id)
    interval = SIM_CONTROL_POLL if job.simulate else CONTROL_POLL_INTERVAL
    poller = asyncio.create_task(poll_controls(run, job.store, interval))
    try:
        return await engine.drive(run)
    finally:
        poller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await poller
        if engine.store is not None:
            engine.store.close()


async def _simulated(job: WorkerJob, wf: MaintenanceWorkflow, inv: Inventory, out: IO[str]) -> RunResult:
    from sysflow.engine.engine import Engine
    from sysflow.sim import SimFleet, SimTransport, current_virtual_clock

    clock = current_virtual_clock()
    transport = SimTransport(SimFleet(inv, None, seed=job.seed, start=clock.start), clock, record=False)
    engine = Engine(inv, transport=transport, clock=clock, observers=[EventWriter(out)], store=job.store)
    return await _drive(engine, wf, job)


async def _over_ssh(job: WorkerJob, wf: MaintenanceWorkflow, inv: Inventory, out: IO[str]) -> RunResult:
    from sysflow.cli.progress import ProgressMode
    from sysflow.cli.run import RunSetup, SSHOptions, ssh_engine

    ssh = SSHOptions(key=job.key, known_hosts=job.known_hosts, preflight=False)
    setup = RunSetup(mode=ProgressMode.JSON, out=sys.stderr, state=job.store)
    return await _drive(ssh_engine(inv, ssh, setup, [EventWriter(out)]), wf, job)


def run_job(job: WorkerJob, out: IO[str]) -> int:
    """Run the job to its end; the exit code ``sysflow run`` would give."""
    from sysflow.cli.inputs import load_inputs
    from sysflow.cli.run import exit_code

    wf, inv = load_inputs(job.workflow, job.inventory, None)
    if job.simulate:
        from sysflow.sim import run_virtual

        start = job.start or datetime.now(UTC).replace(second=0, microsecond=0)
        result = run_virtual(
            _simulated(job, wf, inv, out), start=start, autojump_threshold=job.pace, stall_limit=None
        )
    else:
        result = asyncio.run(_over_ssh(job, wf, inv, out))
    return exit_code(result)


PIPE_BYTES = 1 << 20  # the stdout pipe's size asked for: ~4,600 events the service may lag behind


def widen_pipe(out: IO[str], size: int = PIPE_BYTES) -> int:
    """Ask for a ``size``-byte pipe on ``out`` (Linux), so that a burst of events does not hold the
    engine while the service relays the burst before; the size the pipe has (0: not widened)."""
    try:
        return fcntl.fcntl(out.fileno(), fcntl.F_SETPIPE_SZ, size)
    except (OSError, AttributeError, ValueError):  # not a pipe, over the system's limit, not Linux
        return 0


def main() -> None:
    job = WorkerJob.model_validate_json(sys.stdin.read())
    widen_pipe(sys.stdout)
    raise SystemExit(run_job(job, sys.stdout))


if __name__ == "__main__":
    main()
