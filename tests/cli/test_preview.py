"""``plan --show`` prints the same preview as ``run --check`` for the plan it made; listings of a
large wave are capped per task unless ``--all``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SYSFLOW = [sys.executable, "-m", "sysflow"]
WORKFLOW = """\
name: big
windows:
  timezone: America/New_York
  groups:
    fleet: Sunday 02:00-04:00
rollout: {strategy: waves, waves: [[fleet]]}
tasks:
  - id: patch
    run: 'apt-get install -y {{ vars.pkg }} && echo {{ host.name }}'
"""


def _plan(tmp: Path, *extra: str) -> str:
    (tmp / "wf.yaml").write_text(WORKFLOW)
    (tmp / "hosts.ini").write_text("[fleet]\nweb[01:15]\n[fleet:vars]\npkg=openssl\n")
    argv = [*SYSFLOW, "plan", str(tmp / "wf.yaml"), "-i", str(tmp / "hosts.ini"), "--show", *extra]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_plan_show_caps_hosts_per_task_and_all_lists_every_host(tmp_path: Path) -> None:
    text = _plan(tmp_path, "--start", "2026-12-05T12:00:00+00:00")
    assert "wave 1: 15 hosts\n" in text
    assert "  window 2026-12-06 02:00\u201304:00 America/New_York\n" in text
    assert "    task patch (15 hosts)\n" in text
    assert "      web01  02:00\u2013" in text
    assert "apt-get install -y openssl && echo web01\n" in text  # rendered per host
    assert "web11 " not in text  # the first 10 hosts only
    assert "      ... and 5 more hosts (--all lists every host)\n" in text
    assert (
        text.rstrip()
        .splitlines()[-1]
        .startswith("15 hosts, 15 operations, 1 wave; predicted finish 2026-12-06")
    )
    every = _plan(tmp_path, "--start", "2026-12-05T12:00:00+00:00", "--all")
    assert "web15 " in every and "more hosts" not in every
