"""The display zone (``--tz``, else the windows' zone) and the forecast-vs-actual block of ``sysflow sim``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sysflow.cli.demo import demo_inventory, inventory_yaml
from sysflow.cli.timefmt import display_zone, parse_tz
from sysflow.model.workflow import MaintenanceWorkflow

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 180


def _workflow(windows: dict[str, object]) -> MaintenanceWorkflow:
    return MaintenanceWorkflow.model_validate(
        {"name": "w", "tasks": [{"id": "t", "run": "true"}], "windows": windows}
    )


def test_zone_of_the_windows_with_daylight_saving() -> None:
    wf = _workflow({"timezone": "Europe/Amsterdam", "groups": {"web": "Sunday 02:00-04:00"}})
    z = display_zone(None, wf)
    assert z.name == "Europe/Amsterdam" and not z.mixed
    assert z.fmt(datetime(2026, 12, 6, 1, 0, tzinfo=UTC)) == "2026-12-06 02:00 CET"
    assert z.fmt(datetime(2026, 7, 5, 0, 0, 30, tzinfo=UTC), seconds=True) == "2026-07-05 02:00:30 CEST"
    assert z.fmt(datetime(2026, 12, 6, 1, 0), day=False) == "02:00 CET"  # naive is UTC
    assert z.header() == "times in Europe/Amsterdam"


def test_several_zones_take_the_first_and_say_so() -> None:
    wf = _workflow(
        {
            "timezone": "UTC",
            "groups": {
                "web": [{"weekly": "Sunday 02:00-04:00", "timezone": "America/New_York"}],
                "db": "Sunday 01:00-02:00",
            },
        }
    )
    z = display_zone(None, wf)
    assert z.name == "America/New_York" and z.mixed
    assert "several zones" in z.header()
    assert display_zone("Asia/Tokyo", wf).name == "Asia/Tokyo"


def test_unknown_zone_names_the_option() -> None:
    with pytest.raises(ValueError, match=r"^--tz: unknown time zone 'Mars/Base'"):
        parse_tz("Mars/Base")


def _sim(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    wf = (
        (ROOT / "examples" / "demo" / "patching.yaml")
        .read_text()
        .replace("timezone: UTC", "timezone: Europe/Amsterdam")
    )
    (tmp_path / "wf.yaml").write_text(wf)
    (tmp_path / "inv.yaml").write_text(inventory_yaml(demo_inventory(30)))
    cmd = [
        sys.executable,
        "-m",
        "sysflow",
        "sim",
        "wf.yaml",
        "-i",
        "inv.yaml",
        "--start",
        "2026-12-05T12:00:00Z",
        *extra,
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "160"}
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT)


def test_sim_summary_sets_the_forecast_against_the_actual(tmp_path: Path) -> None:
    done = _sim(tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "  time: 2026-12-05 13:00 CET to 2026-12-06 " in out
    assert "  forecast vs actual (times in Europe/Amsterdam):" in out
    finish = re.search(
        r"finish +predicted 2026-12-06 (\d\d):\d\d CET, actual 2026-12-06 (\d\d):\d\d CET \(([^)]+)\)", out
    )
    assert finish and finish.group(1) == finish.group(2) == "01", out  # windows open 01:00 CET
    rate = re.search(r"ops/hour +predicted ([\d,]+), actual ([\d,]+) \((\d+) planned, (\d+) ran\)", out)
    assert rate and int(rate.group(3)) == int(rate.group(4)) > 100
    assert float(rate.group(1).replace(",", "")) > 0 and float(rate.group(2).replace(",", "")) > 0
    waves = re.findall(r"wave (\d) +predicted end \d\d:\d\d CET, actual \d\d:\d\d CET \(", out)
    assert waves == ["1", "2", "3", "4", "5"]
    assert re.search(r"^2026-12-06 01:\d\d:\d\d CET wave_started", out, re.M)  # progress lines too
    assert " UTC" not in out


def test_sim_tz_option_and_json_stays_utc(tmp_path: Path) -> None:
    done = _sim(tmp_path, "--tz", "UTC")
    assert done.returncode == 0, done.stderr
    assert "forecast vs actual (times in UTC)" in done.stdout
    assert re.search(r"finish +predicted 2026-12-06 00:\d\d UTC", done.stdout)
    events = _sim(tmp_path, "--json")
    first = json.loads(events.stdout.splitlines()[0])
    assert first["kind"] == "run_started" and first["at"] == "2026-12-05T12:00:00+00:00"  # JSON stays UTC
    bad = _sim(tmp_path, "--tz", "Mars/Base")
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == [
        "error: --tz: unknown time zone 'Mars/Base' (an IANA name such as Europe/Amsterdam or UTC)"
    ]


def test_status_tz_shows_the_run_times_in_that_zone(tmp_path: Path) -> None:
    done = _sim(tmp_path, "--store", "s.db")
    assert done.returncode == 0, done.stderr
    run_id = re.search(r"^run (\S+): completed", done.stdout, re.M)
    assert run_id
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "sysflow", "status", run_id.group(1), "--store", "s.db"]
    status = subprocess.run(
        [*cmd, "--tz", "Europe/Amsterdam"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert status.returncode == 0, status.stderr
    assert re.search(
        r"times in Europe/Amsterdam: created 2026-12-05 13:00 CET, updated 2026-12-06 01:\d\d CET",
        status.stdout,
    )
    utc = subprocess.run(
        [*cmd, "--tz", "UTC"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert "times in UTC: created 2026-12-05 12:00 UTC" in utc.stdout
