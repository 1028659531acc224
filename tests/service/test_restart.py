"""The event history survives a restart of the service: a client reads a few events of a run, goes
away, the service (a real uvicorn) stops and starts again on the same data directory, and the client
resuming from its last event id gets every event it missed, as they were, with no gap; ids go on."""

from __future__ import annotations

import asyncio
import json
from contextlib import aclosing
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from sysflow.service.config import ServiceConfig
from sysflow.service.tokens import TokenStore
from tests.service.conftest import EXAMPLES, SUNDAY, serve, stop, stream

pytestmark = pytest.mark.slow


async def _read(url: str, token: str, count: int) -> list[str]:
    """The first ``count`` events of the stream (each message within 20 s), as sent."""
    found: list[str] = []
    async with aclosing(stream(url, token, 20)) as events:  # closed at once when done
        async for text in events:
            found.append(text)
            if len(found) == count:
                break
    return found


async def _message(url: str, token: str) -> str:
    """The stream's first WebSocket message, as sent."""
    auth = {"Authorization": f"Bearer {token}"}
    async with websockets.connect(url, additional_headers=auth, max_queue=None) as ws:
        return str(await asyncio.wait_for(ws.recv(), 20))


OTHER_HOSTS = "[web_servers]\nweb[21:24]\n[db_servers]\ndb21\n[cache_servers]\ncache21\n"


def _start(url: str, token: str, inventory: str, hosts: str | None = None) -> str:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        client.put("/api/v1/workflows/patching", content=(EXAMPLES / "patching.yaml").read_text())
        client.put(
            f"/api/v1/inventories/{inventory}", content=hosts or (EXAMPLES / "inventory.ini").read_text()
        )
        found = client.post("/api/v1/runs", json={"workflow": "patching", "inventory": inventory,
                                                  "simulate": True, "start": SUNDAY})  # fmt: skip
        assert found.status_code == 202, found.text
        run_id: str = found.json()["run_id"]
        return run_id


def _kept(server: Any, run_id: str) -> list[str]:
    return [p.text for p in server.config.app.state.ctx.hub.events(run_id)]


def test_a_client_resuming_after_a_restart_gets_the_events_it_missed(tmp_path: Path) -> None:
    config = ServiceConfig(store=tmp_path / "state.db", data=tmp_path / "service")
    tokens = TokenStore(config.tokens)
    token = tokens.create("alice", "admin")[1]
    tokens.close()
    server, url = serve(config)
    run_id = _start(url, token, "example")
    ws = f"{url.replace('http', 'ws')}/api/v1/runs/{run_id}/events"
    seen = asyncio.run(_read(ws + "?after=0", token, 5))  # then the client goes away
    for _ in range(200):  # the run goes on to wait for the approval of wave 2 (20 s at most)
        if '"approval_requested"' in _kept(server, run_id)[-1]:
            break
        asyncio.run(asyncio.sleep(0.1))
    stop(server)  # its worker is stopped too: the run is interrupted, its exit an event
    before = _kept(server, run_id)
    assert json.loads(before[-1])["kind"] == "worker_exited"
    missed = before[5:]
    assert len(missed) > 20 and before[:5] == seen

    again, url = serve(config)  # the same data directory, a new process state
    try:
        ws = f"{url.replace('http', 'ws')}/api/v1/runs/{run_id}/events"
        last = json.loads(seen[-1])["id"]
        assert asyncio.run(_read(f"{ws}?after={last}", token, len(missed))) == missed
        # what waited for the client came in one message, an event a line (a burst is one write)
        assert asyncio.run(_message(f"{ws}?after={last}", token)).split("\n") == missed
        sse_url = f"{url}/api/v1/runs/{run_id}/events"
        auth = {"Authorization": f"Bearer {token}", "Last-Event-ID": str(last)}
        with httpx.stream("GET", sse_url, headers=auth, timeout=20) as sse:  # what a browser does
            lines = sse.iter_lines()
            assert next(lines) == ": connected"
            assert next(lines) == "" and next(lines) == f"id: {last + 1}"
            assert next(lines) == f"data: {missed[0]}"
        second = _start(url, token, "again", OTHER_HOSTS)  # a new run's events go on from the last id
        first_new = json.loads(asyncio.run(_read(f"{ws.replace(run_id, second)}?after=0", token, 1))[0])
        assert first_new["id"] > json.loads(before[-1])["id"] and first_new["kind"] == "run_started"
    finally:
        stop(again)
    files = sorted(p.name for p in config.events.iterdir())
    assert files == sorted(f"{r}.jsonl" for r in (run_id, second))
