"""The run page's Gantt of plan against actual as server-side SVG: a finished simulated run's page
holds, for a host, its planned and its actual bar inside its shaded window, with accessible markup;
over 200 hosts the lanes are groups."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sysflow.service.gantt import MAX_HOST_LANES, gantt_svg
from tests.service.conftest import SUNDAY, Service

SVG = "{http://www.w3.org/2000/svg}"
WORKFLOW = """name: gantt
tasks:
  - id: patch
    run: apt-get -y upgrade
    expected_duration: 2m
  - id: reboot
    run: systemctl reboot
    depends_on: [patch]
    expected_duration: 1m
windows:
  timezone: UTC
  groups:
    web: Sunday 01:00-03:00
"""


def _svg(html: str) -> ET.Element:
    found = re.search(r"<svg .*?</svg>", html, re.S)
    assert found, "no SVG on the page"
    return ET.fromstring(found.group(0))


def _x(rect: ET.Element) -> tuple[float, float]:
    x = float(rect.attrib["x"])
    return x, x + float(rect.attrib["width"])


@pytest.mark.slow
def test_a_finished_runs_page_draws_planned_and_actual_bars_in_the_window(service: Service) -> None:
    with service.client("olga") as olga:
        olga.put("/api/v1/workflows/gantt", content=WORKFLOW).raise_for_status()
        olga.put("/api/v1/inventories/gantt", content="[web]\nweb41\nweb42\n").raise_for_status()
        run_id = olga.post("/api/v1/runs", json={"workflow": "gantt", "inventory": "gantt",
                                                 "simulate": True, "start": SUNDAY}).json()["run_id"]  # fmt: skip
        for _ in range(300):  # 30 s at most
            run = olga.get(f"/api/v1/runs/{run_id}").json()["run"]
            if run["status"] == "completed":
                break
            time.sleep(0.1)
        assert run["status"] == "completed", run
        olga.headers.pop("Authorization")
        olga.post("/console/login", data={"token": service.tokens["olga"], "next": "/console/"})
        page = olga.get(f"/console/runs/{run_id}")
    assert page.status_code == 200, page.text
    svg = _svg(page.text)
    assert svg.attrib["role"] == "img" and svg.attrib["data-mode"] == "host"
    title, desc = svg.find(f"{SVG}title"), svg.find(f"{SVG}desc")
    assert title is not None and desc is not None
    assert svg.attrib["aria-labelledby"] == f"{title.attrib['id']} {desc.attrib['id']}"
    assert "2 hosts" in (desc.text or "") and "4 planned bars" in (desc.text or "")
    rects = svg.findall(f"{SVG}rect")
    mine = {(r.attrib["class"].split()[0], r.attrib.get("data-task")): r for r in rects
            if r.attrib.get("data-lane") == "web41"}  # fmt: skip
    planned, actual = mine[("planned", "patch")], mine[("actual", "patch")]
    assert "s-succeeded" in actual.attrib["class"]
    assert actual.attrib["aria-label"].startswith("web41 patch actual: 2026-12-06 01:")
    assert actual.find(f"{SVG}title") is not None and planned.find(f"{SVG}title") is not None
    # both bars lie inside web41's shaded window (Sunday 01:00-03:00 UTC), the reboot after the patch
    windows = [r for r in rects if r.attrib["class"] == "window" and "web41" in r.attrib["aria-label"]]
    assert len(windows) == 1 and "01:00:00" in windows[0].attrib["aria-label"]
    w0, w1 = _x(windows[0])
    for bar in (planned, actual):
        assert w0 <= _x(bar)[0] < _x(bar)[1] <= w1 + 0.5
    assert _x(mine[("actual", "reboot")])[0] >= _x(actual)[1] - 0.5
    assert "The same operations as a table" in page.text  # the text alternative stays


def _ops(hosts: int) -> list[dict[str, Any]]:
    t0 = datetime(2026, 12, 6, 1, tzinfo=UTC)
    out = []
    for i in range(hosts):
        start = t0 + timedelta(minutes=i % 50)
        out.append({"host": f"h{i:04d}", "task": "patch", "state": "failed" if i == 8 else "succeeded",
                    "group": "db" if i % 2 else "web", "planned_start": start.isoformat(),
                    "planned_end": (start + timedelta(minutes=5)).isoformat(),
                    "start": (start + timedelta(minutes=1)).isoformat(),
                    "end": (start + timedelta(minutes=7)).isoformat(), "window_start": t0.isoformat(),
                    "window_end": (t0 + timedelta(hours=2)).isoformat()})  # fmt: skip
    return out


def test_over_200_hosts_the_lanes_are_groups_with_their_span_and_worst_state() -> None:
    svg = ET.fromstring(gantt_svg(_ops(MAX_HOST_LANES + 50)))
    assert svg.attrib["data-mode"] == "group"
    bars = {
        (r.attrib["data-lane"], r.attrib["class"]): r
        for r in svg.iter(f"{SVG}rect")
        if "data-lane" in r.attrib
    }
    assert set(bars) == {("db", "planned s-succeeded"), ("web", "planned s-failed"),
                         ("db", "actual s-succeeded"), ("web", "actual s-failed")}  # fmt: skip
    label = bars[("web", "actual s-failed")].attrib["aria-label"]
    assert label == "web patch actual: 2026-12-06 01:01:00 UTC to 2026-12-06 01:55:00 UTC (failed)"
    assert gantt_svg([]) == ""
