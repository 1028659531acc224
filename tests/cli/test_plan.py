"""``sysflow plan`` and ``sysflow forecast`` on the example files."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sysflow.cli import app
from sysflow.cli.plan import PlanOptions, forecast_command, parse_start, plan_command
from sysflow.planner.durations import DurationModel

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WF, INV = EXAMPLES / "patching.yaml", EXAMPLES / "inventory.ini"
START = "2026-11-23T00:00"


def test_parse_start() -> None:
    assert parse_start(START) == datetime(2026, 11, 23, tzinfo=UTC)
    assert parse_start(None).tzinfo is not None
    with pytest.raises(ValueError):
        parse_start("next sunday")


def test_plan_command_writes_json_and_chart(tmp_path: Path) -> None:
    lines: list[str] = []
    model = tmp_path / "durations.json"
    model.write_text(DurationModel({"upgrade_packages": 200.0}).to_json())
    options = PlanOptions(start=START, durations=model)
    p = plan_command(
        WF, INV, options, json_out=tmp_path / "p.json", gantt=tmp_path / "p.html", echo=lines.append
    )
    data = json.loads((tmp_path / "p.json").read_text())
    assert data["solver"] == "greedy"
    assert len(data["ops"]) == sum(len(c.ops) for c in p.problem.chains)
    assert (tmp_path / "p.html").exists()
    assert any(line.startswith("per window") for line in lines)


def test_forecast_command_prints_a_table(tmp_path: Path) -> None:
    lines: list[str] = []
    fc = forecast_command(WF, INV, PlanOptions(start=START), json_out=tmp_path / "f.json", echo=lines.append)
    assert lines[0] == "times in Europe/Amsterdam"  # the zone of examples/patching.yaml's windows
    assert lines[1].split()[:3] == ["window", "group", "remaining"]
    assert any("binding constraint" in line for line in lines)
    assert json.loads((tmp_path / "f.json").read_text())["binding"] == fc.binding


def test_typer_commands(tmp_path: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["plan", str(WF), "-i", str(INV), "--start", START, "--solver", "cpsat",
                              "--time-limit", "0.5", "--json", str(tmp_path / "p.json")])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "solver      cpsat" in out.output
    out = runner.invoke(app, ["forecast", str(WF), "-i", str(INV), "--start", START])
    assert out.exit_code == 0, out.output
    assert "fit p50" in out.output
    bad = runner.invoke(app, ["plan", str(WF), "-i", str(INV), "--solver", "magic"])
    assert bad.exit_code != 0
    bad = runner.invoke(app, ["forecast", str(WF), "-i", str(INV), "--solver", "magic"])
    assert bad.exit_code != 0
    bad = runner.invoke(app, ["plan", str(WF), "-i", str(INV), "--start", "soon"])
    assert bad.exit_code != 0
    bad = runner.invoke(app, ["forecast", str(tmp_path / "missing.yaml"), "-i", str(INV)])
    assert bad.exit_code != 0
