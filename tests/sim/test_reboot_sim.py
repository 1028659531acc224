"""``reboot`` on the simulator, on virtual time, through the real engine and HostPools: a host that
takes 90 s to come back, one that never does (it fails at its timeout and the wave's max_failures
counts it), one whose connection drops only 20 s after the reboot command (not "rebooted" before it
went down), and ``only_if_required`` over the simulated reboot-required state."""

from __future__ import annotations

from typing import Any

from sysflow.engine.engine import Engine
from sysflow.engine.result import OpRecord, RunResult
from sysflow.model.inventory import Inventory
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.sim.fleet import SimFleet
from sysflow.sim.loop import current_virtual_clock, run_virtual
from sysflow.sim.profile import SimProfile
from sysflow.sim.transport import SimTransport

PROFILE = SimProfile.model_validate(
    {
        "hosts": [
            {"hosts": "never", "reboot": {"never": True}},
            {"hosts": "late", "reboot": {"drop_after": "20s", "down": "30s"}},
        ]
    }
)


def _workflow(reboot: dict[str, Any], max_failures: int = 0, **rollout: Any) -> MaintenanceWorkflow:
    return MaintenanceWorkflow.model_validate(
        {
            "name": "reboots",
            "become": True,
            "rollout": {"strategy": "rolling", "serial": [3], "max_failures": max_failures, **rollout},
            "tasks": [
                {"id": "reboot", "reboot": reboot},
                {"id": "after", "run": "uname -r", "depends_on": ["reboot"]},
            ],
        }
    )


def _run(hosts: list[str], wf: MaintenanceWorkflow, **setup: Any) -> tuple[RunResult, SimFleet, SimTransport]:
    inv = Inventory()
    inv.add_group("fleet", hosts)

    async def main() -> tuple[RunResult, SimFleet, SimTransport]:
        clock = current_virtual_clock()
        fleet = SimFleet(inv, PROFILE, seed=1, start=clock.start)
        for host, files in setup.items():
            fleet.state(host).files.update(files)
        transport = SimTransport(fleet, clock)
        result = await Engine(inv, transport=transport, clock=clock).run(wf)
        return result, fleet, transport

    return run_virtual(main())


def _op(result: RunResult, host: str, task: str = "reboot") -> OpRecord:
    (op,) = [r for r in result.ops.values() if r.host == host and r.task == task]
    return op


def _seconds(op: OpRecord) -> float:
    assert op.duration is not None
    return op.duration


def test_back_after_90_s_never_back_fails_at_its_timeout_and_a_late_drop_is_not_rebooted_early() -> None:
    wf = _workflow({"timeout": "5m"}, max_failures=1)
    result, fleet, transport = _run(["back", "never", "late"], wf)

    back = _op(result, "back")
    assert back.state.value == "succeeded", back
    assert back.stdout.startswith("::sysflow changed\n")
    assert f"boot id {_id(0)} -> {_id(1)}" in back.stdout
    assert 90 <= _seconds(back) < 110  # down the default 90 s, found within one poll interval
    assert fleet.state("back").reboots == 1 and _op(result, "back", "after").state.value == "succeeded"

    never = _op(result, "never")
    assert never.state.value == "failed"
    assert "never: reboot: did not come back with a new boot id within 300 s" in (never.error or "")
    assert "it went down after" in (never.error or "")
    assert 300 <= _seconds(never) < 302  # at its timeout, not before, not much after
    assert fleet.state("never").reboots == 0

    late = _op(result, "late")
    assert late.state.value == "succeeded", late
    polls = [r for r in transport.trace if r.host == "late" and r.command.startswith("cat -- ")]
    reboot_at = next(r.end for r in transport.trace if r.host == "late" and "systemctl reboot" in r.command)
    early = [r for r in polls if r.end < reboot_at + 20]
    assert early and all(r.stdout == f"{_id(0)}\n" for r in early)  # old boot answered: kept waiting
    assert _seconds(late) >= 20 + 30  # never reported before it went down (20 s) and came back (30 s)
    assert "went down after 2" in late.stdout  # the drop, seen at about 20 s

    # the never host is the wave's one tolerated failure: the others went on
    assert result.failed_servers == ["never"]


def test_the_never_host_counts_toward_the_wave_threshold() -> None:
    wf = _workflow({"timeout": "2m"}, max_failures=0)
    result, _, _ = _run(["never", "back", "late"], wf)
    assert "never" in result.failed_servers
    assert "max_failures" in result.reason, result.reason
    assert "1 of 3 hosts failed" in result.reason


def test_only_if_required_reboots_the_hosts_that_ask_and_reports_ok_elsewhere() -> None:
    wf = _workflow({"only_if_required": True})
    result, fleet, _ = _run(
        ["back", "late"], wf, back={"/var/run/reboot-required": "*** System restart required ***\n"}
    )
    assert "/var/run/reboot-required exists" in _op(result, "back").stdout
    assert fleet.state("back").reboots == 1 and "/var/run/reboot-required" not in fleet.state("back").files
    ok = _op(result, "late")
    assert ok.state.value == "succeeded" and ok.stdout == "::sysflow ok\nno reboot required\n"
    assert fleet.state("late").reboots == 0


def test_the_reboot_counts_in_the_hosts_predicted_chain() -> None:
    wf = _workflow({"timeout": "15m"})
    task = wf.task("reboot")
    assert (task.timeout, task.estimate) == (900.0, 120.0)


def _id(reboots: int) -> str:
    return f"5eb00700-0000-4000-8000-{reboots:012x}"
