"""State providers against a real HTTP server on loopback whose answers change during the run."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from sysflow.engine.events import EventKind
from sysflow.engine.result import HostOutcome
from sysflow.engine.state import HttpStateProvider, StateMonitor
from sysflow.engine.states import OpState, RunStatus
from sysflow.errors import WorkflowError
from sysflow.model.inventory import Inventory
from sysflow.model.state_checks import CheckPoint, StateCheck
from sysflow.model.workflow import MaintenanceWorkflow
from tests.engine.conftest import max_concurrent, simulate

WAVES = [["db01"], ["db02", "db03"], ["db04", "db05", "db06", "db07"]]


class Endpoint:
    """A loopback HTTP server answering scripted JSON bodies, one per request (the last repeats)."""

    def __init__(self, answers: list[Any]) -> None:
        self.answers = answers
        self.requests = 0
        self.lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with endpoint.lock:
                    i = min(endpoint.requests, len(endpoint.answers) - 1)
                    endpoint.requests += 1
                answer = endpoint.answers[i]
                status, body = answer if isinstance(answer, tuple) else (200, json.dumps(answer))
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/status"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def endpoint_factory() -> Iterator[Any]:
    made: list[Endpoint] = []

    def make(answers: list[Any]) -> Endpoint:
        made.append(Endpoint(answers))
        return made[-1]

    yield make
    for e in made:
        e.close()


def _inventory() -> Inventory:
    inv = Inventory()
    inv.add_group("db", [h for w in WAVES for h in w])
    return inv


def _workflow(*checks: dict[str, Any], parallel: int = 10) -> MaintenanceWorkflow:
    wf = MaintenanceWorkflow("replica_aware")
    wf.add_task("upgrade", "apt-get -y upgrade")
    wf.set_progressive_execution({"groups": WAVES})
    wf.set_parallelization({"max_parallel_servers": parallel})
    wf.state_checks = [StateCheck.model_validate(c) for c in checks]
    return wf


def _first_start(sim: Any, hosts: list[str]) -> Any:
    return min(r.start for r in sim.result.ops.values() if r.host in hosts and r.start is not None)


def _last_end(sim: Any, hosts: list[str]) -> Any:
    return max(r.end for r in sim.result.ops.values() if r.host in hosts and r.end is not None)


async def test_a_lagging_replica_holds_the_next_wave_until_it_recovers(endpoint_factory: Any) -> None:
    lag = [
        {"replica_lag": 0},
        {"replica_lag": 0},
        {"replica_lag": 45},
        {"replica_lag": 30},
        {"replica_lag": 2},
    ]
    ep = endpoint_factory(lag)
    check = {"name": "replica_lag", "url": ep.url, "expect": "json.replica_lag < 10", "interval": "60s"}
    sim = await simulate(_workflow(check), _inventory())
    assert sim.result.status is RunStatus.COMPLETED, sim.result.reason
    # before wave 1 and 2: healthy; before wave 3: lagging, lagging, then recovered after two polls
    readings = [e.data["healthy"] for e in sim.events.of(EventKind.STATE_CHECKED)]
    assert readings == [True, True, False, False, True]
    assert ep.requests == 5
    held = _first_start(sim, WAVES[2]) - _last_end(sim, WAVES[1])
    assert timedelta(seconds=120) <= held < timedelta(seconds=125)


async def test_a_replica_that_never_recovers_stops_the_run_untouched(endpoint_factory: Any) -> None:
    ep = endpoint_factory([{"replica_lag": 99}])
    check = {
        "name": "replica_lag",
        "url": ep.url,
        "expect": "json.replica_lag < 10",
        "interval": "60s",
        "timeout": "5m",
        "waves": [2],
    }
    sim = await simulate(_workflow(check), _inventory())
    assert sim.result.status is RunStatus.FAILED
    assert "before wave 2: state check still failing after 300s: replica_lag" in sim.result.reason
    assert sim.touched() == {"db01"}
    assert ep.requests == 1 + 5  # wave 1 not checked (waves: [2]); 1 read + 5 polls before wave 2
    assert all(sim.result.hosts[h] is HostOutcome.NOT_STARTED for h in WAVES[1] + WAVES[2])


async def test_low_capacity_lowers_concurrency_for_the_rest_of_the_run(endpoint_factory: Any) -> None:
    ep = endpoint_factory([{"capacity": 10}, {"capacity": 1}, {"capacity": 10}])
    check = {
        "name": "cluster_capacity",
        "url": ep.url,
        "expect": "json.capacity >= 5",
        "action": "throttle",
        "capacity": 1,
    }
    wf = _workflow(check)
    wf.set_progressive_execution({"groups": [["db01", "db02", "db03"], ["db04", "db05"], ["db06", "db07"]]})
    sim = await simulate(wf, _inventory())
    assert sim.result.status is RunStatus.COMPLETED, sim.result.reason
    spans = {h: (r.start, r.end) for r in sim.result.ops.values() if (h := r.host) and r.start and r.end}
    assert max_concurrent([spans[h] for h in ("db01", "db02", "db03")]) == 3
    assert max_concurrent([spans[h] for h in ("db04", "db05")]) == 1  # throttled before wave 2
    assert max_concurrent([spans[h] for h in ("db06", "db07")]) == 1  # and it stays lowered
    lowered = [e for e in sim.events.of(EventKind.STATE_CHECKED) if e.data.get("throttled")]
    assert len(lowered) == 1 and lowered[0].wave == 1
    assert "max_parallel_servers lowered to 1" in lowered[0].message


async def test_a_failing_probe_skips_its_wave_and_the_rest_proceeds() -> None:
    check = {
        "name": "maintenance_flag",
        "command": "cat /etc/maintenance-ok",
        "expect": "ok and 'yes' in stdout",
        "action": "skip",
        "waves": [2],
    }
    sim = await simulate(_workflow(check), _inventory())
    assert sim.result.status is RunStatus.COMPLETED, sim.result.reason
    for host in WAVES[1]:
        rec = sim.result.ops[f"upgrade@{host}"]
        assert rec.state is OpState.SKIPPED
        assert rec.reason.startswith(
            "wave skipped: state check maintenance_flag: ok and 'yes' in stdout is false"
        )
        assert "apt-get -y upgrade" not in sim.commands(host)
    assert all(sim.result.ops[f"upgrade@{h}"].state is OpState.SUCCEEDED for h in WAVES[2])
    assert sim.commands("db02") == ["cat /etc/maintenance-ok"]  # probed on the wave's first host only


async def test_a_gate_check_that_stays_unhealthy_fails_the_gate(endpoint_factory: Any) -> None:
    ep = endpoint_factory([(503, "not json")])
    check = {
        "name": "lb_pool",
        "url": ep.url,
        "expect": "ok and json.members_up >= 2",
        "at": ["gate"],
        "interval": "30s",
        "timeout": "60s",
    }
    sim = await simulate(_workflow(check), _inventory())
    assert sim.result.status is RunStatus.FAILED
    assert "gate after wave 1 failed" in sim.result.reason
    assert "lb_pool" in sim.result.reason
    assert sim.touched() == {"db01"}


async def test_unreachable_endpoints_and_bad_answers_read_as_unhealthy(endpoint_factory: Any) -> None:
    ep = endpoint_factory([{"replica_lag": "x"}])
    check = StateCheck(name="lag", url=ep.url, expect="json.replica_lag < 10")
    reading = await HttpStateProvider(check).read([])
    assert not reading.healthy and "cannot compare" in reading.detail
    dead = StateCheck(name="dead", url="http://127.0.0.1:9/x", expect="ok", request_timeout=2)
    reading = await HttpStateProvider(dead).read([])
    assert not reading.healthy and "GET failed" in reading.detail


async def test_throttle_without_a_settable_admission_is_reported_not_raised(endpoint_factory: Any) -> None:
    from sysflow.sim.loop import current_virtual_clock

    ep = endpoint_factory([{"capacity": 0}])
    check = StateCheck(name="cap", url=ep.url, expect="json.capacity > 0", action="throttle", capacity=1)
    monitor = StateMonitor([(check, HttpStateProvider(check))], current_virtual_clock())
    seen: list[str] = []

    def emit(kind: EventKind, message: str = "", **fields: Any) -> None:
        seen.append(message)

    def refuse(key: str, value: float) -> None:
        from sysflow.errors import ConstraintError

        raise ConstraintError(f"no constraint instance {key!r}")

    await monitor.evaluate(CheckPoint.BEFORE_WAVE, 0, [], emit, None)
    await monitor.evaluate(CheckPoint.BEFORE_WAVE, 0, [], emit, refuse)
    assert any("cannot throttle" in m for m in seen)
    assert any("throttle failed" in m for m in seen)
    assert monitor.throttled == {}


def test_state_checks_are_validated() -> None:
    for bad, message in [
        ({"name": "x", "expect": "ok"}, "exactly one of url or command"),
        ({"name": "x", "url": "ftp://h/x", "expect": "ok"}, "must be http:// or https://"),
        ({"name": "x", "url": "http://h/x", "expect": "open('f')"}, "is not allowed"),
        ({"name": "x", "command": "true", "expect": "ok", "action": "throttle"}, "throttle needs a capacity"),
    ]:
        with pytest.raises(WorkflowError, match=message):
            MaintenanceWorkflow.from_yaml(f"name: x\nstate_checks:\n  - {json.dumps(bad)}\n")


async def test_a_failing_check_can_skip_one_group_of_a_wave() -> None:
    inv = Inventory()
    inv.add_group("primaries", ["db01", "db02"])
    inv.add_group("replicas", ["db03", "db04"])
    check = {
        "name": "replicas_in_sync",
        "command": "cat /etc/replicas-in-sync",
        "host": "db01",
        "expect": "ok",
        "action": "skip",
        "groups": ["replicas"],
    }
    wf = MaintenanceWorkflow("group_skip")
    wf.add_task("upgrade", "apt-get -y upgrade")
    wf.state_checks = [StateCheck.model_validate(check)]
    sim = await simulate(wf, inv)
    assert sim.result.status is RunStatus.COMPLETED, sim.result.reason
    assert sim.touched() == {"db01", "db02"}
    for host in ("db03", "db04"):
        assert sim.result.ops[f"upgrade@{host}"].state is OpState.SKIPPED
        assert sim.result.ops[f"upgrade@{host}"].reason.startswith(
            "group skipped: state check replicas_in_sync"
        )
    assert all(sim.result.ops[f"upgrade@{h}"].state is OpState.SUCCEEDED for h in ("db01", "db02"))
