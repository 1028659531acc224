"""What a person reads about a run's hosts (issue 17, "Visibility"): the failure recap of ``sysflow
sim``/``run``, ``sysflow status RUN`` (``--failed``, ``--host``, ``--json``), ``sysflow logs`` and the
grammar of counts. Every run here is a ``sysflow sim`` with a ``--store`` in tmp_path."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sysflow.cli import app
from sysflow.cli.demo import DEMO_START
from sysflow.cli.views import plural, printable, tail, tidy

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

WORKFLOW = """\
name: web_check
tasks:
  - id: prep
    run: prep-host
  - id: verify_web
    targets: [web]
    run: verify-web
    depends_on: [prep]
  - id: db_check
    targets: [db]
    run: db-check
    depends_on: [prep]
rollout:
  strategy: rolling
  serial: [1, 2]
  max_failures: "100%"
"""
INVENTORY = "[web]\nweb01\nweb02\nweb03\n[db]\ndb01\n[cache]\ncache01\n"
PROFILE = r"""
rules:
  - name: prep
    match: '^prep-host'
    duration: 2s
    stdout: "prep on {host}\n\e[2Jcleared\n"
  - name: verify
    match: '^verify-web'
    duration: 1s
    exit_status: 3
    stderr: "checking {host}\nstep 1 ok\nstep 2 ok\nstep 3 ok\nstep 4 ok\nhealth: 503 from nginx\nverify failed\n"
  - name: db
    match: '^db-check'
    duration: 1s
    exit_status: 2
    stdout: "replication lag 42s on {host}\n"
"""


@dataclass(frozen=True)
class Simulated:
    store: Path
    run_id: str
    output: str
    exit_code: int

    def cli(self, *argv: str) -> tuple[int, str]:
        result = runner.invoke(app, [*argv, "--store", str(self.store)])
        return result.exit_code, result.output


@pytest.fixture
def failed_run(tmp_path: Path) -> Simulated:
    """web01 (wave 1), web02, web03 (wave 2) fail verify_web with exit 3; in wave 3 db01 fails db_check
    with output on stdout only and cache01 succeeds."""
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    (tmp_path / "hosts.ini").write_text(INVENTORY)
    (tmp_path / "profile.yaml").write_text(PROFILE)
    store = tmp_path / "s.db"
    argv = ["sim", str(tmp_path / "wf.yaml"), "-i", str(tmp_path / "hosts.ini")]
    argv += [
        "--profile",
        str(tmp_path / "profile.yaml"),
        "--store",
        str(store),
        "--start",
        DEMO_START.isoformat(),
    ]
    result = runner.invoke(app, argv)
    run_id = next(w for w in result.output.split() if w.startswith("web_check-")).rstrip(":")
    return Simulated(store, run_id, result.output, result.exit_code)


def test_sim_prints_each_failed_host_with_its_output_and_a_recap(failed_run: Simulated) -> None:
    assert failed_run.exit_code == 1
    out = failed_run.output.splitlines()
    start = out.index("  4 failed hosts:")
    web01 = out.index("    web01 (wave 1, failed): verify_web: exit status 3")
    # the last 5 lines of stderr, under the host, not its first two
    assert out[web01 + 1 : web01 + 6] == [
        "      stderr | step 2 ok",
        "      stderr | step 3 ok",
        "      stderr | step 4 ok",
        "      stderr | health: 503 from nginx",
        "      stderr | verify failed",
    ]
    assert "checking web01" not in failed_run.output and start < web01
    db01 = out.index("    db01 (wave 3, failed): db_check: exit status 2")
    assert out[db01 + 1] == "      stdout | replication lag 42s on db01"  # stderr empty: stdout
    recap = out.index("  recap:")
    assert out[recap + 1 : recap + 3] == [
        "    3 hosts: exit status 3 in verify_web \u2014 web01, web02, web03",
        "    1 host: exit status 2 in db_check \u2014 db01",
    ]
    assert f"  more: sysflow status {failed_run.run_id} --failed --store {failed_run.store}" in out[-1]
    assert f"sysflow logs {failed_run.run_id} HOST --store {failed_run.store}" in out[-1]


def test_progress_lines_count_in_good_grammar(failed_run: Simulated) -> None:
    text = failed_run.output
    assert "wave_started: wave 1: 1 host\n" in text and "wave_started: wave 2: 2 hosts\n" in text
    assert "1 host failed): 1 of 1 host failed" in text  # the view's count and the engine's message
    assert "host(s)" not in text and " 1 hosts" not in text


def test_status_run_is_a_per_wave_host_table(failed_run: Simulated) -> None:
    code, text = failed_run.cli("status", failed_run.run_id)
    assert code == 0, text
    lines = text.splitlines()
    assert lines[0].startswith(f"{failed_run.run_id}  web_check  completed_with_failures  wave 3")
    assert lines[1] == "  failed: 4 of 5 hosts"
    assert lines[2].split() == ["HOST", "WAVE", "OUTCOME", "FAILED", "TASK", "REASON"]
    assert lines[3] == "wave 1: 1 host (1 failed)"
    assert lines[4].split() == ["web01", "1", "failed", "verify_web", "exit", "status", "3"]
    assert lines[5] == "wave 2: 2 hosts (2 failed)"
    assert [line.split()[:4] for line in lines[6:8]] == [
        ["web02", "2", "failed", "verify_web"],
        ["web03", "2", "failed", "verify_web"],
    ]
    assert lines[8] == "wave 3: 2 hosts (1 failed, 1 succeeded)"
    assert lines[9].split() == ["cache01", "3", "succeeded", "-", "-"]
    assert lines[10].split() == ["db01", "3", "failed", "db_check", "exit", "status", "2"]
    assert len(lines) == 11
    assert lines[2].index("OUTCOME") == lines[4].index("failed") == lines[9].index("succeeded")


def test_status_failed_and_host(failed_run: Simulated) -> None:
    code, text = failed_run.cli("status", failed_run.run_id, "--failed")
    assert code == 0, text
    rows = [line.split()[0] for line in text.splitlines()[3:] if "|" not in line]
    assert rows == ["wave", "web01", "wave", "web02", "web03", "wave", "db01"]
    assert "    stderr | health: 503 from nginx" in text.splitlines()  # why, under the host
    assert text.splitlines()[-1] == "    stdout | replication lag 42s on db01"  # stdout when stderr is empty
    assert "wave 3: 2 hosts (1 failed, 1 succeeded)" in text  # the wave's counts, not only the shown
    code, text = failed_run.cli("status", failed_run.run_id, "--host", "web02")
    assert code == 0, text
    lines = text.splitlines()
    assert lines[1] == "host web02:"
    assert lines[2].split() == ["TASK", "STATE", "EXIT", "DURATION", "ATTEMPTS", "ERROR"]
    assert lines[3].split() == ["prep", "succeeded", "0", "2.0s", "1", "-"]
    assert lines[4].split() == ["verify_web", "failed", "3", "1.0s", "1", "exit", "status", "3"]
    assert len(lines) == 5


def test_status_host_prefix_unknown_and_ambiguous(failed_run: Simulated) -> None:
    code, text = failed_run.cli("status", failed_run.run_id, "--host", "cache")
    assert code == 0 and "host cache01:" in text
    code, text = failed_run.cli("status", failed_run.run_id, "--host", "nope")
    assert code == 3 and text.strip() == f"error: no host 'nope' in run {failed_run.run_id}"
    code, text = failed_run.cli("status", failed_run.run_id, "--host", "web")
    assert code == 3
    assert text.strip() == f"error: 'web' matches 3 hosts of run {failed_run.run_id}: web01, web02, web03"
    code, text = failed_run.cli("status", "--failed")
    assert code == 2 and "--failed and --host need a RUN" in text


def test_status_json(failed_run: Simulated) -> None:
    code, text = failed_run.cli("status", failed_run.run_id, "--failed", "--json")
    assert code == 0, text
    doc = json.loads(text)
    assert doc["run"]["status"] == "completed_with_failures" and doc["run"]["wave"] == 3
    assert [(h["host"], h["wave"], h["failed_task"], h["exit_status"]) for h in doc["hosts"]] == [
        ("web01", 1, "verify_web", 3),
        ("web02", 2, "verify_web", 3),
        ("web03", 2, "verify_web", 3),
        ("db01", 3, "db_check", 2),
    ]
    code, text = failed_run.cli("status", failed_run.run_id, "--host", "db01", "--json")
    ops = json.loads(text)["ops"]
    assert [(o["task"], o["state"], o["exit_status"], o["duration"]) for o in ops] == [
        ("prep", "succeeded", 0, 2.0),
        ("db_check", "failed", 2, 1.0),
    ]
    code, text = failed_run.cli("status", "--json")
    assert code == 0 and [r["id"] for r in json.loads(text)["runs"]] == [failed_run.run_id]


def test_logs_of_a_host_and_of_a_task(failed_run: Simulated) -> None:
    code, text = failed_run.cli("logs", failed_run.run_id, "web01")
    assert code == 0, text
    assert text.splitlines() == [
        "== web01 prep (succeeded, exit 0) ==",
        "$ prep-host",
        "-- stdout --",
        "prep on web01",
        "\\x1b[2Jcleared",  # the escape sequence is shown, not sent to the terminal
        "",
        "== web01 verify_web (failed, exit 3) ==",
        "$ verify-web",
        "-- stderr --",
        "checking web01",
        "step 1 ok",
        "step 2 ok",
        "step 3 ok",
        "step 4 ok",
        "health: 503 from nginx",
        "verify failed",
    ]
    code, text = failed_run.cli("logs", failed_run.run_id, "web03", "verify_web", "--lines", "2")
    assert code == 0 and text.splitlines()[3:] == [
        "... 5 earlier lines not shown (--lines 0 shows all)",
        "health: 503 from nginx",
        "verify failed",
    ]
    code, text = failed_run.cli("logs", failed_run.run_id, "--failed")
    headers = [line for line in text.splitlines() if line.startswith("== ")]
    assert headers == [
        "== web01 verify_web (failed, exit 3) ==",
        "== web02 verify_web (failed, exit 3) ==",
        "== web03 verify_web (failed, exit 3) ==",
        "== db01 db_check (failed, exit 2) ==",
    ]


def test_logs_errors_are_one_line(failed_run: Simulated) -> None:
    code, text = failed_run.cli("logs", failed_run.run_id, "web01", "nope")
    assert code == 3
    assert (
        text.strip()
        == f"error: no task 'nope' in run {failed_run.run_id} (tasks: db_check, prep, verify_web)"
    )
    code, text = failed_run.cli("logs", "nope")
    assert code == 3 and text.strip() == f"error: no run 'nope' in {failed_run.store}"
    code, text = failed_run.cli("logs", failed_run.run_id, "cache01", "--failed")
    assert code == 0 and text.strip() == f"no failed operations ran in run {failed_run.run_id} for cache01"


def test_approval_request_says_how_to_approve(tmp_path: Path) -> None:
    argv = ["sim", str(EXAMPLES / "patching.yaml"), "-i", str(EXAMPLES / "inventory.ini")]
    result = runner.invoke(app, [*argv, "--start", DEMO_START.isoformat()])
    assert result.exit_code == 0, result.output
    (line,) = [x for x in result.output.splitlines() if "approval_requested" in x]
    run_id = next(w for w in result.output.split() if w.startswith("os_patching-")).rstrip(":")
    assert line.endswith(f"approval_requested: wave 2 waits for approval: sysflow approve {run_id} --wave 2")


def test_words() -> None:
    assert [plural(n, "host") for n in (0, 1, 2)] == ["0 hosts", "1 host", "2 hosts"]
    assert tidy("wave 1: 1 hosts; 0 of 1 host(s) failed, 3 host(s), 1 checks passed") == (
        "wave 1: 1 host; 0 of 1 host failed, 3 hosts, 1 check passed"
    )
    assert tidy("11 hosts, 21 operations") == "11 hosts, 21 operations"
    assert printable("a\r\nb\rc\x07\x1b[0m\td") == "a\nb\nc\\x07\\x1b[0m\td"
    assert tail("1\n2\n3\n", 2) == (["2", "3"], 1) and tail("", 5) == ([], 0) and tail("x", 0) == (["x"], 0)


def test_a_rolled_back_wave_in_the_recap_and_in_status(tmp_path: Path) -> None:
    """web0003 cannot be reached in wave 3 of the demo rollout: the wave stops and rolls back, so
    web0004 is rolled back with it; status from the store tells the same story as the run's recap."""
    profile = tmp_path / "p.yaml"
    profile.write_text('hosts:\n  - {hosts: "web0003*", unreachable: refused}\n')
    store = tmp_path / "s.db"
    argv = ["sim", str(EXAMPLES / "demo" / "patching.yaml"), "--hosts", "9", "--profile", str(profile)]
    result = runner.invoke(app, [*argv, "--store", str(store), "--start", DEMO_START.isoformat()])
    assert result.exit_code == 1
    assert (
        "  2 failed hosts:\n    web0003.lon.example.com (wave 3, rolled back): backup: HostUnreachable: "
        in (result.output)
    )
    assert "web0004.ams.example.com (wave" not in result.output  # no failure of its own: recap only
    assert (
        "    1 host: rolled back with its wave; wave 3: 1 of 2 hosts failed (max_failures 5%) \u2014 "
        "web0004.ams.example.com\n" in result.output
    )
    run_id = next(w for w in result.output.split() if w.startswith("os_patching_demo-")).rstrip(":")
    status = runner.invoke(app, ["status", run_id, "--failed", "--store", str(store)])
    assert status.output.splitlines()[4] == "wave 3: 2 hosts (2 rolled back)"
    rows = [line.split()[:4] for line in status.output.splitlines()[5:] if "remedy:" not in line]
    assert rows == [
        ["web0003.lon.example.com", "3", "rolled_back", "backup"],
        ["web0004.ams.example.com", "3", "rolled_back", "-"],
    ]
    assert status.output.splitlines()[6].startswith("    remedy: check the host")  # under web0003 only
    everyone = runner.invoke(app, ["status", run_id, "--store", str(store)]).output
    assert (
        "  web0005.fra.example.com    4     not_started  -            the rollout stopped first: wave 3"
        in everyone
    )


def test_recap_of_a_large_failure_is_capped() -> None:
    """25 hosts failing alike: 20 shown with their output, the rest counted; the recap names 10."""
    from sysflow.cli.views import HostView, failure_recap
    from sysflow.engine.result import OpRecord
    from sysflow.engine.states import OpState

    def failed(i: int) -> HostView:
        op = OpRecord(f"t@h{i}", f"h{i}", "t", 0, OpState.FAILED, exit_status=1, stdout="out\n", stderr=" \n")
        return HostView(f"h{i}", 0, "failed", "t", "exit status 1", op)

    lines = failure_recap([failed(i) for i in range(1, 26)])
    assert lines[0] == "  25 failed hosts:"
    assert lines[1:3] == ["    h1 (wave 1, failed): t: exit status 1", "      stdout | out"]  # blank stderr
    assert lines[-3] == "    ... and 5 more hosts"
    assert lines[-2] == "  recap:"
    assert (
        lines[-1]
        == "    25 hosts: exit status 1 in t \u2014 h1, h2, h3, h4, h5, h6, h7, h8, h9, h10 and 15 more"
    )
