"""A run started through the service against real SSH hosts (the session's sshd on loopback): its
worker process connects with the service's key and known_hosts, the run completes, each host's
output tail is readable through the API, and a host nobody listens for is counted in /metrics as an
SSH connect failure, with its error in the run's detail."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sysflow.service.config import ServiceConfig
from sysflow.service.runs import OUTPUT_TAIL
from sysflow.service.tokens import TokenStore
from tests.fixtures.sshd import SSHD
from tests.service.conftest import serve, stop

pytestmark = [pytest.mark.ssh, pytest.mark.slow]

WORKFLOW = """name: ssh_hello
tasks:
  - id: hello
    run: echo "hello from {{ host }}"; echo "a warning" >&2; seq 1 1000
    expected_duration: 5s
  - id: bye
    run: echo "bye $(id -un)"
    depends_on: [hello]
    expected_duration: 5s
rollout:
  max_failures: 1
  failure_budget: "50%"          # the unreachable host is one of four
"""
HOSTS = ["h0001", "h0002", "h0003"]


def _closed_port() -> int:
    with socket.socket() as s:  # bound, never listening: a connection is refused
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture
def ssh_service(sshd: SSHD, tmp_path: Path) -> Iterator[tuple[str, str]]:
    config = ServiceConfig(store=tmp_path / "state.db", data=tmp_path / "service", key=sshd.client_key,
                           known_hosts=sshd.known_hosts)  # fmt: skip
    tokens = TokenStore(config.tokens)
    token = tokens.create("olga", "operator")[1]
    tokens.close()
    server, url = serve(config)
    yield url, token
    stop(server)


def _wait_finished(client: httpx.Client, run_id: str) -> dict[str, Any]:
    for _ in range(600):  # 60 s at most
        run: dict[str, Any] = client.get(f"/api/v1/runs/{run_id}").json()["run"]
        if run["status"] not in ("pending", "running") and not run["controller_alive"]:
            return run
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish: {run}")


def test_a_run_over_real_ssh_completes_with_each_hosts_output_through_the_api(
    sshd: SSHD, ssh_service: tuple[str, str]
) -> None:
    url, token = ssh_service
    lines = [
        f"{h} ansible_host={sshd.address_of(h)} ansible_port={sshd.port} ansible_user=root" for h in HOSTS
    ]
    inventory = (
        "[web]\n"
        + "\n".join(lines)
        + f"\n[lost]\ngone01 ansible_host=127.0.0.1 ansible_port={_closed_port()}\n"
    )
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        client.put("/api/v1/workflows/ssh_hello", content=WORKFLOW).raise_for_status()
        client.put("/api/v1/inventories/fleet", content=inventory).raise_for_status()
        started = client.post("/api/v1/runs", json={"workflow": "ssh_hello", "inventory": "fleet"})
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        run = _wait_finished(client, run_id)
        detail = client.get(f"/api/v1/runs/{run_id}").json()
        host = client.get(f"/api/v1/runs/{run_id}/hosts/h0002").json()
        metrics = client.get("/metrics").text
    assert run["status"] == "completed_with_failures", run
    hello = {o["host"]: o for o in detail["ops"] if o["task"] == "hello"}
    for name in HOSTS:
        op = hello[name]
        assert op["state"] == "succeeded" and op["exit_status"] == 0
        assert op["stdout"].endswith("999\n1000\n") and len(op["stdout"]) == OUTPUT_TAIL  # the tail
        assert op["stderr"] == "a warning\n"
    bye = {o["host"]: (o["state"], o["stdout"]) for o in detail["ops"] if o["task"] == "bye"}
    assert bye == {**dict.fromkeys(HOSTS, ("succeeded", "bye root\n")), "gone01": ("skipped", "")}
    assert [o["task"] for o in host["ops"]] == ["hello", "bye"]
    assert host["ops"][0]["stdout"].endswith("1000\n") and host["ops"][1]["stdout"] == "bye root\n"
    gone = next(h for h in detail["hosts"] if h["host"] == "gone01")
    assert gone["state"] == "failed" and gone["error"].startswith("HostUnreachable: ")
    failures = {
        s.labels["kind"]: s.value
        for f in text_string_to_metric_families(metrics)
        for s in f.samples
        if s.name == "sysflow_ssh_connect_failures_total"
    }
    assert failures == {"HostUnreachable": 1.0}
