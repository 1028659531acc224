"""A real service: uvicorn on 127.0.0.1 in a thread (its own event loop), tokens for every role, the
example workflow and inventory stored. Runs it starts execute in real worker processes."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from sysflow.service.app import create_app
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


PEOPLE = {"alice": "admin", "olga": "operator", "bob": "approver", "vic": "viewer"}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("service")
    config = ServiceConfig(store=root / "state.db", data=root / "service")
    store = TokenStore(config.tokens)
    tokens = {name: store.create(name, role)[1] for name, role in PEOPLE.items()}
    store.close()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(config), log_level="warning", ws="websockets-sansio"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    svc = Service(f"http://127.0.0.1:{sock.getsockname()[1]}", root, config, tokens)
    with svc.client("alice") as admin:
        admin.put(
            "/api/v1/workflows/patching", content=(EXAMPLES / "patching.yaml").read_text()
        ).raise_for_status()
        admin.put(
            "/api/v1/inventories/example", content=(EXAMPLES / "inventory.ini").read_text()
        ).raise_for_status()
    yield svc
    server.should_exit = True
    thread.join(5)
    if thread.is_alive():
        import faulthandler
        import sys

        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        raise AssertionError("server did not stop")
