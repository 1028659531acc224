"""The metric gate against a REAL Prometheus (Debian's ``prometheus``) started on 127.0.0.1, scraping
a loopback exporter whose error ratio the test sets: a healthy wave passes, an error spike fails the
gate and rolls the wave back, an unreachable Prometheus is inconclusive within the limits."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from sysflow.engine.events import EventKind
from sysflow.engine.prometheus import render_query
from sysflow.engine.result import HostOutcome
from sysflow.engine.states import RunStatus
from sysflow.model.analysis import MetricCheck
from sysflow.model.inventory import Inventory
from sysflow.model.workflow import MaintenanceWorkflow
from tests.engine.conftest import simulate
from tests.fixtures.http_server import RecordingHandler, serve

WAVES = [["web1"], ["web2", "web3"]]
QUERY = "max(app_error_ratio{host=~\"{{ hosts | join('|') }}\"})"


class Exporter(RecordingHandler):
    """/metrics: app_error_ratio per host, as the test sets it."""

    ratio: ClassVar[dict[str, float]] = {}

    def page(self, body: bytes) -> None:
        lines = ["# TYPE app_error_ratio gauge"]
        lines += [f'app_error_ratio{{host="{h}"}} {v}' for h, v in Exporter.ratio.items()]
        self.send_text(200, "\n".join(lines) + "\n")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scraped(url: str, value: float) -> bool:
    query = urllib.request.quote("max(app_error_ratio)")
    try:
        with urllib.request.urlopen(f"{url}/api/v1/query?query={query}", timeout=2) as r:
            result = json.load(r)["data"]["result"]
    except OSError:
        return False
    return bool(result) and float(result[0]["value"][1]) == value


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("prometheus")
    assert binary, "prometheus is missing: apt-get install prometheus (.ci/run installs it)"
    root = tmp_path_factory.mktemp("prometheus")
    Exporter.ratio = {"web1": 0.0, "web2": 0.0, "web3": 0.0}
    with serve(Exporter) as exporter:
        target = exporter.removeprefix("http://")
        (root / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"scrape_configs:\n  - job_name: app\n    static_configs: [{{targets: ['{target}']}}]\n"
        )
        port = _free_port()
        proc = subprocess.Popen(
            [binary, f"--config.file={root / 'prometheus.yml'}", f"--storage.tsdb.path={root / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=(root / "log").open("w"),
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while not _scraped(url, 0.0):
                assert proc.poll() is None, (root / "log").read_text()
                assert time.monotonic() < deadline, "prometheus did not scrape the exporter in 30 s"
                time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            proc.wait(10)


def set_ratio(url: str, ratios: dict[str, float]) -> None:
    Exporter.ratio = ratios
    deadline = time.monotonic() + 15
    while not _scraped(url, max(ratios.values())):
        assert time.monotonic() < deadline, "prometheus did not pick up the new value"
        time.sleep(0.2)


def workflow(url: str, **check: Any) -> MaintenanceWorkflow:
    wf = MaintenanceWorkflow("deploy")
    wf.add_task("deploy", "deploy-app", rollback="undeploy-app")
    wf.set_progressive_execution({"groups": WAVES, "auto_rollback": True})
    spec = {"name": "error_rate", "prometheus": url, "query": QUERY, "max": 0.05, "count": 2,
            "interval": 1, "timeout": 2, **check}  # fmt: skip
    wf.rollout = wf.rollout.model_copy(update={"analysis": [MetricCheck.model_validate(spec)]})
    return wf


def inventory() -> Inventory:
    inv = Inventory()
    inv.add_group("web", [h for w in WAVES for h in w])
    return inv


def test_the_query_is_templated_with_the_wave_hosts() -> None:
    check = MetricCheck(name="e", prometheus="http://127.0.0.1:1", query=QUERY, max=1)
    assert render_query(check, ["web2", "web3", "@controller"]) == 'max(app_error_ratio{host=~"web2|web3"})'


async def test_a_healthy_wave_passes(prometheus: str) -> None:
    set_ratio(prometheus, {"web1": 0.0, "web2": 0.01, "web3": 0.02})
    sim = await simulate(workflow(prometheus), inventory())
    assert sim.result.status is RunStatus.COMPLETED, sim.result.reason
    gates = sim.events.of(EventKind.GATE_EVALUATED)
    assert [g.data["passed"] for g in gates] == [True, True]
    assert "error_rate: 0.02, 0.02" in gates[1].message


async def test_an_error_spike_fails_the_gate_and_rolls_back(prometheus: str) -> None:
    set_ratio(prometheus, {"web1": 0.0, "web2": 0.3, "web3": 0.0})
    sim = await simulate(workflow(prometheus), inventory())
    assert sim.result.status is RunStatus.ROLLED_BACK, sim.result.reason
    assert (
        "gate after wave 2 failed: error_rate: 2 of 2 measurements outside [, 0.05]: 0.3, 0.3"
        in sim.result.reason
    )
    assert sim.result.hosts["web2"] is HostOutcome.ROLLED_BACK
    assert "undeploy-app" in sim.commands("web2")


async def test_a_range_query_sees_the_spike_too(prometheus: str) -> None:
    set_ratio(prometheus, {"web1": 0.0, "web2": 0.3, "web3": 0.0})
    wf = workflow(prometheus, range=5, step=1, count=1)
    sim = await simulate(wf, inventory())
    assert sim.result.status is RunStatus.ROLLED_BACK, sim.result.reason


@pytest.mark.parametrize(("limit", "status"), [(0, RunStatus.ROLLED_BACK), (2, RunStatus.COMPLETED)])
async def test_an_unreachable_prometheus_is_inconclusive_per_the_limits(
    limit: int, status: RunStatus
) -> None:
    wf = workflow(f"http://127.0.0.1:{_free_port()}", inconclusive_limit=limit)
    sim = await simulate(wf, inventory())
    assert sim.result.status is status, sim.result.reason
    if limit == 0:
        assert (
            "gate after wave 1 was inconclusive: error_rate: 2 measurements gave no number"
            in sim.result.reason
        )


async def test_a_bad_query_is_inconclusive(prometheus: str) -> None:
    sim = await simulate(workflow(prometheus, query="max(("), inventory())
    assert "was inconclusive" in sim.result.reason
    sim = await simulate(workflow(prometheus, query="{{ nope }}"), inventory())
    assert "was inconclusive" in sim.result.reason


def test_a_check_needs_one_source() -> None:
    with pytest.raises(ValueError, match="exactly one of command or prometheus"):
        MetricCheck(name="x", max=1)
    with pytest.raises(ValueError, match="prometheus and query go together"):
        MetricCheck(name="x", prometheus="http://127.0.0.1:1", max=1)


async def test_a_prometheus_state_check_holds_the_next_wave_while_errors_are_high(prometheus: str) -> None:
    from sysflow.model.state_checks import StateCheck

    set_ratio(prometheus, {"web1": 0.0, "web2": 0.3, "web3": 0.0})
    wf = workflow(prometheus)
    wf.rollout = wf.rollout.model_copy(update={"analysis": []})
    check = {"name": "errors", "prometheus": prometheus, "query": QUERY,
             "expect": "json.value < 0.05", "interval": 60, "timeout": 120, "waves": [2]}  # fmt: skip
    wf.state_checks = [StateCheck.model_validate(check)]
    sim = await simulate(wf, inventory())  # before wave 2, over its hosts: web2 is high
    assert sim.result.status is RunStatus.FAILED
    assert (
        "before wave 2: state check still failing after 120s: errors: json.value < 0.05 is false"
        in sim.result.reason
    )
    down = {**check, "prometheus": f"http://127.0.0.1:{_free_port()}", "timeout": 60}
    wf.state_checks = [StateCheck.model_validate(down)]
    sim = await simulate(wf, inventory())
    assert "unreachable (ConnectError)" in sim.result.reason
    with pytest.raises(ValueError, match="prometheus and query go together"):
        StateCheck(name="x", prometheus=prometheus, expect="ok")
