"""The REST API through a real uvicorn server on 127.0.0.1 with httpx: tokens, roles, actions,
audit, four eyes, the live stream with resume, metrics, and a simulated run steered end to end."""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import aclosing
from typing import Any

import httpx
import pytest
import websockets

from tests.service.conftest import PEOPLE, SUNDAY, Service, stream

pytestmark = pytest.mark.slow

NO_RUN = "/api/v1/runs/no-such-run"
# (method, path, body, roles allowed); an allowed call may still fail for its own reason (404, 409)
MATRIX: list[tuple[str, str, Any, set[str]]] = [
    ("GET", "/api/v1/runs", None, set(PEOPLE.values())),
    ("GET", "/api/v1/schedules", None, set(PEOPLE.values())),
    ("GET", "/api/v1/audit", None, set(PEOPLE.values())),
    ("GET", "/api/v1/workflows", None, set(PEOPLE.values())),
    ("GET", "/api/v1/inventories/example", None, set(PEOPLE.values())),
    ("GET", "/api/v1/openapi.json", None, set(PEOPLE.values())),
    ("GET", "/metrics", None, set(PEOPLE.values())),
    ("GET", NO_RUN, None, set(PEOPLE.values())),
    ("GET", NO_RUN + "/hosts/web01", None, set(PEOPLE.values())),
    ("GET", "/api/v1/audit/verify", None, {"admin"}),
    ("POST", "/api/v1/runs", {"workflow": "nope", "inventory": "example"}, {"admin", "operator"}),
    ("POST", NO_RUN + "/pause", {}, {"admin", "operator"}),
    ("POST", NO_RUN + "/resume", {}, {"admin", "operator"}),
    ("POST", NO_RUN + "/cancel", {}, {"admin", "operator"}),
    ("POST", NO_RUN + "/approve", {"comment": "ok"}, {"admin", "approver"}),
    ("POST", NO_RUN + "/reject", {"comment": "no"}, {"admin", "approver"}),
    ("POST", "/api/v1/schedules/nightly/pause", {}, {"admin", "operator"}),
    ("POST", "/api/v1/schedules/nightly/resume", {}, {"admin", "operator"}),
    ("PUT", "/api/v1/inventories/other", "[web]\nweb01\n", {"admin", "operator"}),
]


def test_only_the_health_check_answers_without_a_token(service: Service) -> None:
    with service.client(None) as anonymous:
        assert anonymous.get("/healthz").json() == {"ok": True}
        for method, path, _body, _ in MATRIX:
            assert anonymous.request(method, path).status_code == 401, path
        bad = anonymous.get("/api/v1/runs", headers={"Authorization": "Bearer sft_000000000000_" + "x" * 43})
        assert bad.status_code == 401


@pytest.mark.parametrize("person", sorted(PEOPLE))
def test_every_role_is_allowed_and_refused_as_its_grants_say(service: Service, person: str) -> None:
    role = PEOPLE[person]
    with service.client(person) as client:
        for method, path, body, roles in MATRIX:
            kw: dict[str, Any] = {"content": body} if isinstance(body, str) else {"json": body}
            found = client.request(method, path, **kw)
            if role in roles:
                assert found.status_code != 403, (role, path, found.text)
                assert found.status_code in (200, 202, 404, 409), (role, path, found.text)
            else:
                assert found.status_code == 403, (role, path, found.text)
                assert f"role {role} may not" in found.json()["error"]


def test_openapi_lists_every_endpoint(service: Service) -> None:
    with service.client("vic") as viewer:
        doc = viewer.get("/api/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert {"post"} <= set(doc["paths"]["/api/v1/runs/{run_id}/approve"])
    assert "/api/v1/runs/{run_id}/events" in doc["paths"]


def test_a_bad_workflow_is_refused_with_the_problems_the_cli_prints(service: Service) -> None:
    with service.client("olga") as operator:
        bad = operator.put("/api/v1/workflows/broken", content="name: x\ntasks:\n  - id: a\n    rn: true\n")
        assert bad.status_code == 422
        assert any("broken" in p and "rn" in p for p in bad.json()["problems"]), bad.json()
        operator.put("/api/v1/inventories/tiny", content="[web_servers]\nweb01\n").raise_for_status()
        refused = operator.post("/api/v1/runs", json={"workflow": "patching", "inventory": "tiny"})
    assert refused.status_code == 422
    assert any("db_servers" in p for p in refused.json()["problems"]), refused.json()


async def _events(
    url: str, token: str, *, after: int | None, until: str, most: int | None = None
) -> list[dict[str, Any]]:
    """Events from the run's WebSocket until one of kind ``until`` (or ``most`` of them)."""
    query = f"?after={after}" if after is not None else ""
    found: list[dict[str, Any]] = []
    async with aclosing(stream(url + query, token, 120)) as events:
        async for text in events:
            found.append(json.loads(text))
            if found[-1]["kind"] == until or (most is not None and len(found) >= most):
                return found
    raise AssertionError(f"the stream ended before an event of kind {until}")


def _wait_status(client: httpx.Client, run_id: str, *states: str) -> dict[str, Any]:
    for _ in range(1200):
        found = client.get(f"/api/v1/runs/{run_id}")
        run: dict[str, Any] = found.json().get("run", {}) if found.status_code == 200 else {}
        if run.get("status") in states:
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} never became {states}: {run}")


def test_a_simulated_run_is_started_watched_approved_with_four_eyes_and_audited(service: Service) -> None:
    ws_base = service.url.replace("http", "ws")
    with service.client("alice") as alice, service.client("bob") as bob:
        started = alice.post("/api/v1/runs", json={"workflow": "patching", "inventory": "example",
                                                  "simulate": True, "pace": 0.002, "start": SUNDAY})  # fmt: skip
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        url = f"{ws_base}/api/v1/runs/{run_id}/events"
        # a client reads a few events, goes away, and comes back with its last event id
        first = asyncio.run(_events(url, service.tokens["vic"], after=0, until="approval_requested", most=5))
        rest = asyncio.run(
            _events(url, service.tokens["vic"], after=first[-1]["id"], until="approval_requested")
        )
        refused = alice.post(f"/api/v1/runs/{run_id}/approve", json={"comment": "mine"})
        assert refused.status_code == 403
        assert "four eyes" in refused.json()["error"]
        wave = rest[-1]["wave"] + 1
        approved = bob.post(f"/api/v1/runs/{run_id}/approve", json={"wave": wave, "comment": "canary fine"})
        assert approved.status_code == 200, approved.text
        after = asyncio.run(_events(url, service.tokens["vic"], after=rest[-1]["id"], until="worker_exited"))
        whole = asyncio.run(_events(url, service.tokens["vic"], after=0, until="worker_exited"))
        assert [e["id"] for e in first + rest + after] == [e["id"] for e in whole]  # nothing missed
        assert {e["run_id"] for e in whole} == {run_id}
        run = _wait_status(alice, run_id, "completed", "completed_with_failures")
        detail = alice.get(f"/api/v1/runs/{run_id}").json()
        assert len(detail["hosts"]) == 14 and {h["state"] for h in detail["hosts"]} <= {
            "succeeded",
            "skipped",
        }
        assert detail["ops"][0]["planned_start"] is not None and detail["ops"][0]["start"] is not None
        host = alice.get(f"/api/v1/runs/{run_id}/hosts/web01").json()
        assert host["host"] == "web01.example.com" and host["ops"]
        records = alice.get("/api/v1/audit", params={"run": run_id}).json()["records"]
        verified = alice.get("/api/v1/audit/verify").json()
        metrics = alice.get("/metrics").text
    assert run["status"] in ("completed", "completed_with_failures")
    by_action = {(r["action"], r["outcome"].split(":")[0]): r["who"] for r in records}
    assert by_action[("service.start", "ok")].startswith("alice (token ")
    assert by_action[("service.approve", "refused")].startswith("alice (token ")
    assert by_action[("service.approve", "ok")].startswith("bob (token ")
    assert any(r["action"] == "op_finished" and r["who"].startswith("alice") for r in records)
    assert verified["intact"] is True
    assert 'sysflow_operations_total{state="succeeded",task="backup"}' in metrics
    assert "sysflow_stream_clients" in metrics and "sysflow_run_wave" in metrics


def test_an_operator_pauses_resumes_and_cancels_a_live_run(service: Service) -> None:
    inventory = "[web_servers]\nweb[21:24]\n[db_servers]\ndb21\n[cache_servers]\ncache21\n"
    with service.client("olga") as olga, service.client("vic") as vic:
        olga.put("/api/v1/inventories/second", content=inventory).raise_for_status()
        run_id = olga.post("/api/v1/runs", json={"workflow": "patching", "inventory": "second",
                                                 "simulate": True, "pace": 0.002, "start": SUNDAY}).json()["run_id"]  # fmt: skip
        _wait_status(olga, run_id, "running", "paused")
        assert vic.post(f"/api/v1/runs/{run_id}/pause").status_code == 403
        assert olga.post(f"/api/v1/runs/{run_id}/pause").status_code == 200
        assert olga.post(f"/api/v1/runs/{run_id}/pause").status_code == 409  # already paused
        assert olga.post(f"/api/v1/runs/{run_id}/resume").status_code == 200
        assert olga.post(f"/api/v1/runs/{run_id}/cancel").status_code == 200
        run = _wait_status(olga, run_id, "cancelled")
        again = olga.post(f"/api/v1/runs/{run_id}/cancel")
        records = olga.get("/api/v1/audit", params={"run": run_id, "who": "olga"}).json()["records"]
    assert run["status"] == "cancelled"
    assert again.status_code == 409 and "already cancelled" in again.json()["error"]
    assert [r["action"] for r in records if r["action"].startswith("service.")] == [
        "service.start", "service.pause", "service.pause", "service.resume", "service.cancel", "service.cancel"]  # fmt: skip


def test_the_token_strings_are_in_no_file(service: Service) -> None:
    files = [p for p in service.root.rglob("*") if p.is_file()]
    assert files
    for token in service.tokens.values():
        secret = token.rsplit("_", 1)[1].encode()
        assert not [p for p in files if secret in p.read_bytes()]


def test_the_event_stream_is_not_compressed_per_watcher(service: Service) -> None:
    """The client offers permessage-deflate (the websockets library does by default); the service
    declines: compressing every message for every watcher would cost it more than the engine."""

    async def extensions() -> str | None:
        auth = {"Authorization": f"Bearer {service.tokens['vic']}"}
        async with websockets.connect(
            f"{service.url.replace('http', 'ws')}/api/v1/events", additional_headers=auth
        ) as ws:
            assert (
                ws.request is not None
                and "permessage-deflate" in ws.request.headers["Sec-WebSocket-Extensions"]
            )
            assert ws.response is not None
            return ws.response.headers.get("Sec-WebSocket-Extensions")

    assert asyncio.run(extensions()) is None
