"""Troubleshooting branches and `until` on the simulator: evidence first, then a remedy, then a verdict."""

from __future__ import annotations

from pathlib import Path

from sysflow.engine.engine import Engine
from sysflow.engine.events import EventKind, RecordingObserver
from sysflow.engine.result import HostOutcome
from sysflow.engine.states import OpState, RunStatus
from sysflow.model.inventory import Inventory
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.sim.fleet import SimFleet
from sysflow.sim.loop import current_virtual_clock
from sysflow.sim.transport import SimTransport
from tests.engine.conftest import simulate

HOSTS = [f"web{i:02d}" for i in range(1, 7)]
DOWN = ["web02", "web05"]  # nginx stopped: a restart brings it back
BROKEN = ["web05"]  # nginx cannot start at all


def _inventory() -> Inventory:
    inv = Inventory()
    inv.add_group("web", HOSTS)
    return inv


def _faults(fleet: SimFleet) -> None:
    for host in DOWN:
        fleet.state(host).services["nginx"] = "failed"
    for host in BROKEN:
        fleet.state(host).broken.add("nginx")


def _workflow() -> MaintenanceWorkflow:
    wf = MaintenanceWorkflow("troubleshoot")
    wf.add_task(
        "health", "curl -s http://localhost/health", on_failure=["diagnostics", "restart", "escalate"]
    )
    wf.add_task("diagnostics", "systemctl is-active nginx ssh", register="diag")
    wf.add_task(
        "restart", "systemctl restart nginx", register="restart", when="'failed' in results.diag.stdout"
    )
    wf.add_task("escalate", "echo escalate {{ host.name }}", when="not results.restart.ok")
    wf.add_task("upgrade", "apt-get -y upgrade", depends_on="health")
    wf.set_progressive_execution({"max_failures": "50%"})
    return wf


async def test_failing_hosts_are_diagnosed_restarted_and_only_the_recovered_continue() -> None:
    sim = await simulate(_workflow(), _inventory(), prepare=_faults)
    result = sim.result
    assert result.status is RunStatus.COMPLETED_WITH_FAILURES, result.reason  # web05 failed, within 50 %
    healthy = [h for h in HOSTS if h not in DOWN]
    for host in healthy:  # nothing else is touched on healthy hosts
        assert sim.commands(host) == ["curl -s http://localhost/health", "apt-get -y upgrade"]
        assert result.hosts[host] is HostOutcome.SUCCEEDED
    # web02 recovers: diagnostics, restart, health again, then the rest of its chain
    assert sim.commands("web02") == [
        "curl -s http://localhost/health",
        "systemctl is-active nginx ssh",
        "systemctl restart nginx",
        "curl -s http://localhost/health",
        "apt-get -y upgrade",
    ]
    assert result.hosts["web02"] is HostOutcome.SUCCEEDED
    assert result.ops["health@web02"].reason == "recovered after on_failure: diagnostics, restart, escalate"
    assert result.ops["escalate@web02"].state is OpState.SKIPPED
    # web05 does not: reported failed with what the branch found; its upgrade never runs
    assert result.hosts["web05"] is HostOutcome.FAILED
    assert "apt-get -y upgrade" not in sim.commands("web05")
    assert "echo escalate web05" in sim.commands("web05")
    failed = result.ops["health@web05"]
    assert failed.state is OpState.FAILED
    assert failed.reason.startswith("still failing after on_failure: diagnostics, restart, escalate; ")
    assert "diagnostics: exit status 3 — failed" in failed.reason
    assert "restart: exit status 1 — Job for nginx.service failed" in failed.reason
    assert result.ops["diagnostics@web05"].stdout == "failed\nactive\n"
    assert result.ops["upgrade@web05"].state is OpState.SKIPPED
    # the branch is visible in the events (and so in the audit log: op_started/op_finished of branches)
    branch = [e for e in sim.events.events if e.data.get("step") == "on_failure"]
    assert {e.host for e in branch} == set(DOWN)
    started = {(e.host, e.task) for e in sim.events.of(EventKind.OP_STARTED)}
    assert ("web05", "restart") in started and ("web01", "restart") not in started


async def test_until_gives_up_after_its_attempts_and_reports_why() -> None:
    wf = MaintenanceWorkflow("wait_for_service")
    wf.add_task("stop", "systemctl stop nginx", targets="web01")
    wf.add_task(
        "wait_up",
        "systemctl is-active nginx",
        targets="web01",
        depends_on="stop",
        until="result.ok",
        retries=3,
        delay="15s",
    )
    sim = await simulate(wf, _inventory())
    rec = sim.result.ops["wait_up@web01"]
    assert rec.state is OpState.FAILED
    assert rec.error == "until 'result.ok' did not hold after 4 attempt(s)"
    assert rec.attempts == 4
    assert sim.commands("web01").count("systemctl is-active nginx") == 4
    assert rec.end is not None and rec.start is not None


async def test_until_stops_as_soon_as_the_condition_holds() -> None:
    wf = MaintenanceWorkflow("wait_for_service")
    wf.add_task("restart", "systemctl restart nginx", targets="web02")
    wf.add_task(
        "wait_up",
        "systemctl is-active nginx",
        targets="web02",
        depends_on="restart",
        until="matches(result.stdout, '^active')",
        retries=5,
        delay="10s",
        register="up",
    )
    wf.add_task("bad_until", "true", targets="web02", depends_on="wait_up", until="result.nothing", retries=2)
    sim = await simulate(wf, _inventory(), prepare=_faults)
    rec = sim.result.ops["wait_up@web02"]
    assert rec.state is OpState.SUCCEEDED and rec.attempts == 1
    bad = sim.result.ops["bad_until@web02"]
    assert bad.state is OpState.FAILED and bad.error == "until: result.nothing is undefined"


async def test_a_hook_skipped_by_its_condition_does_not_block_what_depends_on_it() -> None:
    wf = MaintenanceWorkflow("hooks")
    wf.add_task("drain", "echo drain {{ host.name }}", run_once=True, when="host.wave > 1")
    wf.add_task("work", "apt-get -y upgrade", depends_on="drain")
    wf.set_progressive_execution({"groups": [HOSTS[:2], HOSTS[2:]]})
    sim = await simulate(wf, _inventory())
    assert sim.result.status is RunStatus.COMPLETED, sim.result.reason
    assert sim.result.ops["drain@@wave1"].state is OpState.SKIPPED
    assert sim.result.ops["drain@@wave2"].state is OpState.SUCCEEDED
    assert all(sim.result.ops[f"work@{h}"].state is OpState.SUCCEEDED for h in HOSTS)
    assert "echo drain web03" in sim.commands("web03")  # a hook runs on its wave's first host


async def test_rollback_commands_are_rendered_per_host_and_recorded_redacted(tmp_path: Path) -> None:
    from sysflow.engine.store import RunStore
    from sysflow.sim.profile import SimProfile

    inv = _inventory()
    inv.groups["web"].vars["backup_dir"] = "/var/backups"
    inv.groups["web"].vars["vault_token"] = "tok-123"
    wf = MaintenanceWorkflow("templated_rollback")
    wf.add_task("backup", "tar -czf {{ vars.backup_dir }}/etc.tgz /etc", targets="web01")
    wf.add_task(
        "upgrade",
        "VAULT={{ vars.vault_token }} apt-get -y upgrade",
        depends_on="backup",
        targets="web01",
        rollback="restore {{ vars.backup_dir }}/etc.tgz --token {{ vars.vault_token }}",
    )
    wf.set_progressive_execution({"auto_rollback": True})
    profile = SimProfile(failure_probability={"upgrade_packages": 1.0})
    clock = current_virtual_clock()
    transport = SimTransport(SimFleet(inv, profile, seed=1, start=clock.start), clock)
    events = RecordingObserver()
    store = RunStore(tmp_path / "runs.db")
    engine = Engine(inv, transport=transport, clock=clock, observers=[events], store=store)
    result = await engine.run(wf)
    assert result.status is RunStatus.ROLLED_BACK, result.reason
    sent = [r.command for r in transport.trace if r.host == "web01"]
    assert "restore /var/backups/etc.tgz --token tok-123" in sent
    rolled = [e for e in events.of(EventKind.OP_FINISHED) if e.data.get("rollback")]
    assert len(rolled) == 1 and rolled[0].data["state"] == "succeeded"
    stored = store.ops(result.run_id)["upgrade@web01"]
    assert stored.command == "VAULT='********' apt-get -y upgrade"
    assert all("tok-123" not in repr(e.to_dict()) for e in events.events)
    store.close()


async def test_branch_operations_are_kept_in_the_run_store(tmp_path: Path) -> None:
    from sysflow.engine.store import RunStore

    inv = _inventory()
    clock = current_virtual_clock()
    fleet = SimFleet(inv, None, seed=1, start=clock.start)
    _faults(fleet)
    store = RunStore(tmp_path / "runs.db")
    engine = Engine(inv, transport=SimTransport(fleet, clock), clock=clock, store=store)
    result = await engine.run(_workflow())
    stored = store.ops(result.run_id)
    assert stored["diagnostics@web05"].stdout == "failed\nactive\n"
    assert stored["restart@web02"].state is OpState.SUCCEEDED
    assert stored["escalate@web02"].state is OpState.SKIPPED
    assert stored["health@web05"].reason.startswith("still failing after on_failure")
    assert "diagnostics@web01" not in stored
    store.close()
