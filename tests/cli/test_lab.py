"""``sysflow lab up/down/status``: a real local OpenSSH fleet that ``ssh`` and ``sysflow run`` reach,
stopped by PID (start time checked), and the lab patching example end to end with one failing host."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sysflow.lab import lab_hosts
from sysflow.lab.fleet import LabError

SYSFLOW = [sys.executable, "-m", "sysflow"]
REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "lab-patching.yaml"
pytestmark = pytest.mark.ssh


def _cli(*argv: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.run(
        [*SYSFLOW, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def _gone(pid: int) -> bool:
    """Whether ``pid`` no longer runs (a zombie left for an init that does not reap counts as gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return True
    return fields[0] in ("Z", "X")


def _pids(lab: Path) -> list[int]:
    return [int(p["pid"]) for p in json.loads((lab / "state.json").read_text())["processes"]]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Path]:
    """A 4-host lab in ``tmp_path/sysflow-lab`` with db01 failing its health check; always downed."""
    up = _cli("lab", "up", "--hosts", "4", "--fail", "db01", cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    try:
        yield tmp_path / "sysflow-lab"
    finally:
        _cli("lab", "down", cwd=tmp_path)


def test_hosts_spread_over_groups_and_datacenters_like_the_example_inventory() -> None:
    hosts = lab_hosts(8)
    assert [h.name for h in hosts] == [
        "web01",
        "web02",
        "web03",
        "web04",
        "db01",
        "db02",
        "cache01",
        "cache02",
    ]
    assert {h.group for h in hosts} == {"web_servers", "db_servers", "cache_servers"}
    assert [h.datacenter for h in hosts[:4]] == ["ams", "ams", "fra", "fra"]
    assert all(h.address.startswith("127.77.") for h in hosts)  # loopback only
    with pytest.raises(LabError, match="--hosts"):
        lab_hosts(0)


def test_up_writes_a_verified_fleet_that_ssh_reaches(lab: Path) -> None:
    assert stat.S_IMODE((lab / "client_key").stat().st_mode) == 0o600
    port = json.loads((lab / "state.json").read_text())["port"]
    host_key = " ".join((lab / "host_key.pub").read_text().split()[:2])
    known = (lab / "known_hosts").read_text().splitlines()
    assert known == [f"[127.77.1.{i}]:{port} {host_key}" for i in range(1, 5)]
    inventory = (lab / "inventory.ini").read_text()
    assert "[web_servers]\nweb01 datacenter=ams\nweb02 datacenter=fra" in inventory
    assert "db01 datacenter=ams lab_fail=yes" in inventory
    for host in ("web01", "cache01"):  # strict host key checking against the lab's known_hosts
        argv = ["ssh", "-F", str(lab / "ssh_config"), "-o", "BatchMode=yes", host, "echo $SYSFLOW_LAB_DIR"]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        assert out.returncode == 0 and out.stdout.strip() == str(lab), out.stderr


def test_up_twice_refuses_and_status_reports(lab: Path) -> None:
    again = _cli("lab", "up", "--hosts", "4", cwd=lab.parent)
    assert again.returncode == 4
    assert again.stderr.strip().startswith("error: a lab is already up in")
    assert len(again.stderr.strip().splitlines()) == 1
    status = _cli("lab", "status", cwd=lab.parent)
    assert status.returncode == 0 and str(_pids(lab)[0]) in status.stdout


def test_lab_patching_example_runs_end_to_end_and_fails_the_marked_host(lab: Path) -> None:
    argv = ["run", str(EXAMPLE), "-i", "sysflow-lab/inventory.ini", "--ssh-config", "sysflow-lab/ssh_config"]
    argv += [
        "--approve-all",
        "--store",
        "state.db",
    ]  # keys checked against the ssh_config's UserKnownHostsFile
    run = _cli(*argv, cwd=lab.parent)
    assert run.returncode == 1, run.stderr
    assert "completed_with_failures (1 failed, 3 succeeded)" in run.stdout
    assert "health check failed on db01 (lab_fail=yes)" in run.stdout
    for host in ("web01", "web02", "cache01", "db01"):
        assert (lab / "hosts" / host / "patched").read_text().startswith("20")


def test_down_stops_exactly_its_pids_and_a_second_down_is_a_no_op(lab: Path) -> None:
    pids = _pids(lab)
    down = _cli("lab", "down", cwd=lab.parent)
    assert down.returncode == 0
    assert down.stdout.strip() == f"lab down: stopped sshd pid {pids[0]} (sysflow-lab)"
    assert all(_gone(p) for p in pids)
    assert not (lab / "state.json").exists()
    again = _cli("lab", "down", cwd=lab.parent)
    assert again.returncode == 0 and again.stdout.strip() == "lab down: nothing running in sysflow-lab"
    assert _cli("lab", "status", cwd=lab.parent).returncode == 3


def test_down_never_signals_a_recycled_pid(tmp_path: Path) -> None:
    """A state file naming a live process with another start time (a recycled PID) is left alone."""
    lab = tmp_path / "sysflow-lab"
    lab.mkdir()
    other = subprocess.Popen(["sleep", "30"])
    try:
        entry = {"pid": other.pid, "start_time": "0:1", "config": "x"}
        (lab / "state.json").write_text(json.dumps({"port": 1, "user": "u", "processes": [entry]}))
        down = _cli("lab", "down", cwd=tmp_path)
        assert down.returncode == 0 and "nothing running" in down.stdout
        assert other.poll() is None  # still running
    finally:
        other.kill()
        other.wait(5)


def test_more_than_16_hosts_use_one_sshd_per_16_aliases(tmp_path: Path) -> None:
    up = _cli("lab", "up", "--hosts", "20", "--dir", "big", cwd=tmp_path)
    try:
        assert up.returncode == 0, up.stderr
        assert len(_pids(tmp_path / "big")) == 2
        argv = ["ssh", "-F", str(tmp_path / "big" / "ssh_config"), "-o", "BatchMode=yes", "cache05", "true"]
        assert subprocess.run(argv, capture_output=True, timeout=30).returncode == 0
    finally:
        _cli("lab", "down", "--dir", "big", cwd=tmp_path)
