"""Two scheduler processes against one store never start the same run twice (real time, bounded)."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sysflow.engine.store import RunStore
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.schedule.model import ClaimState, ScheduleSpec
from sysflow.schedule.recurrence import Recurrence
from sysflow.schedule.scheduler import run_id_for
from sysflow.schedule.schedules import Schedules
from tests.schedule.conftest import small_inventory

OCCURRENCES = 4
SPACING = 3.0  # seconds between window openings
ENDED = {ClaimState.FINISHED, ClaimState.DEFERRED}  # on a loaded machine a run may outlive its window


def short_windows(first: datetime) -> MaintenanceWorkflow:
    wf = MaintenanceWorkflow("quick")
    wf.add_task("noop", "true", targets=["web_servers"])
    specs = [f"{(first + timedelta(seconds=SPACING * i)).isoformat()}/PT2.5S" for i in range(OCCURRENCES)]
    wf.set_maintenance_window({"web_servers": specs})
    return wf


def start_worker(db: Path, owner: str, stop: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.schedule.worker", str(db), owner, str(stop)],
        stdout=subprocess.PIPE,
        text=True,
    )


def test_two_schedulers_never_start_the_same_run_twice(tmp_path: Path) -> None:
    db, stop = tmp_path / "state.db", tmp_path / "stop"
    RunStore(db).close()
    workers = [start_worker(db, owner, stop) for owner in ("one", "two")]
    try:
        for w in workers:
            assert w.stdout is not None and w.stdout.readline().strip() == "ready"
        now = datetime.now(UTC).replace(microsecond=0)
        first = now + timedelta(seconds=2)
        with RunStore(db) as store:
            spec = ScheduleSpec(name="quick", recurrence=Recurrence.parse("every window of web_servers"))
            Schedules(store).add(spec, short_windows(first), small_inventory(), now=now)
        deadline = time.monotonic() + 2 + SPACING * OCCURRENCES + 30
        expected = [first + timedelta(seconds=SPACING * i) for i in range(OCCURRENCES)]
        while time.monotonic() < deadline:
            with RunStore(db) as store:
                done = [c for c in Schedules(store).claims("quick") if c.state in ENDED]
            if len(done) == OCCURRENCES:
                break
            time.sleep(0.5)
    finally:
        stop.touch()
        for w in workers:
            w.wait(timeout=60)
    with RunStore(db) as store:
        schedules = Schedules(store)
        claims = schedules.claims("quick")
        started = [h for h in schedules.history("quick") if h.event == "started"]
        runs = [r.id for r in store.runs()]
    assert [c.occurrence for c in claims] == expected
    assert all(c.state in ENDED for c in claims)
    assert sorted(h.run_id or "" for h in started) == sorted(run_id_for("quick", o) for o in expected)
    assert sorted(runs) == sorted(run_id_for("quick", o) for o in expected)  # each run created once
    assert any(c.state is ClaimState.FINISHED for c in claims)
    assert {c.owner for c in claims} <= {"one", "two"}
    assert all(w.returncode == 0 for w in workers)
