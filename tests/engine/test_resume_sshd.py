"""Crash and resume once on real OpenSSH: a run over 10 loopback hosts is SIGKILLed mid-run, resumed.

The run is a forked process (like ``test_resume.py``) driving the engine over the session's test
sshd, with a run store on disk. An observer in that process sends SIGKILL to it when the
:data:`KILL_AT`-th operation finishes, while other hosts of the wave have commands in flight.
The resume (a second forked process) must neither repeat nor lose work: every task appends its
name to a per-host file on the "remote" side (the host's directory is derived from
``$SSH_CONNECTION``), and each task's check greps that file, so an operation interrupted by the
crash is settled (its command, still running on the host, is waited for) and re-checked rather
than blindly re-run. The files prove each task ran exactly once per
host, in order; the store says the run completed and holds no lease.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import time
import traceback
from pathlib import Path

import pytest

from sysflow.actors.auth import SSHAuth
from sysflow.engine.engine import Engine
from sysflow.engine.events import Event, EventKind
from sysflow.engine.states import OpState, RunStatus
from sysflow.engine.store import RunStore
from sysflow.model.inventory import Inventory
from sysflow.model.workflow import MaintenanceWorkflow
from tests.fixtures.sshd import SSHD, host_names

pytestmark = [pytest.mark.ssh]

_FORK = multiprocessing.get_context("fork")
HOSTS = host_names(10, prefix="rs")
TASKS = ("prepare", "upgrade", "restart")
KILL_AT = 11  # finished operations before the crash (of 30)
RUN_ID = "crash-sshd"
JOIN_TIMEOUT_S = 120.0
QUIET_POLLS = 40  # at most this many 0.25 s looks for stray remote commands to finish


def _here(root: Path) -> str:
    """Shell: the directory of the host this command runs on (server address and port)."""
    return f"D={root}/$(echo $SSH_CONNECTION | cut -d' ' -f3,4 | tr ' ' _)"


def workflow(root: Path) -> MaintenanceWorkflow:
    wf = MaintenanceWorkflow("crashy-sshd")
    previous: list[str] = []
    for task in TASKS:
        wf.add_task(
            task,
            f"{_here(root)}; mkdir -p $D && sleep 0.05 && echo {task} >> $D/log",
            depends_on=previous,
            check=f"{_here(root)}; grep -qx {task} $D/log",
            # repeatable where its check says it did not happen: an operation killed before its
            # command reached the host runs again; one still running is settled first, not repeated
            idempotent=True,
        )
        previous = [task]
    wf.set_progressive_execution({"strategy": "rolling", "serial": [2, 4]})
    wf.set_parallelization({"max_parallel_servers": 4})
    return wf


class CrashAfter:
    """Sends SIGKILL to this process when the ``count``-th operation finishes: a crash mid-run."""

    def __init__(self, count: int) -> None:
        self.left = count

    def on_event(self, event: Event) -> None:
        if event.kind is EventKind.OP_FINISHED:
            self.left -= 1
            if self.left == 0:
                os.kill(os.getpid(), signal.SIGKILL)


def work(sshd: SSHD, root: Path, store: str, kill_at: int | None) -> None:
    """Run the workflow (killed after ``kill_at`` finished operations), or resume it when None."""
    inventory = Inventory()
    inventory.add_group("app", HOSTS)
    config = sshd.write_client_config(root / "ssh_config", HOSTS)
    engine = Engine(
        inventory,
        SSHAuth.from_keyfile(sshd.client_key),
        ssh_config=config,
        known_hosts=sshd.known_hosts,
        store=store,
        observers=[CrashAfter(kill_at)] if kill_at is not None else [],
    )
    if kill_at is None:
        result = engine.resume(RUN_ID)
    else:
        result = asyncio.run(engine.run(workflow(root / "remote"), run_id=RUN_ID))
    (root / "status").write_text(result.status.value)


def _work_or_note(sshd: SSHD, root: Path, store: str, kill_at: int | None) -> None:
    """``work``, leaving its traceback in ``root/error`` if it raises (the child's stderr is lost)."""
    try:
        work(sshd, root, store, kill_at)
    except BaseException:
        (root / "error").write_text(traceback.format_exc())
        raise


def _in_process(*args: object) -> int | None:
    proc = _FORK.Process(target=_work_or_note, args=args)
    proc.start()
    proc.join(timeout=JOIN_TIMEOUT_S)
    if proc.is_alive():  # never leave a stray worker behind
        proc.kill()
        proc.join()
    return proc.exitcode


def _error(root: Path) -> str:
    return (root / "error").read_text() if (root / "error").exists() else "no traceback left"


def _logs(root: Path, sshd: SSHD) -> dict[str, list[str]]:
    out = {}
    for host in HOSTS:
        log = root / "remote" / f"{sshd.address_of(host)}_{sshd.port}" / "log"
        out[host] = log.read_text().split() if log.exists() else []
    return out


def _quiet(root: Path, sshd: SSHD) -> dict[str, list[str]]:
    """The remote logs once commands orphaned by the crash have finished (two equal looks)."""
    seen = _logs(root, sshd)
    for _ in range(QUIET_POLLS):
        time.sleep(0.25)
        now = _logs(root, sshd)
        if now == seen:
            return now
        seen = now
    raise AssertionError("remote commands kept writing after the crash")


def test_a_run_over_sshd_killed_mid_run_resumes_and_runs_every_task_exactly_once(
    sshd: SSHD, tmp_path: Path
) -> None:
    store = str(tmp_path / "state.db")
    assert _in_process(sshd, tmp_path, store, KILL_AT) == -signal.SIGKILL
    assert not (tmp_path / "status").exists()
    at_crash = _quiet(tmp_path, sshd)
    done = sum(len(lines) for lines in at_crash.values())
    assert KILL_AT <= done < len(HOSTS) * len(TASKS)  # killed mid-run, after real remote work
    with RunStore(store) as db:
        assert db.run(RUN_ID).status is RunStatus.RUNNING  # what a crash leaves behind
        assert db.leases() != {}  # the crashed run's leases are still there

    assert _in_process(sshd, tmp_path, store, None) == 0, _error(tmp_path)

    assert (tmp_path / "status").read_text() == "completed"
    for host, lines in _logs(tmp_path, sshd).items():
        assert lines == list(TASKS), f"{host}: {lines}"  # every task once, in order, on its host
    with RunStore(store) as db:
        assert db.run(RUN_ID).status is RunStatus.COMPLETED
        ops = db.ops(RUN_ID)
        assert len(ops) == len(HOSTS) * len(TASKS)
        assert {r.state for r in ops.values()} == {OpState.SUCCEEDED}
        assert db.leases() == {}  # the resumed run re-took the leases and returned them
