"""BackendRunner: the engine over HostPool actors gives the same run whichever backend holds them.

Both paths run the real engine on the simulator on virtual time; the only difference is whether an
operation goes straight to the transport or through ``LocalBackend`` → ``HostPool`` (a
``SimTransport`` built per shard by the shard's factory, over the same simulated fleet).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sysflow.actors.backends import LocalBackend, ShardSpec
from sysflow.actors.local import LocalTransport
from sysflow.actors.ops import ErrorKind, OpRequest, OpResult
from sysflow.engine.dispatch import BackendRunner, RunnerState, record_of
from sysflow.engine.engine import Engine
from sysflow.engine.events import RecordingObserver
from sysflow.engine.result import RunResult
from sysflow.engine.states import OpState, RunStatus
from sysflow.errors import ExecutionError
from sysflow.model.inventory import Inventory
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.planner.graph import Operation
from sysflow.sim.fleet import SimFleet
from sysflow.sim.loop import current_virtual_clock, run_virtual
from sysflow.sim.profile import HostFault, SimProfile
from sysflow.sim.transport import SimTransport
from tests.engine.conftest import SATURDAY_NOON, Sim, brief_workflow, simulate


async def _through_backend(
    workflow: MaintenanceWorkflow, inventory: Inventory, profile: SimProfile | None = None, seed: int = 1
) -> tuple[RunResult, RecordingObserver, BackendRunner]:
    """``simulate`` with the operations dispatched through LocalBackend's HostPools."""
    clock = current_virtual_clock()
    loop = asyncio.get_running_loop()
    if clock.now() < SATURDAY_NOON:
        loop.advance((SATURDAY_NOON - clock.now()).total_seconds())  # type: ignore[attr-defined]
    fleet = SimFleet(inventory, profile, seed=seed, start=clock.start)
    factory = functools.partial(SimTransport, fleet, clock)
    events = RecordingObserver()
    runner = BackendRunner.for_inventory(inventory, factory, clock=clock)
    async with runner:
        engine = Engine(inventory, transport=factory(), runner=runner, clock=clock, observers=[events])
        result = await engine.run(workflow)
    return result, events, runner


def _trace(result: RunResult) -> list[tuple[Any, ...]]:
    return sorted(
        (r.host, r.task, r.state.value, r.start, r.end, r.exit_status, r.error, r.stdout)
        for r in result.ops.values()
    )


def _both(
    workflow: MaintenanceWorkflow, inventory: Inventory, profile: SimProfile | None = None
) -> tuple[Sim, RunResult, RecordingObserver]:
    """The same run twice, each on a fresh virtual loop from the same instant."""
    direct = run_virtual(simulate(workflow, inventory, profile))
    via, events, runner = run_virtual(_through_backend(workflow, inventory, profile))
    assert runner.state is RunnerState.STOPPED
    assert runner.in_flight == 0
    return direct, via, events


def _event_trace(events: RecordingObserver) -> list[tuple[Any, ...]]:
    return [(e.kind, e.at, e.host, e.task, e.wave, e.message) for e in events.events]


def test_the_brief_through_host_pools_gives_the_same_trace(inventory: Inventory) -> None:
    wf = brief_workflow()
    direct, via, events = _both(wf, inventory)
    assert via.status is RunStatus.COMPLETED
    assert sorted(via.successful_servers) == sorted(inventory.hosts)
    assert _trace(via) == _trace(direct.result)
    assert _event_trace(events) == _event_trace(direct.events)
    assert via.verification_results.outcome.value == "pass"


def test_timeouts_and_rollback_read_the_same_through_host_pools(inventory: Inventory) -> None:
    wf = brief_workflow()
    wf.set_progressive_execution({"strategy": "canary", "canary_size": 1, "auto_rollback": True})
    profile = SimProfile(hosts=[HostFault(hosts="web01.example.com", hang=r"apt-get -y upgrade")])
    direct, via, _ = _both(wf, inventory, profile)
    assert via.status is RunStatus.ROLLED_BACK
    assert _trace(via) == _trace(direct.result)
    error = via.ops["upgrade_packages@web01.example.com"].error
    assert error is not None and error.startswith("CommandTimeout: ")


def test_unreachable_hosts_read_the_same_through_host_pools(inventory: Inventory) -> None:
    wf = brief_workflow()
    wf.set_progressive_execution({"groups": [["db_servers"], ["cache_servers"], ["web_servers"]]})
    profile = SimProfile(hosts=[HostFault(hosts="db02.example.com", unreachable="refused")])
    direct, via, _ = _both(wf, inventory, profile)
    assert _trace(via) == _trace(direct.result)
    error = via.ops["backup@db02.example.com"].error
    assert error is not None and error.startswith("HostUnreachable: "), error
    assert "db02.example.com" in via.failed_servers


# -- records ------------------------------------------------------------------------------------

T0 = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)


def _op(host: str = "h1", *, local: bool = False, task: str = "t") -> Operation:
    return Operation(
        id=f"{task}@{host}",
        host=host,
        task=task,
        wave=0,
        index=0,
        group="all",
        groups=("all",),
        datacenter=None,
        segment=None,
        command="echo hi",
        expected_duration=1.0,
        local=local,
    )


def _result(kind: ErrorKind, **kw: Any) -> OpResult:
    fields: dict[str, Any] = {
        "op_id": "t@h1",
        "host": "h1",
        "task": "t",
        "shard": "s",
        "start": T0,
        "end": T0,
        "duration": 0.0,
        "exit_status": None,
        "error_kind": kind,
    }
    return OpResult(**(fields | kw))


@pytest.mark.parametrize(
    ("result", "state", "error"),
    [
        (_result(ErrorKind.NONE, exit_status=0, stdout="ok"), OpState.SUCCEEDED, None),
        (_result(ErrorKind.COMMAND_FAILED, exit_status=3), OpState.FAILED, "exit status 3"),
        (_result(ErrorKind.COMMAND_FAILED, signal="KILL"), OpState.FAILED, "signal KILL"),
        (
            _result(ErrorKind.CONNECT_TIMEOUT, error_message="no answer"),
            OpState.FAILED,
            "ConnectTimeout: no answer",
        ),
        (
            _result(ErrorKind.INTERNAL, error_message="worker exited"),
            OpState.FAILED,
            "ExecutionError: worker exited",
        ),
        (
            _result(ErrorKind.CANCELLED, error_message="operation cancelled"),
            OpState.FAILED,
            "Cancelled: operation cancelled",
        ),
    ],
)
def test_results_become_records_with_transport_runner_error_text(
    result: OpResult, state: OpState, error: str | None
) -> None:
    record = record_of(_op(), "echo hi", result)
    assert (record.state, record.error, record.start, record.end) == (state, error, T0, T0)
    assert record.command == "echo hi"


# -- lifecycle and failures as values -----------------------------------------------------------


def _sim_runner(backend: LocalBackend | None = None, **kw: Any) -> BackendRunner:
    inv = Inventory()
    inv.add_group("all_hosts", ["h1", "h2"])
    clock = current_virtual_clock()
    factory = functools.partial(SimTransport, SimFleet(inv, start=clock.start), clock)
    shards = [ShardSpec("s", ("h1", "h2"), factory)]
    return BackendRunner(backend or LocalBackend(clock=clock), shards, clock=clock, **kw)


async def test_a_runner_starts_on_first_use_and_refuses_work_once_stopped() -> None:
    runner = _sim_runner(env_of=lambda op: {"SYSFLOW_HOST": op.host})
    starts: list[int] = []
    record = await runner.run_op(_op("h1", task="apt_update"), "apt-get update", starts.append)
    assert runner.state is RunnerState.RUNNING
    assert record.state is OpState.SUCCEEDED, record
    assert starts == [1]
    await runner.start()  # idempotent while running
    await runner.stop()
    await runner.stop()
    late = await runner.run_op(_op("h2"), "apt-get update", starts.append)
    assert late.state is OpState.FAILED
    assert late.error == "ExecutionError: backend runner is stopped"


async def test_local_tasks_run_on_the_controller(tmp_path: Any) -> None:
    marker = tmp_path / "ran-locally"
    async with _sim_runner(local=LocalTransport(clock=current_virtual_clock())) as runner:
        record = await runner.run_op(_op("@wave1", local=True), f"touch {marker}", lambda _a: None)
    assert record.state is OpState.SUCCEEDED
    assert marker.exists()


async def test_an_operation_already_in_flight_is_refused() -> None:
    async with _sim_runner() as runner:
        first = asyncio.ensure_future(runner.run_op(_op("h1"), "sleep 30", lambda _a: None))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        second = await runner.run_op(_op("h1"), "sleep 30", lambda _a: None)
        assert second.error == "ExecutionError: t@h1 is already running"
        assert (await first).state is OpState.SUCCEEDED


class _BrokenBackend(LocalBackend):
    """A backend whose channel breaks after it has taken the work (a lost cluster)."""

    async def run(self, request: OpRequest) -> OpResult:
        await asyncio.sleep(0.01)
        raise ExecutionError("cluster lost")


class _UnstartableBackend(LocalBackend):
    async def start(self, shards: Any) -> None:
        raise ExecutionError("no nodes offer segment:ams")


async def test_a_broken_backend_fails_waiting_and_later_operations_as_values() -> None:
    runner = _sim_runner(_BrokenBackend(clock=current_virtual_clock()))
    async with runner:
        waiting = await runner.run_op(_op("h1"), "sleep 30", lambda _a: None)
        later = await runner.run_op(_op("h2"), "sleep 30", lambda _a: None)
    for record in (waiting, later):
        assert record.state is OpState.FAILED
        assert record.error == "ExecutionError: cluster lost"


async def test_a_backend_that_cannot_start_fails_the_operation_as_a_value() -> None:
    runner = _sim_runner(_UnstartableBackend(clock=current_virtual_clock()))
    record = await runner.run_op(_op("h1"), "true", lambda _a: None)
    assert record.error == "ExecutionError: no nodes offer segment:ams"
    assert runner.state is RunnerState.NEW
    await runner.stop()
    assert runner.state.value == "stopped"


# -- Ray smoke test -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """A one-node local Ray cluster on 127.0.0.1 with a ``segment:ams`` resource; yields its address."""
    import ray
    from ray import cluster_utils
    from ray._private import ray_constants

    mp = pytest.MonkeyPatch()
    mp.setenv(ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR, "0")  # keep every Ray address on 127.0.0.1
    mp.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)
    head = {
        "num_cpus": 1,
        "node_ip_address": "127.0.0.1",
        "object_store_memory": 80 * 1024 * 1024,
        "include_dashboard": False,
        "resources": {"segment:ams": 1},
    }
    cluster = cluster_utils.Cluster(initialize_head=True, head_node_args=head)
    try:
        ray.init(address=cluster.address, _node_ip_address="127.0.0.1", log_to_driver=False)
        yield cluster.address
    finally:
        ray.shutdown()
        cluster.shutdown()  # type: ignore[no-untyped-call]
        mp.undo()


@pytest.mark.ray
def test_the_engine_dispatches_through_ray_actors(ray_cluster: str, tmp_path: Path) -> None:
    """A small rolling run whose operations run in a HostPool Ray actor placed in its segment."""
    from sysflow.actors.ray_backend import RayBackend

    inventory = Inventory()
    hosts = [f"ams{i}" for i in range(4)]
    for host in hosts:
        inventory.add_host(host, segment="ams")
    inventory.add_group("fleet", hosts)
    wf = MaintenanceWorkflow("ray_smoke")
    wf.add_task("backup", f'echo "backup $SYSFLOW_HOST" >> {tmp_path}/$SYSFLOW_HOST', targets=["*"])
    wf.add_task("upgrade", f'echo "upgrade $SYSFLOW_HOST" >> {tmp_path}/$SYSFLOW_HOST', depends_on=["backup"])
    wf.set_progressive_execution({"strategy": "rolling", "serial": [1, "100%"]})
    shards = [ShardSpec("ams", tuple(hosts), LocalTransport, segment="ams")]

    async def main() -> RunResult:
        runner = BackendRunner(RayBackend(), shards, env_of=lambda op: {"SYSFLOW_HOST": op.host})
        async with runner:
            return await Engine(inventory, transport=LocalTransport(), runner=runner).run(wf)

    result = asyncio.run(main())
    assert result.status is RunStatus.COMPLETED, result.reason
    assert sorted(result.successful_servers) == hosts
    for host in hosts:
        assert (tmp_path / host).read_text().splitlines() == [f"backup {host}", f"upgrade {host}"]
