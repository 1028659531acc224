"""Times in the windows' zone and the Gantt charts, as a user runs ``sysflow forecast`` / ``plan``.

Subprocesses of the real CLI on generated fleets whose windows are written in Europe/Amsterdam; the
HTML chart is also rendered by headless chromium, and the screenshot must not be blank.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from sysflow.cli.demo import demo_inventory, inventory_yaml

ROOT = Path(__file__).resolve().parents[2]
START = "2026-12-05T12:00:00Z"  # a Saturday; the Sunday 02:00 CET windows are 01:00 UTC
TIMEOUT = 120
TASKS = [
    "backup",
    "update_repos",
    "upgrade_packages",
    "restart_cache",
    "restart_db",
    "restart_web",
    "verify_web",
]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workflow with Europe/Amsterdam windows and inventories of 10 and 1,000 hosts."""
    d = tmp_path_factory.mktemp("fleet")
    wf = (ROOT / "examples" / "demo" / "patching.yaml").read_text()
    wf = wf.replace("timezone: UTC", "timezone: Europe/Amsterdam").replace("01:00-05:00", "02:00-05:00")
    assert "Europe/Amsterdam" in wf and "02:00-05:00" in wf
    (d / "wf.yaml").write_text(wf)
    for n in (10, 1000):
        (d / f"inv{n}.yaml").write_text(inventory_yaml(demo_inventory(n)))
    return d


def sysflow(*argv: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "160"}
    cmd = [sys.executable, "-m", "sysflow", *map(str, argv)]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT)


def test_forecast_prints_window_local_times_with_the_zone(fleet: Path) -> None:
    done = sysflow("forecast", "wf.yaml", "-i", "inv10.yaml", "--start", START, cwd=fleet)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.splitlines()[0] == "times in Europe/Amsterdam"
    assert "Sun 2026-12-06 02:00-05:00 CET" in out  # as written, not the UTC 01:00-04:00
    assert "01:00-04:00" not in out
    assert re.search(r"planned finish: 2026-12-06 0[2-4]:\d\d CET", out)


def test_tz_option_changes_the_zone(fleet: Path) -> None:
    done = sysflow("forecast", "wf.yaml", "-i", "inv10.yaml", "--start", START, "--tz", "UTC", cwd=fleet)
    assert done.returncode == 0, done.stderr
    assert "Sun 2026-12-06 01:00-04:00 UTC" in done.stdout
    assert "times in UTC" in done.stdout
    plan = sysflow("plan", "wf.yaml", "-i", "inv10.yaml", "--start", START, "--tz", "Asia/Tokyo", cwd=fleet)
    assert plan.returncode == 0, plan.stderr
    assert "start       2026-12-05 21:00 JST" in plan.stdout


def test_plan_summary_in_the_windows_zone(fleet: Path) -> None:
    done = sysflow("plan", "wf.yaml", "-i", "inv10.yaml", "--start", START, cwd=fleet)
    assert done.returncode == 0, done.stderr
    assert "zone        times in Europe/Amsterdam" in done.stdout
    assert "start       2026-12-05 13:00 CET" in done.stdout
    assert re.search(r"finish      2026-12-06 02:\d\d CET", done.stdout)


@pytest.mark.parametrize("command", ["plan", "forecast"])
def test_unknown_zone_is_one_line_and_exit_1(fleet: Path, command: str) -> None:
    done = sysflow(command, "wf.yaml", "-i", "inv10.yaml", "--tz", "Mars/Base", cwd=fleet)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "error: --tz: unknown time zone 'Mars/Base' (an IANA name such as Europe/Amsterdam or UTC)"
    ]


def _html(fleet: Path, n: int) -> str:
    out = fleet / f"g{n}.html"
    if not out.exists():
        done = sysflow(
            "plan", "wf.yaml", "-i", f"inv{n}.yaml", "--start", START, "--gantt", out.name, cwd=fleet
        )
        assert done.returncode == 0, done.stderr
        assert f"wrote       g{n}.html" in done.stdout
    return out.read_text()


def _common_structure(page: str) -> None:
    ticks = re.findall(r"<div class='tick'[^>]*>([^<]+)</div>", page)
    assert len(ticks) >= 4 and all(t.endswith(" CET") for t in ticks), ticks
    assert "Sun 02:00 CET" in ticks
    legend = re.findall(r"<span class='key'><i[^>]*></i>([^<]+)</span>", page)
    assert legend == TASKS
    assert "maintenance window" in page
    assert not re.search(r"(src|href)=|https?://(?!www\.w3\.org/2000/svg)", page)  # self-contained
    assert "<script>" in page and "wheel" in page and "id='fit'" in page


def test_html_gantt_10_hosts_one_lane_per_host(fleet: Path) -> None:
    page = _html(fleet, 10)
    _common_structure(page)
    lanes = re.findall(r"<text class='lane'[^>]*>([^<]+)</text>", page)
    assert lanes == sorted(lanes) and len(lanes) == 10 and lanes[0] == "cache0001.ams.example.com"
    bars = re.findall(r"<rect class='op'.*?<title>([^<]+)</title>", page)
    assert len(bars) == 6 * 5 + 2 * 4 + 2 * 4  # web: 5 tasks, cache and db: 4 each (restart per role)
    tip = r"web0001\.ams\.example\.com · upgrade_packages · 2026-12-06 02:\d\d:\d\d CET – 02:\d\d:\d\d CET · wave \d"
    assert any(re.fullmatch(tip, html.unescape(b)) for b in bars)


def test_html_gantt_1000_hosts_one_lane_per_group(fleet: Path) -> None:
    page = _html(fleet, 1000)
    _common_structure(page)
    lanes = re.findall(r"<text class='lane'[^>]*>([^<]+)</text>", page)
    hosts = [int(m) for m in re.findall(r"\((\d+) hosts?\)", " ".join(lanes))]
    assert 3 <= len(lanes) < 60 and sum(hosts) == 1000
    assert all(
        re.fullmatch(r"(ams|fra|lon) / \w+_servers / wave \d \((1 host|\d\d+ hosts)\)", lane)
        for lane in lanes
    )
    assert "ams / cache_servers / wave 1 (1 host)" in lanes  # the canary: "1 host", not "1 hosts"
    assert "<rect class='op'" not in page  # no 3,000 bars: densities instead
    assert page.count("<polygon class='density'") >= len(lanes)
    assert len(page) < 3_000_000


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.parametrize("n", [10, 1000])
def test_png_gantt(fleet: Path, n: int) -> None:
    done = sysflow(
        "plan", "wf.yaml", "-i", f"inv{n}.yaml", "--start", START, "--gantt", f"g{n}.png", cwd=fleet
    )
    assert done.returncode == 0, done.stderr
    data = (fleet / f"g{n}.png").read_bytes()
    width, height = _png_size(data)
    assert width >= 1000 and height >= 400 and len(data) > 20_000


def test_gantt_other_suffix_is_one_line(fleet: Path) -> None:
    done = sysflow("plan", "wf.yaml", "-i", "inv10.yaml", "--gantt", "plan.pdf", cwd=fleet)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "a Gantt chart is written as .png or .html, not '.pdf'" in done.stderr


@pytest.mark.parametrize("n", [10, 1000])
def test_html_gantt_renders_in_headless_chromium(fleet: Path, n: int) -> None:
    """Not skipped without chromium: the chart must be seen to render (``apt-get install chromium``)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, (
        "chromium is not installed (apt-get install -y chromium): the HTML Gantt cannot be checked"
    )
    _html(fleet, n)
    shot = fleet / f"shot{n}.png"
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           f"--screenshot={shot}", "--window-size=1600,900", (fleet / f"g{n}.html").as_uri()]  # fmt: skip
    subprocess.run(cmd, capture_output=True, timeout=TIMEOUT, check=True, cwd=fleet)
    from PIL import Image

    with Image.open(shot) as img:
        rgb = img.convert("RGB")
        assert rgb.size == (1600, 900)
        colours = rgb.getcolors(maxcolors=1_000_000) or []
    seen = {c for _, c in colours}
    assert len(seen) > 50  # text, bars, shading: not a blank page
    green = (0x59, 0xA1, 0x4F)  # upgrade_packages in the legend and the bars
    assert sum(count for count, c in colours if c == green) > 500


def test_png_without_matplotlib_says_what_to_install(fleet: Path, tmp_path: Path) -> None:
    """A trimmed install without matplotlib: one line naming the package, exit 1, no traceback."""
    blocker = tmp_path / "block" / "matplotlib"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('No module named matplotlib')\n")
    env = {**os.environ, "PYTHONPATH": f"{blocker.parent}{os.pathsep}{ROOT}"}
    cmd = [
        sys.executable,
        "-m",
        "sysflow",
        "plan",
        "wf.yaml",
        "-i",
        "inv10.yaml",
        "--gantt",
        str(tmp_path / "x.png"),
    ]
    done = subprocess.run(cmd, cwd=fleet, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert (
        "error: a PNG chart needs matplotlib: pip install matplotlib (or write the chart as .html)"
        in done.stderr
    )
    assert not (tmp_path / "x.png").exists()
