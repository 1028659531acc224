"""``sysflow run`` narrowed: ``--limit`` (patterns, ``@failed:RUN``), ``--tags``/``--skip-tags``,
``--start-at-task``, ``-e`` and ``--forks``, over the real sshd; each task appends a marker line
to a per-host file, so what ran is read back from the hosts' side."""

from __future__ import annotations

import json
import os
import re
import shlex
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from tests.fixtures.sshd import SSHD

SYSFLOW = [sys.executable, "-m", "sysflow"]
HOSTS = ["h0001", "h0002", "h0003"]

WORKFLOW = """\
name: targeted
tasks:
  - id: prep
    run: 'echo prep >> {{ vars.marks }}/{{ host.name }}'
    tags: [prep]
  - id: patch
    run: 'echo patch-{{ vars.pkg }} >> {{ vars.marks }}/{{ host.name }}; test {{ vars.broken }} != yes'
    depends_on: [prep]
    tags: [patch]
  - id: report
    run: 'echo report >> {{ vars.marks }}/{{ host.name }}'
    depends_on: [patch]
    tags: [report, always]
"""


class Fleet:
    """Workflow, inventory, ssh config and store of one test; runs the real CLI in a subprocess."""

    def __init__(self, tmp: Path, sshd: SSHD, workflow: str = WORKFLOW) -> None:
        self.tmp = tmp
        self.marks = tmp / "marks"
        self.marks.mkdir()
        self.config = sshd.write_client_config(tmp / "ssh_config", HOSTS)
        self.known_hosts = sshd.known_hosts
        self.inventory = tmp / "hosts.ini"
        self.inventory.write_text(
            "[fleet]\nh0001\nh0002 broken=yes\nh0003\n"
            f"[fleet:vars]\nmarks={self.marks}\npkg=curl\nbroken=no\n"
        )
        self.workflow = tmp / "wf.yaml"
        self.workflow.write_text(workflow)
        self.store = tmp / "state.db"

    def run(self, *extra: str) -> subprocess.CompletedProcess[str]:
        argv = [*SYSFLOW, "run", str(self.workflow), "-i", str(self.inventory)]
        argv += ["--ssh-config", str(self.config), "--known-hosts", str(self.known_hosts)]
        argv += ["--store", str(self.store), *extra]
        return subprocess.run(argv, capture_output=True, text=True, timeout=180, env=dict(os.environ))

    def lines(self, host: str) -> list[str]:
        path = self.marks / host
        return path.read_text().split() if path.exists() else []

    def clear(self) -> None:
        for path in self.marks.iterdir():
            path.unlink()

    def stored_hosts(self, run_id: str) -> set[str]:
        with sqlite3.connect(self.store) as db:
            rows = db.execute("SELECT DISTINCT host FROM ops WHERE run_id = ?", (run_id,)).fetchall()
        return {str(r[0]) for r in rows}


@pytest.mark.ssh
def test_limit_failed_run_reruns_only_the_failed_host_with_extra_vars(sshd: SSHD, tmp_path: Path) -> None:
    fleet = Fleet(tmp_path, sshd)
    first = fleet.run()
    assert first.returncode == 1, first.stderr
    hint = re.search(r"re-run the failed hosts: (sysflow run .*) --limit @failed:(\S+)", first.stdout)
    assert hint is not None, first.stdout
    assert hint.group(1) == (
        f"sysflow run {fleet.workflow} -i {fleet.inventory}"
        f" --ssh-config {fleet.config} --known-hosts {fleet.known_hosts}"
    )  # the way the hosts were reached comes along, so the line works as printed
    printed = re.search(r"re-run the failed hosts: sysflow (.*)$", first.stdout, re.M)
    assert printed is not None and f"--limit @failed:{hint.group(2)} --store {fleet.store}" in printed.group(
        1
    )
    assert fleet.lines("h0002") == ["prep", "patch-curl"]  # failed at patch: report never ran
    assert fleet.lines("h0001") == ["prep", "patch-curl", "report"]
    fleet.clear()

    argv = [*SYSFLOW, *shlex.split(printed.group(1)), "-e", "broken=no", "-e", '{"pkg": "openssl"}']
    again = subprocess.run(argv, capture_output=True, text=True, timeout=180, env=dict(os.environ))
    assert again.returncode == 0, again.stdout + again.stderr
    assert fleet.lines("h0002") == ["prep", "patch-openssl", "report"]  # -e beat the inventory vars
    assert fleet.lines("h0001") == [] and fleet.lines("h0003") == []
    second = re.search(r"run (\S+): completed \(1 succeeded\)", again.stdout)
    assert second is not None, again.stdout
    assert fleet.stored_hosts(second.group(1)) == {"h0002"}
    assert "re-run the failed hosts" not in again.stdout


@pytest.mark.ssh
def test_tags_skip_tags_and_start_at_task_choose_the_tasks(sshd: SSHD, tmp_path: Path) -> None:
    fleet = Fleet(tmp_path, sshd)
    cases = [
        (["--tags", "patch"], ["patch-curl", "report"]),  # report is tagged 'always'
        (["--tags", "prep,patch", "--skip-tags", "always"], ["prep", "patch-curl"]),
        (["--skip-tags", "patch"], ["prep", "report"]),  # report still runs after prep
        (["--start-at-task", "patch"], ["patch-curl", "report"]),
    ]
    for options, expected in cases:
        done = fleet.run("--limit", "h0001", *options)
        assert done.returncode == 0, (options, done.stdout, done.stderr)
        assert fleet.lines("h0001") == expected, options
        assert fleet.lines("h0003") == [], options
        fleet.clear()
    unknown = fleet.run("--limit", "h0003", "--tags", "pacth,report")
    assert unknown.returncode == 0, unknown.stderr
    assert "no task has tag(s) pacth; known tags: always, patch, prep, report" in unknown.stderr
    assert fleet.lines("h0003") == ["report"]


@pytest.mark.ssh
def test_limit_patterns_and_errors_name_what_is_wrong(sshd: SSHD, tmp_path: Path) -> None:
    fleet = Fleet(tmp_path, sshd)
    done = fleet.run("--limit", "fleet:!h0002", "--tags", "prep")
    assert done.returncode == 0, done.stderr
    assert [fleet.lines(h) for h in HOSTS] == [["prep", "report"], [], ["prep", "report"]]
    retry = tmp_path / "retry.txt"
    retry.write_text("# hosts to redo\nh0003\n\n")
    fleet.clear()
    assert fleet.run("--limit", f"@{retry}", "--tags", "prep").returncode == 0
    assert [fleet.lines(h) for h in HOSTS] == [[], [], ["prep", "report"]]
    bad = fleet.run("--limit", "web*,h0001")
    assert bad.returncode == 1
    assert "'web*' matches no host" in bad.stderr and "Traceback" not in bad.stderr
    start = fleet.run("--start-at-task", "pach")
    assert start.returncode == 1
    assert "--start-at-task 'pach': no such task; tasks: prep, patch, report" in start.stderr
    nothing = fleet.run("--limit", "@failed:nosuchrun")
    assert nothing.returncode == 3 and "nosuchrun" in nothing.stderr


def _intervals(stdout: str) -> dict[str, tuple[datetime, datetime]]:
    """host -> (first op start, last op end), from the --json event stream."""
    spans: dict[str, list[datetime]] = {}
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        event = json.loads(line)
        if event["kind"] in ("op_started", "op_finished") and event.get("host"):
            spans.setdefault(event["host"], []).append(datetime.fromisoformat(event["at"]))
    return {h: (min(ts), max(ts)) for h, ts in spans.items()}


@pytest.mark.ssh
def test_forks_one_runs_hosts_one_after_another(sshd: SSHD, tmp_path: Path) -> None:
    slow = "name: slow\ntasks:\n  - id: nap\n    run: 'sleep 0.3; echo nap >> {{ vars.marks }}/{{ host.name }}'\n"
    fleet = Fleet(tmp_path, sshd, slow + "parallelism:\n  max_parallel_servers: 2\n")
    done = fleet.run("--limit", "h0001,h0003", "--forks", "1", "--json")
    assert done.returncode == 0, done.stderr
    spans = sorted(_intervals(done.stdout).values())
    assert len(spans) == 2
    assert spans[0][1] <= spans[1][0]  # the second host started after the first finished
    refused = fleet.run("--forks", "3")
    assert refused.returncode == 1
    assert "--forks 3 is above the workflow's max_parallel_servers (2); add --force" in refused.stderr
    assert fleet.lines("h0001") == ["nap"]  # the refused run ran nothing
    assert fleet.run("--forks", "3", "--force", "--dry-run").returncode == 0
    preview = fleet.run("--limit", "h0003", "--dry-run")  # the plan of the limited set
    assert preview.returncode == 0 and "hosts       1 of 1 in the inventory" in preview.stdout, preview.stdout
