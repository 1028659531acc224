"""``sysflow demo``: forecast, Gantt chart, simulated run, report; and real subprocesses: no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sysflow.cli import app
from sysflow.cli.demo import DemoOptions, demo_command, demo_inventory, inventory_yaml
from sysflow.model.inventory import Inventory

runner = CliRunner()
SYSFLOW = [sys.executable, "-c", "from sysflow.cli import main; main()"]
SUBPROCESS_TIMEOUT = 600  # seconds: generous for a busy machine; the demo takes seconds on an idle one


def test_demo_inventory_shape() -> None:
    inv = demo_inventory()
    assert len(inv) == 1000
    assert {g: len(inv.group_hosts(g)) for g in inv.groups} == {
        "web_servers": 600,
        "db_servers": 150,
        "cache_servers": 250,
    }
    assert {h.datacenter for h in inv} == {"ams", "fra", "lon"}
    with pytest.raises(ValueError, match="at least 3"):
        demo_inventory(2)


def test_inventory_yaml_round_trips(tmp_path: Path) -> None:
    inv = demo_inventory(10)
    path = tmp_path / "inv.yaml"
    path.write_text(inventory_yaml(inv))
    back = Inventory.load(path)
    assert sorted(h.name for h in back) == sorted(h.name for h in inv)
    assert back.host("db0001.ams.example.com").datacenter == "ams"


def test_demo_small_fleet(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--hosts", "30", "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = result.output
    assert "on 30 simulated hosts in 3 datacenters (ams, fra, lon)" in text
    assert "== forecast (p50 and p90 plans) ==" in text and "binding constraint:" in text
    assert "completed (30 succeeded)" in text and "verification: pass" in text
    assert f"audit       {out / 'audit.db'}: intact" in text
    for name in ("inventory.yaml", "gantt.html", "audit.db", "verification.md", "verification.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "verification.json").read_text())


def test_demo_json_lines_keep_stdout_machine_readable(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--hosts", "9", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[0]["kind"] == "run_started" and events[-1]["kind"] == "run_finished"


def _sysflow(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "120"}
    return subprocess.run(
        [*SYSFLOW, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT
    )


@pytest.mark.slow
def test_demo_default_1000_hosts_in_a_subprocess(tmp_path: Path) -> None:
    """The README's first command, as a user runs it: 1,000 hosts, prints the forecast, writes the chart."""
    done = _sysflow("demo", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "on 1000 simulated hosts in 3 datacenters" in done.stdout
    assert "fit p50" in done.stdout and "binding constraint" in done.stdout
    assert "completed (1000 succeeded)" in done.stdout
    assert (tmp_path / "sysflow-demo" / "gantt.html").stat().st_size > 1000
    assert "Traceback" not in done.stderr


def test_failure_in_a_subprocess_is_one_line_without_traceback(tmp_path: Path) -> None:
    done = _sysflow("audit", "verify", "--db", "missing.db", cwd=tmp_path)
    assert done.returncode == 3
    assert done.stderr == "error: no audit log at missing.db\n" and done.stdout == ""
    debug = _sysflow("--debug", "audit", "verify", "--db", "missing.db", cwd=tmp_path)
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "FileNotFoundError" in debug.stderr


def test_help_is_fast_to_import() -> None:
    """`sysflow --help` imports none of the heavy dependencies."""
    code = (
        "import sys; from sysflow.cli import app; from typer.testing import CliRunner; "
        "CliRunner().invoke(app, ['--help']); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'ray', 'ortools', 'matplotlib', 'asyncssh'}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "[]", done.stderr


def test_demo_on_a_terminal_draws_the_live_view(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines: list[str] = []
    code = demo_command(DemoOptions(out=tmp_path, hosts=9, is_terminal=True), lines.append)
    assert code == 0
    drawn = capsys.readouterr().out
    assert "ETA (forecast)" in drawn and "dc ams" in drawn and "wave 5" in drawn
    assert any(line.startswith("run os_patching_demo-") for line in lines)
