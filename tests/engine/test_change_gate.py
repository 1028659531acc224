"""The change gate against a ServiceNow-shaped Table API on 127.0.0.1, on the simulator's clock:
approved, waiting then approved, rejected, outside its window, a host not covered, the API down;
and the ticket annotated and closed when the run ends: the engine attaches the closer itself to a
run whose workflow has ``change:``."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest

from sysflow.engine.engine import Engine
from sysflow.engine.events import EventKind, RecordingObserver
from sysflow.engine.result import HostOutcome
from sysflow.engine.states import RunStatus
from sysflow.model.change import ChangeTicket
from sysflow.model.inventory import Inventory
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.sim.fleet import SimFleet
from sysflow.sim.loop import current_virtual_clock
from sysflow.sim.profile import SimProfile
from sysflow.sim.transport import SimTransport
from tests.engine.conftest import SATURDAY_NOON, Sim
from tests.fixtures.http_server import RecordingHandler, serve

TOKEN = "snow-token-7c1e"
TICKET = "CHG0031234"
WAVES = [["web1"], ["web2", "web3"]]
IN_WINDOW = ("2026-11-28 11:00:00", "2026-11-28 18:00:00")  # around the simulator's Saturday noon


class ServiceNow(RecordingHandler):
    """change_request by number (states scripted per read, the last repeats), task_ci, PATCH."""

    states: ClassVar[list[tuple[str, str]]] = [("scheduled", "approved")]
    window: ClassVar[tuple[str, str]] = IN_WINDOW
    items: ClassVar[list[str]] = ["web1", "web2", "web3"]
    reads: ClassVar[int] = 0
    patched: ClassVar[list[dict[str, Any]]] = []

    def page(self, body: bytes) -> None:
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.send_text(401, '{"error": {"message": "User Not Authenticated"}}')
            return
        url = urlsplit(self.path)
        query = parse_qs(url.query).get("sysparm_query", [""])[0]
        if self.command == "PATCH" and url.path == f"/api/now/table/change_request/sys-{TICKET}":
            ServiceNow.patched.append(json.loads(body))
            self.send_text(200, json.dumps({"result": {"number": TICKET}}))
        elif url.path == "/api/now/table/change_request" and query == f"number={TICKET}":
            state, approval = ServiceNow.states[min(ServiceNow.reads, len(ServiceNow.states) - 1)]
            ServiceNow.reads += 1
            record = {"number": TICKET, "sys_id": f"sys-{TICKET}", "state": state, "approval": approval,
                      "start_date": self.window[0], "end_date": self.window[1]}  # fmt: skip
            self.send_text(200, json.dumps({"result": [record]}))
        elif url.path == "/api/now/table/task_ci" and query == f"task=sys-{TICKET}":
            self.send_text(200, json.dumps({"result": [{"ci_item.name": n} for n in self.items]}))
        elif url.path == "/api/now/table/change_request":
            self.send_text(200, '{"result": []}')  # a query that matches nothing
        else:
            self.send_text(404, '{"error": {"message": "No Record found"}}')

    do_PATCH = RecordingHandler._answer


@pytest.fixture
def snow(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("SYSFLOW_CHANGE_TOKEN", TOKEN)
    ServiceNow.states, ServiceNow.window = [("scheduled", "approved")], IN_WINDOW
    ServiceNow.items, ServiceNow.reads, ServiceNow.patched = ["web1", "web2", "web3"], 0, []
    with serve(ServiceNow) as url:
        yield url


def workflow(url: str, **change: Any) -> MaintenanceWorkflow:
    wf = MaintenanceWorkflow("patch")
    wf.add_task("upgrade", "apt-get -y upgrade")
    wf.set_progressive_execution({"groups": WAVES})
    wf.change = ChangeTicket(
        url=url, ticket=TICKET, poll=60, wait=600, report_url="https://reports/r1", **change
    )
    return wf


async def run(wf: MaintenanceWorkflow, profile: SimProfile | None = None) -> Sim:
    inventory = Inventory()
    inventory.add_group("web", [h for w in WAVES for h in w])
    clock = current_virtual_clock()
    if clock.now() < SATURDAY_NOON:
        current_loop = __import__("asyncio").get_running_loop()
        current_loop.advance((SATURDAY_NOON - clock.now()).total_seconds())
    fleet = SimFleet(inventory, profile, seed=1, start=clock.start)
    transport = SimTransport(fleet, clock)
    events = RecordingObserver()
    engine = Engine(inventory, transport=transport, clock=clock, observers=[events])
    result = await engine.prepare(wf).execute()
    assert not any(type(o).__name__ == "ChangeTicketCloser" for o in engine.bus._observers)  # left
    return Sim(result, events, transport, fleet, engine)


async def test_an_approved_ticket_lets_every_wave_go_and_is_closed_at_the_end(
    snow: str, caplog: pytest.LogCaptureFixture
) -> None:
    sim = await run(workflow(snow))
    assert sim.result.status is RunStatus.COMPLETED, sim.result.reason
    assert ServiceNow.reads == 2 + 1  # before each wave, then the closer finds the ticket
    checked = [e.message for e in sim.events.of(EventKind.STATE_CHECKED)]
    assert checked[0] == f"change {TICKET} is scheduled, 1 hosts covered"
    assert ServiceNow.patched == [
        {
            "work_notes": f"sysflow run {sim.result.run_id}: completed; report: https://reports/r1",
            "state": "review",
        }
    ]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_failed_run_writes_work_notes_with_its_report_and_leaves_the_state(snow: str) -> None:
    wf = workflow(snow)
    wf.change = wf.change.model_copy(update={"report_url": "https://sysflow/runs/{run_id}/report"})  # type: ignore[union-attr]
    sim = await run(wf, SimProfile(failure_probability={"upgrade_packages": 1.0}))
    assert sim.result.status in (RunStatus.FAILED, RunStatus.ROLLED_BACK), sim.result.status
    rid = sim.result.run_id
    assert len(ServiceNow.patched) == 1
    note = ServiceNow.patched[0]["work_notes"]
    assert note.startswith(f"sysflow run {rid}: {sim.result.status.value}")
    assert note.endswith(f"; report: https://sysflow/runs/{rid}/report")
    assert "state" not in ServiceNow.patched[0]


async def test_a_ticket_not_yet_approved_holds_then_proceeds(snow: str) -> None:
    ServiceNow.states = [("assess", "requested"), ("authorize", "requested"), ("scheduled", "approved")]
    sim = await run(workflow(snow))
    assert sim.result.status is RunStatus.COMPLETED, sim.result.reason
    readings = [e.data["healthy"] for e in sim.events.of(EventKind.STATE_CHECKED)]
    assert readings == [False, False, True, True]
    first = min(r.start for r in sim.result.ops.values() if r.start is not None)
    assert first - SATURDAY_NOON >= timedelta(seconds=120)  # two polls, 60 s apart
    assert "waiting for approval" in sim.events.of(EventKind.STATE_CHECKED)[0].message


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        (lambda: setattr(ServiceNow, "states", [("assess", "rejected")]), f"change {TICKET} is rejected"),
        (lambda: setattr(ServiceNow, "states", [("canceled", "approved")]), f"change {TICKET} is canceled"),
        (
            lambda: setattr(ServiceNow, "window", ("2026-11-29 01:00:00", "2026-11-29 03:00:00")),
            "is outside its window 2026-11-29 01:00:00 - 2026-11-29 03:00:00",
        ),
        (lambda: setattr(ServiceNow, "window", ("", "")), "outside its window ? - ?"),
        (lambda: setattr(ServiceNow, "items", ["web1", "web2"]), f"change {TICKET} does not cover web3"),
    ],
)
async def test_the_run_stops_naming_the_ticket(snow: str, setup: Any, reason: str) -> None:
    setup()
    sim = await run(workflow(snow))
    assert sim.result.status is RunStatus.FAILED
    assert reason in sim.result.reason
    stopped_before = 1 if "web3" in reason else 0
    touched = {h for w in WAVES[:stopped_before] for h in w}
    assert sim.touched() == touched
    assert ServiceNow.patched[0]["work_notes"].startswith(f"sysflow run {sim.result.run_id}: failed (")
    assert "state" not in ServiceNow.patched[0]
    if not touched:
        assert all(sim.result.hosts[h] is HostOutcome.NOT_STARTED for w in WAVES for h in w)


async def test_a_down_api_refuses_by_default_and_proceeds_when_told(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SYSFLOW_CHANGE_TOKEN", TOKEN)
    sim = await run(workflow("http://127.0.0.1:9", request_timeout=2))
    assert sim.result.status is RunStatus.FAILED
    assert f"change {TICKET}: cannot be read (ConnectError" in sim.result.reason
    assert "on_error: refuse" in sim.result.reason
    assert not sim.touched()
    assert f"change {TICKET}: cannot update (ConnectError" in caplog.text  # logged; the result stands
    sim = await run(workflow("http://127.0.0.1:9", request_timeout=2, on_error="proceed"))
    assert sim.result.status is RunStatus.COMPLETED


async def test_a_wrong_token_or_missing_ticket_is_refused(snow: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYSFLOW_CHANGE_TOKEN", "wrong")
    sim = await run(workflow(snow))
    assert "cannot be read (HTTP 401" in sim.result.reason
    monkeypatch.delenv("SYSFLOW_CHANGE_TOKEN")
    sim = await run(workflow(snow))
    assert "set the environment variable SYSFLOW_CHANGE_TOKEN" in sim.result.reason
    monkeypatch.setenv("SYSFLOW_CHANGE_TOKEN", TOKEN)
    wf = workflow(snow)
    wf.change = wf.change.model_copy(update={"ticket": "CHG0000000"})  # type: ignore[union-attr]
    sim = await run(wf)
    assert "cannot be read (no change request CHG0000000)" in sim.result.reason
