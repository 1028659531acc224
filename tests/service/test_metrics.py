"""``/metrics`` with real values: a simulated run of the example started through the service, the
metrics scraped with httpx and parsed with prometheus_client's parser, against what the run's own
event stream says (admission waits and queue, the canary's window, stream clients, operations)."""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import aclosing
from datetime import datetime
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.service.conftest import SUNDAY, Service, stream

pytestmark = pytest.mark.slow

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _scrape(client: httpx.Client) -> Samples:
    found = client.get("/metrics")
    assert found.status_code == 200 and found.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(found.text)
        for s in family.samples
    }


def _settled(client: httpx.Client) -> Samples:
    """A scrape once the service noticed the stream client that just closed (within 5 s)."""
    for _ in range(50):
        found = _scrape(client)
        if _one(found, "sysflow_stream_clients") == 0:
            return found
        time.sleep(0.1)
    return found


def _one(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


async def _watch(url: str, token: str, until: str, scrape: Any) -> tuple[list[dict[str, Any]], Samples]:
    """The run's events until one of kind ``until``; then, still connected, a scrape."""
    found: list[dict[str, Any]] = []
    async with aclosing(stream(url, token)) as events:
        async for text in events:
            found.append(json.loads(text))
            if found[-1]["kind"] == until:
                return found, await asyncio.to_thread(scrape)
    raise AssertionError(f"the stream ended before an event of kind {until}")


def _admitted(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["data"] for e in events if e["kind"] == "op_progress" and e["data"]["step"] == "admitted"]


def test_metrics_carry_the_runs_admissions_windows_hosts_and_stream_clients(service: Service) -> None:
    with service.client("alice") as alice, service.client("bob") as bob, service.client("vic") as vic:
        started = alice.post("/api/v1/runs", json={"workflow": "patching", "inventory": "example",
                                                  "simulate": True, "start": SUNDAY})  # fmt: skip
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        url = f"{service.url.replace('http', 'ws')}/api/v1/runs/{run_id}/events?after=0"
        # the run waits for the approval of wave 2: a fixed point to compare against
        first, mid = asyncio.run(
            _watch(url, service.tokens["vic"], "approval_requested", lambda: _scrape(vic))
        )
        bob.post(f"/api/v1/runs/{run_id}/approve", json={"wave": 2, "comment": "ok"}).raise_for_status()
        whole, _ = asyncio.run(_watch(url, service.tokens["vic"], "worker_exited", lambda: None))
        end = _settled(vic)
    run = {"run": run_id}
    assert _one(mid, "sysflow_stream_clients") == 1  # the watcher, connected while scraped
    assert _one(end, "sysflow_stream_clients") == 0
    # the canary (web01) ran in its window, Sunday 01:00-03:00 Amsterdam: 02:00 UTC; the run's clock
    # stands at its last event (the approval request), plus the few real seconds since
    admitted = _admitted(first)
    assert {a["window_end"] for a in admitted} == {"2026-12-06T02:00:00+00:00"}
    left = datetime.fromisoformat("2026-12-06T02:00:00+00:00") - datetime.fromisoformat(first[-1]["at"])
    assert 0 <= left.total_seconds() - _one(mid, "sysflow_window_seconds_left", **run) < 30
    assert _one(end, "sysflow_window_seconds_left", **run) == 0  # the run is over
    # admission: one observation per admitted operation, the waits as the events said them
    every = _admitted(whole)
    assert len(admitted) == 5 and len(every) == 68
    assert _one(mid, "sysflow_admission_wait_seconds_count") == 5
    assert _one(end, "sysflow_admission_wait_seconds_count") == 68 == _one(end, "sysflow_admissions_total")
    assert _one(end, "sysflow_admission_wait_seconds_sum") == pytest.approx(sum(a["waited"] for a in every))
    assert sum(a["waited"] for a in every) > 0  # the limits (3 a group, 2 s between hosts) held some back
    slow = sum(a["waited"] > 15 for a in every)
    assert _one(end, "sysflow_admission_wait_seconds_bucket", le="15.0") == 68 - slow
    assert _one(mid, "sysflow_admission_queue", **run) == admitted[-1]["queued"]
    assert _one(end, "sysflow_admission_queue", **run) == 0
    assert _one(end, "sysflow_admission_queue_peak", **run) == max(a["queued"] for a in every) > 0
    # hosts, waves, operations
    assert _one(mid, "sysflow_hosts", state="succeeded", **run) == 1  # the canary
    assert _one(mid, "sysflow_run_wave", **run) == 1
    assert _one(end, "sysflow_hosts", state="succeeded", **run) == 14
    assert _one(end, "sysflow_run_waves_finished", **run) == 4
    assert _one(end, "sysflow_operations_total", state="succeeded", task="upgrade_packages") == 14
    assert ("sysflow_ssh_connect_failures_total", (("kind", "HostUnreachable"),)) not in end  # none yet
