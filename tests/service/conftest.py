"""A real service: uvicorn on 127.0.0.1 in a thread (its own event loop), tokens for every role, the
example workflow and inventory stored. Runs it starts execute in real worker processes."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
import websockets

from sysflow.service.app import SERVER_OPTIONS, create_app
from sysflow.service.config import ServiceConfig
from sysflow.service.tokens import TokenStore

EXAMPLES = Path(__file__).parents[2] / "examples"
SUNDAY = "2026-12-06T00:00:00+00:00"  # the example's web window is open (01:00-03:00 Amsterdam)


@dataclass
class Service:
    url: str
    root: Path
    config: ServiceConfig
    tokens: dict[str, str]  # person -> token string

    def client(self, who: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30.0)


def serve(config: ServiceConfig) -> tuple[uvicorn.Server, str]:
    """uvicorn serving ``config``'s app on a free loopback port, in a thread; the server and its URL.

    The port is uvicorn's own pick (``port=0``), not a socket handed in: connections accepted on a
    handed-in socket lack TCP_NODELAY, and every request after the first on a kept-alive connection
    then waits ~40 ms for a delayed ACK."""
    server = uvicorn.Server(uvicorn.Config(create_app(config), host="127.0.0.1", port=0, **SERVER_OPTIONS))
    thread = threading.Thread(target=server.run, daemon=True, name="uvicorn")
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the service did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    server.thread = thread  # type: ignore[attr-defined]
    return server, f"http://127.0.0.1:{port}"


async def stream(url: str, token: str, timeout: float = 60.0) -> AsyncIterator[str]:
    """A run's WebSocket stream, event by event as sent (each message is NDJSON, one event a line);
    each message must come within ``timeout`` seconds. Stop iterating to go away."""
    # max_queue=None: a client that stops reading still reads the server's close reply (with a
    # bounded queue it pauses reading once 16 unread messages wait, and its close waits 10 s)
    auth = {"Authorization": f"Bearer {token}"}
    async with websockets.connect(url, additional_headers=auth, max_queue=None) as ws:
        while True:
            for line in str(await asyncio.wait_for(ws.recv(), timeout)).split("\n"):
                yield line


def stop(server: uvicorn.Server) -> None:
    """Stop a server :func:`serve` started (its lifespan stops the workers) and wait for its thread."""
    server.should_exit = True
    thread: threading.Thread = server.thread  # type: ignore[attr-defined]
    thread.join(15)
    if thread.is_alive():
        import faulthandler
        import sys

        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        raise AssertionError("server did not stop")


PEOPLE = {"alice": "admin", "olga": "operator", "bob": "approver", "vic": "viewer"}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("service")
    config = ServiceConfig(store=root / "state.db", data=root / "service")
    store = TokenStore(config.tokens)
    tokens = {name: store.create(name, role)[1] for name, role in PEOPLE.items()}
    store.close()
    server, url = serve(config)
    svc = Service(url, root, config, tokens)
    with svc.client("alice") as admin:
        admin.put(
            "/api/v1/workflows/patching", content=(EXAMPLES / "patching.yaml").read_text()
        ).raise_for_status()
        admin.put(
            "/api/v1/inventories/example", content=(EXAMPLES / "inventory.ini").read_text()
        ).raise_for_status()
    yield svc
    stop(server)
