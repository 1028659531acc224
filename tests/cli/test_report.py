"""``sysflow report RUN``: the forecast kept with a run's plan against what happened, and the
learned durations moving the next run's forecast."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from sysflow.cli import app
from sysflow.cli.control import run_views
from sysflow.cli.report import report_data

runner = CliRunner()
DB_SLOW = """
durations:
  upgrade_packages: {db_servers: {lognormal: {mean: 12m, sigma: 0.1}}}
"""


def _sim(tmp_path: Path, state: Path) -> str:
    before = {v.id for v in run_views(state)} if state.exists() else set()
    profile = tmp_path / "slow-db.yaml"
    profile.write_text(DB_SLOW)
    argv = ["sim", "examples/demo/patching.yaml", "--hosts", "40", "--start", "2026-11-28T12:00:00"]
    out = runner.invoke(
        app,
        [
            *argv,
            "--profile",
            str(profile),
            "--state",
            str(state),
        ],
    )
    assert out.exit_code == 0, out.output
    (run,) = {v.id for v in run_views(state)} - before
    return run


def test_report_sets_the_forecast_against_the_run_and_names_the_slow_group(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    run = _sim(tmp_path, state)
    out = runner.invoke(app, ["report", run, "--state", str(state)])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].startswith(f"run {run}: completed")
    finish = next(line for line in lines if line.strip().startswith("finish"))
    assert "forecast p10" in finish and "p90" in finish and "actual" in finish
    assert re.search(
        r"\((by the forecast p50|between the forecast p50 and p90|later than the forecast p90 by)", finish
    )
    ops = next(line for line in lines if line.strip().startswith("operations"))
    assert re.search(r"ops/hour forecast \(p50\), \d+ actual", ops)
    assert any(line.strip().startswith("wave 1") and "forecast p50" in line for line in lines)
    assert any("first window" in line and "80 % interval" in line for line in lines)
    misses = lines[lines.index("largest misses (task x group):") + 1 :]
    db = next(line for line in misses if "upgrade_packages x db_servers" in line)
    assert "planned 240 s" in db and "slower hosts" in db
    assert "faster hosts" in next(line for line in misses if "upgrade_packages x web_servers" in line)


def test_the_next_forecast_moves_with_what_the_run_learned(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    first = report_data(state, _sim(tmp_path, state))
    second = report_data(state, _sim(tmp_path, state))
    # the first run learned that the db servers take 12 minutes where the workflow says 4: the
    # second run's forecast has them finish later, and plans their upgrade longer
    db = [datetime.fromisoformat(d["forecast"]["groups"]["db_servers"]["p50"]) for d in (first, second)]
    assert db[1] - db[0] > timedelta(minutes=5)
    planned = [
        next(m["planned_s"] for m in d["misses"] if m["group"] == "db_servers") for d in (first, second)
    ]
    assert planned[0] == 240 and planned[1] > 480


def test_report_of_an_unknown_run_or_store_is_one_line(tmp_path: Path) -> None:
    out = runner.invoke(app, ["report", "nope", "--state", str(tmp_path / "none.db")])
    assert out.exit_code == 3 and "no run store" in out.output
