"""Adaptive re-planning: a group slower than estimated makes the engine re-plan; limits still hold."""

from __future__ import annotations

from datetime import datetime, timedelta

from sysflow.engine.engine import Engine
from sysflow.engine.events import EventKind, RecordingObserver
from sysflow.engine.states import RunStatus
from sysflow.engine.store import RunStore
from sysflow.model.inventory import Inventory
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.sim.fleet import SimFleet
from sysflow.sim.loop import current_virtual_clock
from sysflow.sim.profile import SimProfile
from sysflow.sim.transport import SimTransport
from tests.engine.conftest import max_concurrent

HOSTS = 4_000  # enough for the drift, the re-plan and the convergence; 10,000 took 45 s under coverage


def _fleet() -> Inventory:
    inv = Inventory()
    half = HOSTS // 2
    inv.add_group("fast", [f"f{i:05d}" for i in range(half)], vars={"datacenter": "ams"})
    inv.add_group("slow", [f"s{i:05d}" for i in range(half)], vars={"datacenter": "fra"})
    return inv


def _workflow() -> MaintenanceWorkflow:
    wf = MaintenanceWorkflow("adaptive")
    wf.add_task("upgrade", "apt-get -y upgrade", expected_duration=120, timeout=3600)
    wf.add_task("health", "curl -s http://localhost/health", depends_on=["upgrade"], expected_duration=1)
    wf.set_progressive_execution(
        {"strategy": "rolling", "serial": ["1%", "10%", "100%"], "max_failures": "100%"}
    )
    wf.set_parallelization({"max_parallel_servers": 1000, "max_parallel_per_datacenter": 500})
    return wf


async def test_a_slow_group_triggers_a_replan_and_every_limit_still_holds(tmp_path: object) -> None:
    clock = current_virtual_clock()
    inv = _fleet()
    # the fra group's upgrades take 1.5x the estimate; ams is on plan
    profile = SimProfile(
        durations={"upgrade_packages": {"fast": "120s", "slow": "180s"}, "health_check": "1s"}
    )
    fleet = SimFleet(inv, profile, seed=3, start=clock.start)
    events = RecordingObserver()
    store = RunStore(":memory:")
    engine = Engine(
        inv, transport=SimTransport(fleet, record=False), clock=clock, observers=[events], store=store
    )
    result = await engine.run(_workflow())
    assert result.status is RunStatus.COMPLETED
    assert len(result.successful_servers) == HOSTS

    replaced = events.of(EventKind.PLAN_REPLACED)
    assert replaced, "the engine should have re-planned"
    assert "measured durations are" in replaced[0].message
    versions = store.plans(result.run_id)
    assert [v for v, _, _ in versions] == list(range(1, len(versions) + 1))
    assert versions[0][1] == "initial"
    assert len(versions) == 1 + len(replaced)

    # the forecast converged: the learned estimate of the slow group is near 180 s, the fast one near 120 s
    learned = engine.runs[result.run_id].durations
    assert learned is not None
    assert abs(learned.seconds("upgrade", "slow") - 180) < 20
    assert abs(learned.seconds("upgrade", "fast") - 120) < 15

    # the executed trace keeps every limit and the wave barriers
    spans = [(r.start, r.end) for r in result.ops.values() if r.start and r.end]
    assert max_concurrent(spans) <= 1000
    for dc in ("f", "s"):
        per_dc = [
            (r.start, r.end) for r in result.ops.values() if r.host.startswith(dc) and r.start and r.end
        ]
        assert max_concurrent(per_dc) <= 500
    wave_end: dict[int, datetime] = {}
    wave_start: dict[int, datetime] = {}
    for r in result.ops.values():
        assert r.start is not None and r.end is not None
        wave_end[r.wave] = max(wave_end.get(r.wave, r.end), r.end)
        wave_start[r.wave] = min(wave_start.get(r.wave, r.start), r.start)
    for w in range(1, len(wave_start)):
        assert wave_start[w] >= wave_end[w - 1] - timedelta(seconds=0)
