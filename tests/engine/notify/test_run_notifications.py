"""A workflow's ``notifications:`` routes are used by the run: ``sysflow sim`` with a failing task
sends the failure and the run's end to a loopback JSON webhook before the command returns."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from sysflow.cli import app

from .conftest import Receiver

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "demo" / "patching.yaml"


def test_a_simulated_run_sends_its_failures_and_its_end_to_the_workflows_route(
    tmp_path: Path, receiver: Receiver
) -> None:
    wf = yaml.safe_load(EXAMPLE.read_text())
    wf["notifications"] = [{"url": receiver.url, "name": "ops", "only_failures": True}]
    (tmp_path / "wf.yaml").write_text(yaml.safe_dump(wf))
    (tmp_path / "fail.yaml").write_text("failure_probability:\n  upgrade_packages: 1.0\n")
    out = CliRunner().invoke(
        app,
        ["sim", str(tmp_path / "wf.yaml"), "--hosts", "20", "--start", "2026-11-28T12:00:00",
         "--profile", str(tmp_path / "fail.yaml"), "--state", str(tmp_path / "state.db")],
    )  # fmt: skip
    assert out.exit_code != 0, out.output  # the run failed
    assert receiver.bodies, "no notification reached the receiver before sysflow sim returned"
    text = "\n".join(f"{b.get('title', '')}\n{b.get('message', '')}" for b in receiver.bodies)
    assert "sysflow run os_patching_demo-" in text and "rolled_back" in text  # the run's end
    assert "hosts failed: web0001.ams.example.com" in text  # the canary host whose upgrade failed
