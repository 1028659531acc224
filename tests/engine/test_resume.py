"""Crash and resume: a run killed at random points neither repeats nor forgets work.

Each run is a real forked process killed with SIGKILL at a random instant (forking keeps the
imports of the test process, so 20 crashes cost seconds, not minutes).
"""

from __future__ import annotations

import multiprocessing
import random
from pathlib import Path

import pytest

from sysflow.engine.states import OpState, RunStatus
from sysflow.engine.store import RunStore
from tests.engine.crash_worker import HOSTS, TASKS, work

_FORK = multiprocessing.get_context("fork")


def _in_process(*args: object) -> int | None:
    proc = _FORK.Process(target=work, args=args)
    proc.start()
    proc.join(timeout=120)
    if proc.is_alive():  # never leave a stray worker behind
        proc.kill()
        proc.join()
    return proc.exitcode


@pytest.mark.parametrize("seed", range(20))
def test_a_run_killed_at_a_random_point_resumes_without_repeating_or_losing_work(
    tmp_path: Path, seed: int
) -> None:
    store = str(tmp_path / "state.db")
    kill_ms = random.Random(seed).randrange(0, 500)  # the run takes longer than 600 ms
    assert _in_process(tmp_path, store, seed, kill_ms) == -9  # killed mid-run
    assert not (tmp_path / "status").exists()
    run_id = f"crash-{seed}"
    with RunStore(store) as db:
        assert db.run(run_id).status is RunStatus.RUNNING  # what a crash leaves behind
    assert _in_process(tmp_path, store, seed, -1, run_id) == 0
    assert (tmp_path / "status").read_text() == "completed"
    for i in range(HOSTS):
        log = (tmp_path / f"h{i}" / "log").read_text().split()
        assert log == list(TASKS), f"h{i}: {log}"  # every task ran exactly once, in order
    with RunStore(store) as db:
        assert db.run(run_id).status is RunStatus.COMPLETED
        assert {r.state for r in db.ops(run_id).values()} == {OpState.SUCCEEDED}
        assert db.leases() == {}  # the resumed run returned its leases
