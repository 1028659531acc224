"""Progressive rollout on the simulator: waves, windows, limits, thresholds, rollback, controls."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

from sysflow.engine.events import EventKind
from sysflow.engine.result import HostOutcome
from sysflow.engine.run import Run
from sysflow.engine.states import OpState, RunStatus
from sysflow.model.inventory import Inventory
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.sim.fleet import SimFleet
from sysflow.sim.profile import HostFault, Partition, Rule, SimProfile
from tests.engine.conftest import brief_workflow, max_concurrent, simulate, starts

SUNDAY = datetime(2026, 11, 29, tzinfo=UTC)


def _window(hour_from: int, hour_to: int) -> tuple[datetime, datetime]:
    return SUNDAY + timedelta(hours=hour_from), SUNDAY + timedelta(hours=hour_to)


async def test_the_brief_runs_every_host_inside_its_window_within_its_limits(inventory: Inventory) -> None:
    sim = await simulate(brief_workflow(), inventory)
    result = sim.result
    assert result.status is RunStatus.COMPLETED
    assert sorted(result.successful_servers) == sorted(inventory.hosts)
    assert result.failed_servers == []
    windows = {"web": _window(1, 3), "db": _window(3, 5), "cache": _window(1, 5)}
    for rec in result.ops.values():
        lo, hi = windows[rec.host[: rec.host.index("0")].rstrip("0123456789")]
        assert rec.start is not None and rec.end is not None
        assert lo <= rec.start and rec.end <= hi, rec
    # delay_between_servers: host starts (their first admission grant) are 2 s apart
    dispatched: dict[str, datetime] = {}
    for e in sim.events.of(EventKind.OP_PROGRESS):
        if e.data.get("step") == "admitted":
            dispatched.setdefault(e.host or "", e.at)
    first = sorted(dispatched.values())
    assert len(first) == 7
    assert all(b - a >= timedelta(seconds=2) for a, b in itertools.pairwise(first))
    spans = [(r.start, r.end) for r in result.ops.values() if r.start and r.end]
    assert max_concurrent(spans) <= 10
    web = [(r.start, r.end) for r in result.ops.values() if r.host.startswith("web") and r.start and r.end]
    assert max_concurrent(web) <= 5
    # waves are barriers: web01 finished everything before web02/web03 started
    assert max(r.end for r in result.ops_of("web01.example.com") if r.end) <= starts(sim)["web02.example.com"]
    # the brief's verification passed on every host, and the report is the result's
    report = result.verification_results
    assert report.outcome.value == "pass"
    assert len(report.hosts) == 7
    # per-host order is the DAG's
    assert [r.task for r in result.ops_of("web02.example.com")] == [
        "backup",
        "update_repos",
        "upgrade_packages",
        "restart_services",
        "verify_web",
    ]


async def test_a_failed_canary_stops_the_rollout_and_is_rolled_back(inventory: Inventory) -> None:
    wf = brief_workflow()
    wf.set_progressive_execution({"strategy": "canary", "canary_size": 1, "auto_rollback": True})
    profile = SimProfile(hosts=[HostFault(hosts="web01.example.com", hang=r"apt-get -y upgrade")])
    sim = await simulate(wf, inventory, profile)
    result = sim.result
    assert result.status is RunStatus.ROLLED_BACK
    assert sim.touched() == {"web01.example.com"}  # no other host touched
    assert result.hosts["web01.example.com"] is HostOutcome.ROLLED_BACK
    assert all(o is HostOutcome.NOT_STARTED for h, o in result.hosts.items() if h != "web01.example.com")
    assert sim.commands("web01.example.com")[-1] == "restore /backup/etc.tar.gz"
    failed = result.ops["upgrade_packages@web01.example.com"]
    assert failed.error is not None and failed.error.startswith("CommandTimeout")
    assert "no rollback command for: backup, update_repos" in next(
        e.message for e in sim.events.events if e.kind is EventKind.ROLLBACK_STARTED
    )
    assert "wave 1: 1 of 1 hosts failed" in result.reason


def _fleet(n: int) -> Inventory:
    inv = Inventory()
    inv.add_group("app", [f"app{i:02d}" for i in range(n)])
    return inv


def _simple(waves: list[list[str]] | None = None, **rollout: object) -> MaintenanceWorkflow:
    wf = MaintenanceWorkflow("patch")
    wf.add_task("upgrade", "apt-get -y upgrade", timeout="30m", rollback="restore /backup/packages")
    wf.add_task("health", "curl -s http://localhost/health", depends_on=["upgrade"])
    wf.set_progressive_execution({"groups": waves, **rollout} if waves else dict(rollout))
    return wf


async def test_failures_under_the_threshold_continue_and_over_it_stop() -> None:
    inv = _fleet(20)
    waves = [[f"app{i:02d}" for i in range(10)], [f"app{i:02d}" for i in range(10, 20)]]
    hang = SimProfile(hosts=[HostFault(hosts="app03", hang="apt-get -y upgrade")])
    under = await simulate(_simple(waves, max_failures=1), inv, hang)
    assert under.result.status is RunStatus.COMPLETED_WITH_FAILURES  # finished, not a success
    assert under.result.failed_servers == ["app03"]
    assert len(under.result.successful_servers) == 19

    hang2 = SimProfile(hosts=[HostFault(hosts="app03:app05", hang="apt-get -y upgrade")])
    over = await simulate(_simple(waves, max_failures=1), inv, hang2)
    assert over.result.status is RunStatus.FAILED
    assert sorted(over.result.failed_servers) == ["app03", "app05"]
    assert not {f"app{i:02d}" for i in range(10, 20)} & over.touched()  # the second wave never started
    assert "wave 1: 2 of 10 hosts failed" in over.result.reason


async def test_a_global_failure_budget_is_counted_across_waves() -> None:
    inv = _fleet(20)
    waves = [[f"app{i:02d}" for i in range(k, k + 5)] for k in range(0, 20, 5)]
    profile = SimProfile(hosts=[HostFault(hosts="app01:app06:app11", hang="apt-get -y upgrade")])
    sim = await simulate(_simple(waves, max_failures=1, failure_budget=2), inv, profile)
    assert sim.result.status is RunStatus.FAILED
    assert "failure budget exhausted: 3 hosts failed" in sim.result.reason
    assert not {f"app{i:02d}" for i in range(15, 20)} & sim.touched()


async def test_rollback_scope_all_reverts_earlier_waves_in_reverse_order() -> None:
    inv = _fleet(6)
    waves = [["app00", "app01"], ["app02", "app03"], ["app04", "app05"]]
    profile = SimProfile(hosts=[HostFault(hosts="app03", hang="apt-get -y upgrade")])
    sim = await simulate(_simple(waves, auto_rollback=True, rollback_scope="all"), inv, profile)
    assert sim.result.status is RunStatus.ROLLED_BACK
    assert sorted(sim.result.failed_servers) == ["app00", "app01", "app02", "app03"]
    for host in ("app00", "app01", "app02", "app03"):
        assert sim.result.hosts[host] is HostOutcome.ROLLED_BACK
        assert sim.commands(host)[-1] == "restore /backup/packages"
    assert sim.result.ops["upgrade@app00"].state is OpState.ROLLED_BACK
    assert "app04" not in sim.touched()


async def test_a_partitioned_datacenter_fails_its_hosts_as_unreachable() -> None:
    inv = Inventory()
    inv.add_group("ams", [f"a{i}" for i in range(4)], vars={"datacenter": "ams"})
    inv.add_group("fra", [f"f{i}" for i in range(4)], vars={"datacenter": "fra"})
    profile = SimProfile(
        partitions=[
            Partition(datacenter="fra", start=SUNDAY - timedelta(days=1), end=SUNDAY + timedelta(days=2))
        ]
    )
    wf = _simple(None, max_failures="100%")
    sim = await simulate(wf, inv, profile)
    assert sorted(sim.result.failed_servers) == [f"f{i}" for i in range(4)]
    assert sorted(sim.result.successful_servers) == [f"a{i}" for i in range(4)]
    errors = {sim.result.ops[f"upgrade@f{i}"].error or "" for i in range(4)}
    assert all(e.startswith(("ConnectTimeout", "HostUnreachable")) for e in errors)


async def test_unexpected_state_found_by_verification_rolls_the_wave_back(inventory: Inventory) -> None:
    def already_patched(fleet: SimFleet) -> None:
        fleet.state("web02.example.com").packages["openssl"] = "3.0.15-1~deb12u1"  # nothing to upgrade

    sim = await simulate(brief_workflow(), inventory, prepare=already_patched)
    result = sim.result
    assert result.status is RunStatus.ROLLED_BACK
    assert result.hosts["web02.example.com"] is HostOutcome.ROLLED_BACK
    assert result.hosts["web01.example.com"] is HostOutcome.SUCCEEDED  # earlier wave kept
    assert "db01.example.com" not in sim.touched()
    failures = result.verification_results.failures
    assert [v.host for v in failures] == ["web02.example.com"]


async def test_an_approval_gate_pauses_until_approved(inventory: Inventory) -> None:
    wf = brief_workflow()
    wf.set_progressive_execution(
        {"groups": [["web_servers"], ["db_servers", "cache_servers"]], "approval": True}
    )
    seen: list[RunStatus] = []

    async def operator(run: Run) -> None:
        while not run.tracker.failures() and run.status is not RunStatus.PAUSED:
            await asyncio.sleep(60)
        seen.append(run.status)
        await asyncio.sleep(3600)  # an hour later, someone approves
        run.approve(2)

    sim = await simulate(wf, inventory, during=operator)
    assert seen == [RunStatus.PAUSED]
    assert sim.result.status is RunStatus.COMPLETED
    kinds = sim.kinds()
    assert kinds.index(EventKind.APPROVAL_REQUESTED) < kinds.index(EventKind.APPROVAL_GIVEN)
    db_start = starts(sim)["db01.example.com"]
    web_end = max(r.end for r in sim.result.ops.values() if r.host.startswith("web") and r.end)
    assert db_start >= web_end + timedelta(hours=1)


async def test_a_pause_during_an_approval_wait_holds_after_the_approval(inventory: Inventory) -> None:
    """Approved while an operator paused it: the run stays paused (and shows it) until resumed."""
    wf = brief_workflow()
    wf.set_progressive_execution(
        {"groups": [["web_servers"], ["db_servers", "cache_servers"]], "approval": True}
    )
    seen: list[RunStatus] = []

    def waits_for_approval(run: Run) -> bool:  # wave 1 (web) is done and the run paused for wave 2
        web = [r for r in run.tracker.records.values() if r.host.startswith("web")]
        return run.status is RunStatus.PAUSED and all(r.state.done for r in web)

    async def operator(run: Run) -> None:
        while not waits_for_approval(run):
            await asyncio.sleep(60)
        run.pause("paused by operator (alice)")
        run.approve(2)
        await asyncio.sleep(600)
        seen.append(run.status)
        run.resume("resumed by operator (alice)")
        seen.append(run.status)

    sim = await simulate(wf, inventory, during=operator)
    assert seen == [RunStatus.PAUSED, RunStatus.RUNNING]
    assert sim.result.status is RunStatus.COMPLETED
    db_start = starts(sim)["db01.example.com"]
    approved = next(e.at for e in sim.events.of(EventKind.APPROVAL_GIVEN))
    assert db_start >= approved + timedelta(seconds=600)  # nothing started before the resume
    after = [(e.kind, e.message) for e in sim.events.events if e.at >= approved - timedelta(seconds=1)]
    steering = [m for k, m in after if k in (EventKind.RUN_PAUSED, EventKind.RUN_RESUMED)]
    assert steering[:2] == ["paused by operator (alice)", "resumed by operator (alice)"], steering


async def test_cancel_lets_running_work_finish_and_starts_nothing_new() -> None:
    inv = _fleet(10)
    wf = _simple([[f"app{i:02d}" for i in range(10)]])
    wf.set_parallelization({"max_parallel_servers": 2})

    async def operator(run: Run) -> None:
        while len(run.tracker.changed_hosts) < 2:
            await asyncio.sleep(1)
        run.cancel()

    sim = await simulate(wf, inv, during=operator)
    assert sim.result.status is RunStatus.CANCELLED
    assert len(sim.touched()) == 2
    assert sim.result.ops["upgrade@app09"].state is OpState.SKIPPED


async def test_window_expiry_finish_continues_in_the_next_window() -> None:
    inv = _fleet(4)
    wf = _simple([[f"app{i:02d}" for i in range(4)]])
    wf.set_maintenance_window({"app": "Sunday 01:00-02:00"})
    wf.set_parallelization({"max_parallel_servers": 1})
    wf.tasks[0] = wf.tasks[0].model_copy(update={"expected_duration": 25 * 60})  # the estimate is right
    slow = SimProfile(durations={"upgrade_packages": "25m"})
    sim = await simulate(wf, inv, slow)
    assert sim.result.status is RunStatus.COMPLETED
    days = sorted({s.date() for s in starts(sim).values()})
    assert len(days) == 2  # two hosts fit the first Sunday (2 × 25 min + health), the rest the next one
    assert EventKind.RUN_PAUSED in sim.kinds()
    kinds = sim.kinds()
    assert kinds.index(EventKind.WINDOW_CLOSED) < len(kinds) - 1 - kinds[::-1].index(EventKind.WINDOW_OPENED)
    for rec in sim.result.ops.values():
        assert rec.start is not None and rec.end is not None
        assert rec.start.hour == 1 and (rec.end.hour == 1 or rec.end.minute == 0), rec


async def test_window_expiry_abort_stops_running_commands_for_recheck() -> None:
    inv = _fleet(1)
    wf = _simple(None)
    wf.set_maintenance_window({"app": "Sunday 01:00-02:00"})
    wf.on_window_expiry = "abort"  # type: ignore[assignment]
    wf.windows = wf.windows.model_copy(update={"allow_split_chains": True})
    slow = SimProfile(durations={"upgrade_packages": "90m"})
    wf.tasks[0] = wf.tasks[0].model_copy(update={"timeout": None})
    sim = await simulate(wf, inv, slow)
    rec = sim.result.ops["upgrade@app00"]
    assert rec.state is OpState.UNKNOWN
    assert "re-check" in rec.reason
    assert EventKind.WINDOW_CLOSED in sim.kinds()


async def test_twenty_runs_in_one_process_do_not_interfere() -> None:
    inv = _fleet(20)
    profile = SimProfile(hosts=[HostFault(hosts="app07", hang="apt-get -y upgrade")])

    async def one(k: int) -> tuple[int, list[str]]:
        wf = _simple(None, max_failures="100%")
        wf.name = f"patch-{k}"
        sim = await simulate(wf, inv, profile if k % 2 else None, seed=k)
        return k, sim.result.failed_servers

    outcomes = await asyncio.gather(*(one(k) for k in range(20)))
    for k, failed in outcomes:
        assert failed == (["app07"] if k % 2 else [])


def _blue_green(cutover_fails: bool) -> tuple[MaintenanceWorkflow, Inventory, SimProfile]:
    inv = Inventory()
    inv.add_group("blue", ["b1", "b2"])
    inv.add_group("green", ["g1", "g2"])
    wf = MaintenanceWorkflow("release")
    wf.add_task("deploy", "deploy-app v2", rollback="restore previous release")
    wf.add_task(
        "cutover",
        "switch-lb --to green",
        run_once=True,
        depends_on=["deploy"],
        rollback="switch-lb --to blue",
    )
    wf.add_task("smoke", "curl -s http://localhost/health", depends_on=["cutover"])
    wf.set_progressive_execution(
        {
            "strategy": "blue_green",
            "blue": ["blue"],
            "green": ["green"],
            "cutover_task": "cutover",
            "auto_rollback": True,
        }
    )
    rules = [
        Rule(name="deploy", match="deploy-app", duration="30s"),
        Rule(name="cutover", match="switch-lb --to green", exit_status=1 if cutover_fails else 0),
        Rule(name="switch_back", match="switch-lb --to blue"),
    ]
    return wf, inv, SimProfile(rules=rules)


async def test_blue_green_with_a_failed_cutover_switches_back_and_keeps_blue() -> None:
    wf, inv, profile = _blue_green(cutover_fails=True)
    sim = await simulate(wf, inv, profile)
    assert sim.result.status is RunStatus.ROLLED_BACK
    assert "run-once hook @wave1 failed" in sim.result.reason
    assert sim.touched() == {"g1", "g2"}  # blue, the live set, never touched
    hook_host = "g1"  # a non-local run-once task runs on the first host of its wave
    cmds = sim.commands(hook_host)
    assert (
        cmds.index("switch-lb --to green")
        < cmds.index("switch-lb --to blue")
        < cmds.index("restore previous release")
    )
    assert sim.result.ops["smoke@g1"].state is OpState.SKIPPED
    assert {sim.result.hosts[h] for h in ("g1", "g2")} == {HostOutcome.ROLLED_BACK}


async def test_blue_green_cutover_then_the_old_set() -> None:
    wf, inv, profile = _blue_green(cutover_fails=False)
    sim = await simulate(wf, inv, profile)
    assert sim.result.status is RunStatus.COMPLETED
    green_smoke = max(sim.result.ops[f"smoke@{h}"].end for h in ("g1", "g2"))  # type: ignore[type-var]
    cutover = sim.result.ops["cutover@@wave1"]
    assert cutover.start is not None
    assert all(sim.result.ops[f"deploy@{h}"].end <= cutover.start for h in ("g1", "g2"))  # type: ignore[operator]
    assert all(sim.result.ops[f"deploy@{h}"].start >= green_smoke for h in ("b1", "b2"))  # type: ignore[operator]


async def test_sliding_mode_has_no_barrier_but_keeps_wave_order_and_thresholds() -> None:
    inv = _fleet(12)
    waves = [[f"app{i:02d}" for i in range(k, k + 4)] for k in range(0, 12, 4)]
    wf = _simple(waves, mode="sliding", max_failures=0)
    wf.set_parallelization({"max_parallel_servers": 3})
    sim = await simulate(wf, inv)
    assert sim.result.status is RunStatus.COMPLETED
    first = starts(sim)
    end_of_wave1 = max(r.end for r in sim.result.ops.values() if r.wave == 0 and r.end)
    assert min(first[h] for h in waves[1]) < end_of_wave1  # wave 2 started before wave 1 finished
    order = sorted(first, key=lambda h: first[h])
    assert order[:4] == waves[0]  # hosts still start in wave order
    spans = [(r.start, r.end) for r in sim.result.ops.values() if r.start and r.end]
    assert max_concurrent(spans) <= 3

    hang = SimProfile(hosts=[HostFault(hosts="app01", hang="apt-get -y upgrade")])
    stopped = await simulate(_simple(waves, mode="sliding", max_failures=0), inv, hang)
    assert stopped.result.status is RunStatus.FAILED
    assert "wave 1: 1 of 4 hosts failed" in stopped.result.reason


def _analysed(error_rate: str, **check: object) -> tuple[MaintenanceWorkflow, SimProfile]:
    wf = _simple([["app00"], ["app01", "app02"]])
    rollout = wf.rollout.model_dump()
    rollout["analysis"] = [
        {
            "name": "error_rate",
            "command": "error-rate --last 5m",
            "host": "app00",
            "max": 1.0,
            "count": 3,
            "interval": "1m",
            **check,
        }
    ]
    wf.set_progressive_execution(rollout)
    rules = [Rule(name="error_rate", match="error-rate", stdout=error_rate)]
    return wf, SimProfile(rules=rules)


async def test_a_metric_check_out_of_bounds_fails_the_canary_gate() -> None:
    wf, profile = _analysed("errors 2.5 %")
    sim = await simulate(wf, _fleet(3), profile)
    assert sim.result.status is RunStatus.FAILED
    assert "error_rate: 3 of 3 measurements outside [, 1]: 2.5, 2.5, 2.5" in sim.result.reason
    assert "app01" not in sim.touched()
    gate = next(e for e in sim.events.events if e.kind is EventKind.GATE_EVALUATED)
    assert gate.data["passed"] is False


async def test_a_metric_within_bounds_or_tolerated_lets_the_rollout_go_on() -> None:
    wf, profile = _analysed("0.4")
    sim = await simulate(wf, _fleet(3), profile)
    assert sim.result.status is RunStatus.COMPLETED
    assert (
        sim.commands("app00").count("error-rate --last 5m") == 3 * 2
    )  # three measurements at each of 2 gates
    wf, profile = _analysed("no data", inconclusive_limit=3)
    assert (await simulate(wf, _fleet(3), profile)).result.status is RunStatus.COMPLETED
    wf, profile = _analysed("no data")
    inconclusive = await simulate(wf, _fleet(3), profile)
    assert inconclusive.result.status is RunStatus.FAILED
    assert (
        "gate after wave 1 was inconclusive: error_rate: 3 measurements gave no number"
        in inconclusive.result.reason
    )


async def test_a_failure_under_a_disruption_budget_ends_the_run_and_frees_every_slot() -> None:
    """Hosts waiting for a budget slot when the rollout stops must see the stop: each host that was
    granted a slot gives it back when its chain ends, even when it ends without starting anything
    (this run hung before: a host admitted only to find the rollout stopped kept its slot)."""
    inv = Inventory()
    inv.add_group("web", [f"web{i:02d}" for i in range(1, 21)])
    wf = MaintenanceWorkflow("budget")
    wf.add_task("drain", "lb-drain", targets=["web"], rollback="lb-enable")
    wf.add_task("upgrade", "apt-get -y upgrade {{ host.name }}", targets=["web"], depends_on=["drain"])
    wf.add_task("enable", "lb-enable", targets=["web"], depends_on=["upgrade"])
    wf.set_progressive_execution({"strategy": "rolling", "serial": ["100%"], "auto_rollback": True})
    wf.set_parallelization({"max_parallel_servers": 10, "disruption_budget": {"max_unavailable": 3}})
    profile = SimProfile(
        rules=[
            Rule(name="upgrade", match="apt-get -y upgrade web05", duration="30s", exit_status=1),
            Rule(name="upgrade", match="apt-get", duration="30s"),
            Rule(name="lb", match="lb-", duration="1s"),
        ]
    )
    sim = await simulate(wf, inv, profile)
    result = sim.result
    assert result.status is RunStatus.ROLLED_BACK
    assert "web05" in result.failed_servers
    untouched = [h for h in inv.hosts if not any(r.start for r in result.ops_of(h))]
    assert untouched  # the stop kept later hosts from starting
    assert all(r.state is OpState.SKIPPED for h in untouched for r in result.ops_of(h))
