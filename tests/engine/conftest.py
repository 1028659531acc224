"""Engine tests run on virtual time: the real engine drives a simulated fleet."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sysflow.engine.engine import Engine
from sysflow.engine.events import EventKind, RecordingObserver
from sysflow.engine.result import RunResult
from sysflow.model.inventory import Inventory
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.sim.fleet import SimFleet
from sysflow.sim.loop import current_virtual_clock
from sysflow.sim.profile import SimProfile
from sysflow.sim.transport import SimTransport
from tests.fixtures.virtual import virtual_loop_factories as pytest_asyncio_loop_factories

__all__ = ["Sim", "brief_inventory", "brief_workflow", "pytest_asyncio_loop_factories", "simulate"]

SATURDAY_NOON = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)  # the brief's Sunday windows open 13 h later


@dataclass
class Sim:
    """What a simulated run did: the result, the events, the commands the fleet saw."""

    result: RunResult
    events: RecordingObserver
    transport: SimTransport
    fleet: SimFleet
    engine: Engine
    extra: dict[str, Any] = field(default_factory=dict)

    def commands(self, host: str) -> list[str]:
        return [r.command for r in sorted(self.transport.trace, key=lambda r: r.start) if r.host == host]

    def touched(self) -> set[str]:
        return {r.host for r in self.transport.trace}

    def kinds(self) -> list[EventKind]:
        return [e.kind for e in self.events.events]


def brief_inventory(extra_web: int = 0) -> Inventory:
    inv = Inventory()
    web = ["web01.example.com", "web02.example.com", "web03.example.com"]
    web += [f"web{i:02d}.example.com" for i in range(4, 4 + extra_web)]
    inv.add_group("web_servers", web)
    inv.add_group("db_servers", ["db01.example.com", "db02.example.com"])
    inv.add_group("cache_servers", ["cache01.example.com", "cache02.example.com"])
    return inv


def brief_workflow(*, rollback: bool = True) -> MaintenanceWorkflow:
    """The product brief's workflow, with rollback commands so auto_rollback has something to run."""
    wf = MaintenanceWorkflow("os_patching")
    rb = {"rollback": "restore /backup/etc.tar.gz"} if rollback else {}
    wf.add_task("backup", "tar -czf /backup/$(hostname)-$(date +%Y%m%d).tar.gz /etc", targets=["*"])
    wf.add_task("update_repos", "apt-get update", targets=["*"])
    wf.add_task(
        "upgrade_packages",
        "apt-get -y upgrade",
        targets=["*"],
        depends_on=["update_repos"],
        timeout="10m",
        **rb,
    )
    wf.add_task(
        "restart_services",
        "systemctl restart nginx",
        targets=["web_servers"],
        depends_on=["upgrade_packages"],
    )
    wf.add_task(
        "verify_web",
        "curl -s http://localhost/health | grep -q 'OK'",
        targets=["web_servers"],
        depends_on=["restart_services"],
    )
    wf.set_progressive_execution(
        {
            "groups": [
                ["web01.example.com"],
                ["web02.example.com", "web03.example.com"],
                ["db_servers"],
                ["cache_servers"],
            ],
            "verification_tasks": ["verify_web"],
            "auto_rollback": True,
        }
    )
    wf.add_verification(
        "verify_package_versions",
        {
            "before_tasks": ["backup"],
            "after_tasks": ["upgrade_packages"],
            "commands": {"package_versions": "dpkg -l | grep -E 'openssl|bash|kernel'"},
            "comparisons": {
                "package_versions": {
                    "type": "regex_match",
                    "pattern": r"ii\s+openssl\s+(\S+)",
                    "expected_change": "version_increase",
                }
            },
        },
    )
    wf.set_maintenance_window(
        {
            "web_servers": "Sunday 01:00-03:00",
            "db_servers": "Sunday 03:00-05:00",
            "cache_servers": "Sunday 01:00-05:00",
        }
    )
    wf.set_parallelization(
        {"max_parallel_servers": 10, "max_parallel_per_group": 5, "delay_between_servers": "2s"}
    )
    return wf


async def simulate(
    workflow: MaintenanceWorkflow,
    inventory: Inventory,
    profile: SimProfile | None = None,
    *,
    seed: int = 1,
    prepare: Any = None,
    during: Any = None,
) -> Sim:
    """Run ``workflow`` on a simulated fleet; ``prepare(fleet)`` edits host state first,
    ``during(run)`` is awaited alongside the run (to approve, cancel, pause)."""
    import asyncio

    clock = current_virtual_clock()
    loop = asyncio.get_running_loop()
    if clock.now() < SATURDAY_NOON:
        loop.advance((SATURDAY_NOON - clock.now()).total_seconds())  # type: ignore[attr-defined]
    fleet = SimFleet(inventory, profile, seed=seed, start=clock.start)
    if prepare is not None:
        prepare(fleet)
    transport = SimTransport(fleet, clock)
    events = RecordingObserver()
    engine = Engine(inventory, transport=transport, clock=clock, observers=[events])
    run = engine.prepare(workflow)
    if during is None:
        result = await run.execute()
    else:
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(run.execute())
            tg.create_task(during(run))
        result = task.result()
    return Sim(result, events, transport, fleet, engine)


def starts(sim: Sim) -> dict[str, datetime]:
    """First command start per host."""
    first: dict[str, datetime] = {}
    for r in sim.result.ops.values():
        if r.start is not None and (r.host not in first or r.start < first[r.host]):
            first[r.host] = r.start
    return first


def max_concurrent(intervals: Sequence[tuple[datetime, datetime]]) -> int:
    """The most intervals open at one instant (ends before starts at equal times)."""
    points = sorted(
        [(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda p: (p[0], p[1])
    )
    peak = cur = 0
    for _, d in points:
        cur += d
        peak = max(peak, cur)
    return peak


ONE_SECOND = timedelta(seconds=1)


@pytest.fixture
def inventory() -> Inventory:
    return brief_inventory()
