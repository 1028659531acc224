"""A live controller owns its run; one store per machine is the lease authority (issue 15, 2 and 3).

* Finding 2 over the loopback sshd: while a forked controller runs, ``Engine.resume`` and
  ``sysflow resume`` are refused with ``RunOwned`` naming it (host, pid, since); the controller's
  run completes untouched, every task once.
* Takeover rules on real SQLite and real processes: a dead owner (exited, a zombie, or a reused pid)
  is taken over at once, a silent one after its heartbeat's TTL; a live one elsewhere is refused.
* Fencing: a controller whose run was taken over writes no further operation and sends nothing.
* Finding 3: the CLI's default store is the machine's (``default_store_path``), not the directory's.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sysflow.actors.auth import SSHAuth
from sysflow.actors.local import LocalTransport
from sysflow.engine.engine import Engine
from sysflow.engine.states import OpState, RunStatus
from sysflow.engine.store import Owner, RunStore, default_store_path, process_start
from sysflow.errors import RunOwned, StoreError
from sysflow.model.inventory import Inventory
from sysflow.model.workflow import MaintenanceWorkflow
from tests.fixtures.sshd import SSHD, host_names

_FORK = multiprocessing.get_context("fork")
JOIN_TIMEOUT_S = 60.0
CLI_TIMEOUT_S = 60.0


def _join(proc: Any) -> int | None:
    proc.join(timeout=JOIN_TIMEOUT_S)
    if proc.is_alive():  # never leave a stray worker behind
        proc.kill()
        proc.join()
    return proc.exitcode


def _record(store: RunStore, run_id: str = "r1", owner: Owner | None = None) -> None:
    wf = MaintenanceWorkflow("wf")
    wf.add_task("t", "true")
    inv = Inventory()
    inv.add_group("app", ["h1"])
    engine = Engine(inv, store=store)
    run = engine.prepare(wf, run_id=run_id)  # recorded, owned by this process
    assert run.id == run_id
    store.disown(run_id)
    if owner is not None:
        store.claim_run(run_id, owner)


# -- finding 2 over sshd ----------------------------------------------------------------------------

HOSTS = host_names(3, prefix="o")
RUN_ID = "owned-live"


def _here(root: Path) -> str:
    return f"D={root}/$(echo $SSH_CONNECTION | cut -d' ' -f3,4 | tr ' ' _); mkdir -p $D"


def _workflow(root: Path) -> MaintenanceWorkflow:
    wf = MaintenanceWorkflow("owned")
    wf.add_task(
        "t1", f"{_here(root)}; sleep 2; echo t1 >> $D/marker", check=f"{_here(root)}; grep -qx t1 $D/marker"
    )
    wf.add_task("t2", f"{_here(root)}; echo t2 >> $D/marker", depends_on=["t1"])
    wf.set_parallelization({"max_parallel_servers": len(HOSTS)})
    return wf


def _engine(sshd: SSHD, root: Path, store: str) -> Engine:
    inventory = Inventory()
    inventory.add_group("app", HOSTS)
    return Engine(
        inventory,
        SSHAuth.from_keyfile(sshd.client_key),
        ssh_config=sshd.write_client_config(root / f"ssh_config-{os.getpid()}", HOSTS),
        known_hosts=sshd.known_hosts,
        store=store,
    )


def _controller(sshd: SSHD, root: Path, store: str) -> None:
    result = asyncio.run(_engine(sshd, root, store).run(_workflow(root / "remote"), run_id=RUN_ID))
    (root / "status").write_text(result.status.value)


def _wait_running(store: str) -> None:
    for _ in range(200):
        if Path(store).exists():
            with RunStore(store) as db:
                if any(r.id == RUN_ID for r in db.runs()) and any(
                    r.state is OpState.RUNNING for r in db.ops(RUN_ID).values()
                ):
                    return
        time.sleep(0.05)
    raise AssertionError("the controller never started an operation")


@pytest.mark.ssh
def test_resuming_a_live_run_is_refused_naming_its_owner(sshd: SSHD, tmp_path: Path) -> None:
    store = str(tmp_path / "state.db")
    controller = _FORK.Process(target=_controller, args=(sshd, tmp_path, store))
    controller.start()
    try:
        _wait_running(store)
        me = socket.gethostname()
        # the library: refused, and nothing of the run is touched
        with pytest.raises(RunOwned) as refused:
            _engine(sshd, tmp_path, store).resume(RUN_ID)
        assert refused.value.pid == controller.pid and refused.value.host == me
        assert f"host {me}, pid {controller.pid}, since {refused.value.since}" in str(refused.value)
        # the CLI, as another process: one line naming the owner, exit 4 (conflict)
        config = sshd.write_client_config(tmp_path / "cli_ssh_config", HOSTS)
        cli = subprocess.run(
            [sys.executable, "-m", "sysflow.cli", "resume", RUN_ID, "--store", store, "--key",
             str(sshd.client_key), "--ssh-config", str(config), "--known-hosts", str(sshd.known_hosts)],
            capture_output=True, text=True, timeout=CLI_TIMEOUT_S,
        )  # fmt: skip
        assert cli.returncode == 4, cli.stderr
        lines = cli.stderr.strip().splitlines()
        assert len(lines) == 1, cli.stderr
        assert (
            f"run {RUN_ID} is owned by a live controller: host {me}, pid {controller.pid}, since" in lines[0]
        )
    finally:
        assert _join(controller) == 0
    assert (tmp_path / "status").read_text() == "completed"
    for host in HOSTS:
        marker = tmp_path / "remote" / f"{sshd.address_of(host)}_{sshd.port}" / "marker"
        assert marker.read_text().split() == ["t1", "t2"], host  # each task once: nobody took over
    with RunStore(store) as db:
        assert db.run(RUN_ID).status is RunStatus.COMPLETED
        assert db.run(RUN_ID).owner is None  # given up at the end
        assert db.leases() == {}


# -- takeover rules -----------------------------------------------------------------------------------


def _claim_and_exit(path: str, run_id: str, code: int) -> None:
    with RunStore(path) as db:
        db.claim_run(run_id, Owner.this_process())
        db._claims.clear()  # die as a crash would: without giving the run up
    os._exit(code)


def test_a_dead_owner_is_taken_over_at_once(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    with RunStore(path) as db:
        _record(db)
    child = _FORK.Process(target=_claim_and_exit, args=(path, "r1", 0))
    child.start()
    assert _join(child) == 0  # reaped: the pid is gone
    with RunStore(path) as db:
        before = db.run("r1").owner
        assert before is not None and before.pid == child.pid
        previous = db.claim_run("r1", Owner.this_process())
        assert previous is not None and previous.pid == child.pid
        owner = db.run("r1").owner
        assert owner is not None and owner.pid == os.getpid()


def test_a_zombie_owner_is_dead(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    with RunStore(path) as db:
        _record(db)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        _claim_and_exit(path, "r1", 0)
    try:
        for _ in range(200):  # until it exited (not reaped: a zombie)
            if process_start(pid) is None:
                break
            time.sleep(0.02)
        assert Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
        with RunStore(path) as db:
            assert db.claim_run("r1", Owner.this_process()) is not None
    finally:
        os.waitpid(pid, 0)


def test_a_reused_pid_is_not_the_owner(tmp_path: Path) -> None:
    with RunStore(tmp_path / "s.db") as db:
        me = Owner.this_process()
        impostor = Owner(me.host, me.pid, me.start + "0", "other-claim", me.since)  # same pid, other start
        _record(db, owner=impostor)
        assert db.claim_run("r1", me) == impostor


def test_a_live_owner_elsewhere_is_refused_until_its_heartbeat_stops(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    elsewhere = Owner("controller-2.example", 4242, "boot:1", "their-claim", "2026-12-04T12:00:00+00:00")
    with RunStore(path) as db:
        _record(db, owner=elsewhere)  # its heartbeat is fresh: it lives, as far as we can tell
        with pytest.raises(RunOwned, match=r"host controller-2\.example, pid 4242, since 2026-12-04T12:00"):
            db.claim_run("r1", Owner.this_process(), ttl=30.0)
        db._db.execute("UPDATE runs SET heartbeat=heartbeat-31 WHERE id='r1'")  # it went silent
        assert db.claim_run("r1", Owner.this_process(), ttl=30.0) == elsewhere


def test_a_run_id_already_in_the_store_is_not_started_again(tmp_path: Path) -> None:
    with RunStore(tmp_path / "s.db") as db:
        _record(db, owner=Owner.this_process())
        with pytest.raises(RunOwned):
            _record(db)
        db.disown("r1")
        with pytest.raises(StoreError, match="resume it instead"):
            _record(db)


def test_a_resume_that_cannot_start_leaves_the_run_free(tmp_path: Path) -> None:
    with RunStore(tmp_path / "s.db") as db:
        _record(db)
        db._db.execute("UPDATE runs SET workflow_json='{\"tasks\": 3}' WHERE id='r1'")  # unreadable
        with pytest.raises(ValueError):
            Engine(Inventory(), transport=LocalTransport(), store=db).resume("r1")
        assert db.run("r1").owner is None  # not left owned by this (live) process
        assert db.claim_run("r1", Owner.this_process()) is None


# -- fencing ---------------------------------------------------------------------------------------------


def test_a_controller_that_lost_its_run_writes_and_sends_nothing_more(tmp_path: Path) -> None:
    """A real engine over local commands; another controller takes the run over while its first task
    runs (its heartbeat made stale); the second task is never recorded nor sent, the leases stay."""
    path = tmp_path / "s.db"
    marker = tmp_path / "marker"
    wf = MaintenanceWorkflow("fenced")
    wf.add_task("t1", f"sleep 1; echo t1 >> {marker}")
    wf.add_task("t2", f"echo t2 >> {marker}", depends_on=["t1"])
    inv = Inventory()
    inv.add_group("app", ["h1"])

    async def scenario() -> None:
        engine = Engine(inv, transport=LocalTransport(), store=path, lease_ttl=30.0)
        run = engine.prepare(wf, run_id="fenced")
        task = asyncio.create_task(engine.drive(run))
        await asyncio.sleep(0.5)  # t1 runs
        with RunStore(path) as other:
            other._db.execute("UPDATE runs SET heartbeat=heartbeat-60 WHERE id='fenced'")
            thief = Owner("controller-2.example", 4242, "", "their-claim", "2026-12-04T12:00:00+00:00")
            assert other.claim_run("fenced", thief, ttl=30.0) is not None
            other.take_leases("fenced", ["h1"], now=time.time(), ttl=30.0)
            other._claims.clear()  # keep it owned by the thief after this store closes
        with pytest.raises(RunOwned, match=r"was taken over by host controller-2\.example, pid 4242"):
            await task

    asyncio.run(scenario())
    assert marker.read_text().split() == ["t1"]  # t2 was never sent
    with RunStore(path) as db:
        ops = {r.task: r for r in db.ops("fenced").values()}
        assert ops["t2"].state is OpState.PENDING  # nor recorded as running
        owner = db.run("fenced").owner
        assert owner is not None and owner.host == "controller-2.example"
        assert set(db.leases()) == {"h1"}  # the loser did not return the new owner's leases


# -- finding 3: one store per machine --------------------------------------------------------------


def test_the_default_store_is_the_machines(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SYSFLOW_STORE", str(tmp_path / "shared" / "state.db"))
    assert default_store_path() == tmp_path / "shared" / "state.db"
    monkeypatch.delenv("SYSFLOW_STORE")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert default_store_path() == Path("/var/lib/sysflow/state.db")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_store_path() == tmp_path / "xdg" / "sysflow" / "state.db"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_store_path() == tmp_path / "home" / ".local" / "state" / "sysflow" / "state.db"


@pytest.mark.ssh
def test_cli_runs_from_two_directories_share_one_store(sshd: SSHD, tmp_path: Path) -> None:
    """``sysflow run`` in one directory and ``sysflow status`` / ``resume`` in another, neither given
    ``--store``: both use the machine's store, so they see (and lease) the same runs."""
    shared = tmp_path / "machine" / "state.db"
    env = {**os.environ, "SYSFLOW_STORE": str(shared)}
    hosts = host_names(2, prefix="d")
    config = sshd.write_client_config(tmp_path / "ssh_config", hosts)
    (tmp_path / "hosts.ini").write_text("[app]\n" + "\n".join(hosts) + "\n")
    (tmp_path / "wf.yaml").write_text("name: shared\ntasks:\n  - id: t\n    run: 'true'\n")
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    ssh = ["--key", str(sshd.client_key), "--ssh-config", str(config), "--known-hosts", str(sshd.known_hosts)]

    def cli(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "sysflow.cli", *argv],
            cwd=cwd, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_S,
        )  # fmt: skip

    ran = cli(one, "run", str(tmp_path / "wf.yaml"), "-i", str(tmp_path / "hosts.ini"), *ssh)
    assert ran.returncode == 0, ran.stderr
    assert shared.exists() and not (one / ".sysflow").exists()
    status = cli(two, "status")
    assert status.returncode == 0, status.stderr
    assert "shared-" in status.stdout and "completed" in status.stdout
    run_id = status.stdout.split()[0]
    again = cli(two, "resume", run_id, *ssh)
    assert again.returncode == 4 and "already completed" in again.stderr


# -- the scheduler -----------------------------------------------------------------------------------


async def test_the_scheduler_never_starts_a_run_a_live_controller_owns(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from sysflow.schedule.model import ClaimState, ScheduleSpec
    from sysflow.schedule.recurrence import Recurrence
    from sysflow.schedule.scheduler import Scheduler, run_id_for
    from sysflow.schedule.schedules import Schedules
    from sysflow.sim.loop import current_virtual_clock
    from tests.schedule.conftest import sim_factory, small_inventory, small_workflow

    jan_11 = datetime(2026, 1, 11, tzinfo=UTC)  # Sunday 01:00 Amsterdam: the web window opens
    clock = current_virtual_clock()
    with RunStore(tmp_path / "s.db") as store:
        schedules = Schedules(store)
        spec = ScheduleSpec(name="weekly", recurrence=Recurrence.parse("every window of web_servers"))
        schedules.add(spec, small_workflow(), small_inventory(), now=clock.now())
        rid = run_id_for("weekly", jan_11)
        elsewhere = Owner("controller-2.example", 4242, "", "their-claim", "2026-01-11T00:00:00+00:00")
        _record(store, rid, owner=elsewhere)  # that occurrence's run is a live controller's already
        store._claims.clear()  # it is theirs, not this store object's
        scheduler = Scheduler(
            store, clock=clock, engine_factory=sim_factory(store, clock, clock.now()), poll=86400.0
        )
        await scheduler.run(until=jan_11 + timedelta(hours=1))
        (claim,) = schedules.claims("weekly")
        assert claim.state is ClaimState.DEFERRED and claim.run_id == rid
        (deferred,) = [h.detail for h in schedules.history("weekly") if h.event == "deferred"]
        assert "is owned by a live controller: host controller-2.example, pid 4242" in deferred
        assert store.ops(rid) and {r.state for r in store.ops(rid).values()} == {OpState.PENDING}
