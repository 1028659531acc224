"""Before a run, over the real sshd: ``run --check`` (nothing runs), pre-flight refusing unknown and
changed host keys (naming known_hosts and the remedy), ``--host-keys accept-new`` (appended and
audited), ``--key /nope``, ``sysflow ping`` and the remedies of failed hosts. The CLI runs in a
subprocess; assertions are on the text a person reads."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.sshd import SSHD, _keygen

SYSFLOW = [sys.executable, "-m", "sysflow"]
HOSTS = ["h0001", "h0002"]

WORKFLOW = """\
name: touchy
secrets: [api_token]
windows:
  timezone: Europe/Amsterdam
  groups:
    fleet: Mon-Sun 00:00-23:59
rollout:
  strategy: waves
  waves: [[h0001], [h0002]]
tasks:
  - id: mark
    run: 'touch {{ vars.marks }}/{{ host.name }}; echo {{ vars.api_token }} > /dev/null'
verifications:
  alive:
    commands:
      up: {command: 'uptime'}
"""


class Fleet:
    """Workflow, inventory and ssh config of one test; runs the real CLI in a subprocess."""

    def __init__(self, tmp: Path, sshd: SSHD, *, key: Path | None = None, workflow: str = WORKFLOW) -> None:
        self.tmp = tmp
        self.marks = tmp / "marks"
        self.marks.mkdir()
        self.config = sshd.write_client_config(tmp / "ssh_config", HOSTS, key=key)
        self.known_hosts = tmp / "known_hosts"
        self.known_hosts.write_text(sshd.known_hosts.read_text())
        self.inventory = tmp / "hosts.ini"
        self.inventory.write_text(
            f"[fleet]\nh0001\nh0002\n[fleet:vars]\nmarks={self.marks}\napi_token=s3cr3t-T0K\n"
        )
        self.workflow = tmp / "wf.yaml"
        self.workflow.write_text(workflow)
        self.store = tmp / "state.db"
        self.audit = tmp / "audit.db"

    def cli(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*SYSFLOW, *argv], capture_output=True, text=True, timeout=180, env=dict(os.environ)
        )

    def run(self, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.cli(
            "run", str(self.workflow), "-i", str(self.inventory), "--ssh-config", str(self.config),
            "--known-hosts", str(self.known_hosts), "--store", str(self.store), "--approve-all", *extra,
        )  # fmt: skip

    def ping(self, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.cli(
            "ping", "all", "-i", str(self.inventory), "--ssh-config", str(self.config),
            "--known-hosts", str(self.known_hosts), *extra,
        )  # fmt: skip

    def marked(self) -> list[str]:
        return sorted(p.name for p in self.marks.iterdir())


@pytest.mark.ssh
def test_check_previews_rendered_commands_per_wave_and_window_and_runs_nothing(
    sshd: SSHD, tmp_path: Path
) -> None:
    fleet = Fleet(tmp_path, sshd)
    out = fleet.run("--check")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "nothing is connected to or run" in text and "times in Europe/Amsterdam" in text
    assert "wave 1: 1 host\n" in text and "wave 2: 1 host\n" in text
    assert re.search(r"^  window \d{4}-\d\d-\d\d \d\d:\d\d\u2013.* Europe/Amsterdam$", text, re.M), text
    line = next(x for x in text.splitlines() if x.strip().startswith("h0001"))
    assert f"touch {fleet.marks}/h0001" in line and "********" in line and "s3cr3t" not in text
    assert "  gate after wave 1:\n    verification alive.up: uptime" in text
    assert re.search(r"^2 hosts, 2 operations, 2 waves; predicted finish \d{4}-\d\d-\d\d", text, re.M)
    assert fleet.marked() == []  # nothing ran
    assert not fleet.store.exists()


@pytest.mark.ssh
def test_unknown_host_key_refuses_the_run_then_accept_new_trusts_and_audits_it(
    sshd: SSHD, tmp_path: Path
) -> None:
    fleet = Fleet(tmp_path, sshd)
    fleet.known_hosts.write_text("")
    refused = fleet.run("--audit", str(fleet.audit))
    assert refused.returncode == 1
    out = refused.stdout
    assert "pre-flight: 2 of 2 hosts not ready; the run was not started:" in out
    assert re.search(
        r"^  h0001\s+host key\s+host key unknown: \[127\.77\.0\.\d+\]:\d+ is not in known_hosts", out, re.M
    )
    assert f"({fleet.known_hosts})" in out and "--host-keys accept-new" in out
    assert "HostKeyMismatch" not in out and "changed" not in out
    assert fleet.marked() == [] and not fleet.store.exists()  # no run, no rollback, no store row

    ok = fleet.run("--audit", str(fleet.audit), "--host-keys", "accept-new")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert re.search(r"accepted new host key: \[127\.77\.0\.\d+\]:\d+ SHA256:\S+ appended to ", ok.stdout)
    assert "pre-flight: 2 of 2 hosts ready" in ok.stdout
    assert fleet.marked() == HOSTS
    written = fleet.known_hosts.read_text().splitlines()
    assert len(written) == len({sshd.address_of(h) for h in HOSTS})
    assert all(re.match(r"\[127\.77\.0\.\d+\]:\d+ ssh-ed25519 \S+$", line) for line in written)
    audit = fleet.cli("audit", "query", str(fleet.audit))
    assert audit.returncode == 0 and "host_key_accepted" in audit.stdout, audit.stdout
    assert fleet.ping().returncode == 0  # now known: strict passes


@pytest.mark.ssh
def test_a_changed_host_key_is_reported_as_changed_with_the_ssh_keygen_remedy(
    sshd: SSHD, tmp_path: Path
) -> None:
    fleet = Fleet(tmp_path, sshd)
    other = _keygen(tmp_path / "other_host_key")
    key = " ".join(Path(f"{other}.pub").read_text().split()[:2])
    fleet.known_hosts.write_text("".join(f"[{sshd.address_of(h)}]:{sshd.port} {key}\n" for h in HOSTS))
    out = fleet.ping("--host-keys", "accept-new")  # accept-new never accepts a changed key
    assert out.returncode == 1
    assert re.search(r"^h0001\s+FAILED\s+host key: host key changed", out.stdout, re.M), out.stdout
    assert "possible man-in-the-middle" in out.stdout
    assert f"ssh-keygen -R '[{sshd.address_of('h0001')}]:{sshd.port}' -f {fleet.known_hosts}" in out.stdout
    assert "unknown" not in out.stdout
    assert fleet.known_hosts.read_text().count(key) == len(HOSTS)  # untouched


@pytest.mark.ssh
def test_ping_prints_one_line_per_host(sshd: SSHD, tmp_path: Path) -> None:
    fleet = Fleet(tmp_path, sshd)
    out = fleet.ping()
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert [re.match(r"^(h000\d)\s+ok\s+\d+ ms$", x) is not None for x in lines[:2]] == [True, True], lines
    assert lines[2] == "2 of 2 hosts ok"


def test_a_missing_key_file_is_one_line_before_any_connection(tmp_path: Path) -> None:
    inv = tmp_path / "hosts.ini"
    inv.write_text("web1 ansible_host=127.0.0.1 ansible_port=9\n")
    wf = tmp_path / "wf.yaml"
    wf.write_text("name: probe\ntasks:\n  - id: t\n    run: 'true'\n")
    for argv in (["run", str(wf), "-i", str(inv)], ["ping", "all", "-i", str(inv)]):
        out = subprocess.run([*SYSFLOW, *argv, "--key", "/nope"], capture_output=True, text=True, timeout=60)
        assert out.returncode == 1
        assert out.stderr.splitlines() == ["error: --key /nope: no such file; nothing was contacted"]
        assert out.stdout == ""


@pytest.mark.ssh
def test_authentication_failure_names_the_key_tried_and_the_remedy(sshd: SSHD, tmp_path: Path) -> None:
    stranger = _keygen(tmp_path / "stranger")  # not in authorized_keys
    fleet = Fleet(tmp_path, sshd, key=stranger)
    out = fleet.ping()
    assert out.returncode == 1
    assert re.search(
        rf"^h0001\s+FAILED\s+auth: authentication failed \(keys tried: {re.escape(str(stranger))}; no agent\)",
        out.stdout,
        re.M,
    ), out.stdout
    assert "remedy: the host refused every credential" in out.stdout
    assert out.stdout.splitlines()[-1] == "0 of 2 hosts ok, 2 failed"


@pytest.mark.ssh
def test_a_failed_run_says_what_to_do_about_command_not_found(sshd: SSHD, tmp_path: Path) -> None:
    workflow = "name: broken\ntasks:\n  - id: t\n    run: 'sysflow-no-such-command --now'\n"
    fleet = Fleet(tmp_path, sshd, workflow=workflow)
    out = fleet.run()
    assert out.returncode == 1
    assert "      remedy: command not found: check the command's name for this OS" in out.stdout, out.stdout
    run_id = re.search(r"^run (broken-\S+):", out.stdout, re.M)
    assert run_id is not None
    status = fleet.cli("status", run_id.group(1), "--failed", "--store", str(fleet.store))
    assert "    remedy: command not found" in status.stdout, status.stdout


@pytest.mark.ssh
def test_preflight_refuses_hosts_without_the_free_disk_the_workflow_declares(
    sshd: SSHD, tmp_path: Path
) -> None:
    needy = WORKFLOW.replace("tasks:\n", "preflight:\n  disk: {path: /tmp, min_free: 1000TiB}\ntasks:\n", 1)
    fleet = Fleet(tmp_path, sshd, workflow=needy)
    out = fleet.run()
    assert out.returncode == 1
    assert re.search(
        r"^  h0001\s+disk\s+[\d.]+ [KMGT]?i?B free on /tmp, needs 1000\.0 TiB", out.stdout, re.M
    ), out.stdout
    assert fleet.marked() == []
    assert "lower preflight.disk.min_free" in out.stdout  # the remedy column
    (tmp_path / "ok").mkdir()
    enough = Fleet(tmp_path / "ok", sshd, workflow=needy.replace("1000TiB", "1KiB"))
    done = enough.run()
    assert done.returncode == 0, done.stdout
    assert enough.marked() == HOSTS


def test_a_bad_disk_size_is_refused_by_validate_with_its_line(tmp_path: Path) -> None:
    wf = tmp_path / "wf.yaml"
    wf.write_text(
        "name: x\npreflight:\n  disk: {path: /var, min_free: lots}\ntasks:\n  - id: t\n    run: 'true'\n"
    )
    inv = tmp_path / "hosts.ini"
    inv.write_text("web1\n")
    out = subprocess.run(
        [*SYSFLOW, "validate", str(wf), "-i", str(inv)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 1
    assert f"{wf}:3:" in out.stderr and "'lots' is not a size" in out.stderr, out.stderr


@pytest.mark.ssh
def test_the_ssh_configs_user_known_hosts_file_is_used_without_known_hosts(
    sshd: SSHD, tmp_path: Path
) -> None:
    """As ``ssh -F CONFIG`` does: the config's UserKnownHostsFile, not ~/.ssh/known_hosts."""
    fleet = Fleet(tmp_path, sshd)
    config = fleet.config.read_text()
    fleet.config.write_text(f"Host *\n  UserKnownHostsFile {fleet.known_hosts}\n\n{config}")
    argv = ["ping", "all", "-i", str(fleet.inventory), "--ssh-config", str(fleet.config)]
    out = fleet.cli(*argv)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines()[-1] == "2 of 2 hosts ok"
    # an emptied file is the one checked: both hosts are now unknown, and it is named
    fleet.known_hosts.write_text("")
    out = fleet.cli(*argv)
    assert out.returncode == 1
    assert "host key unknown" in out.stdout and str(fleet.known_hosts) in out.stdout
    # hosts naming different files: one line, pass --known-hosts
    fleet.config.write_text(
        f"Host h0001\n  UserKnownHostsFile {tmp_path / 'a'}\nHost h0002\n  UserKnownHostsFile {tmp_path / 'b'}\n"
        f"\n{config}"
    )
    out = fleet.cli(*argv)
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.splitlines() == [
        f"{fleet.config}: UserKnownHostsFile differs between hosts"
        f" (h0001: {tmp_path / 'a'}, h0002: {tmp_path / 'b'}); pass --known-hosts FILE"
    ], out.stderr


@pytest.mark.ssh
def test_keys_accepted_during_a_run_without_preflight_are_audited_under_the_run(
    sshd: SSHD, tmp_path: Path
) -> None:
    fleet = Fleet(tmp_path, sshd)
    fleet.known_hosts.write_text("")
    ok = fleet.run("--audit", str(fleet.audit), "--host-keys", "accept-new", "--no-preflight")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    run_id = re.search(r"^run (\S+): completed", ok.stdout, re.M)
    assert run_id is not None, ok.stdout
    assert re.search(
        r"^accepted new host key: \[127\.77\.0\.\d+\]:\d+ SHA256:\S+ appended to ", ok.stdout, re.M
    )
    audit = fleet.cli("audit", "query", str(fleet.audit), "--run", run_id.group(1), "--json")
    accepted = [r for r in map(json.loads, audit.stdout.splitlines()) if r["action"] == "host_key_accepted"]
    assert len(accepted) == len({sshd.address_of(h) for h in HOSTS}), audit.stdout
    assert fleet.cli("audit", "verify", str(fleet.audit)).returncode == 0  # appended on the same chain


@pytest.mark.ssh
def test_resume_checks_keys_against_the_ssh_configs_user_known_hosts_file(sshd: SSHD, tmp_path: Path) -> None:
    fleet = Fleet(tmp_path, sshd)
    config = fleet.config.read_text()
    fleet.config.write_text(f"Host *\n  UserKnownHostsFile {fleet.known_hosts}\n\n{config}")
    prepare = (  # a run recorded by a process that then died before driving it
        "import sys; from sysflow import Engine, Inventory, MaintenanceWorkflow as W; "
        "e = Engine(Inventory.load(sys.argv[1]), store=sys.argv[2]); "
        "e.prepare(W.from_file(sys.argv[3]), run_id='touchy-1'); e.store.close()"
    )
    argv = [sys.executable, "-c", prepare, str(fleet.inventory), str(fleet.store), str(fleet.workflow)]
    subprocess.run(argv, check=True, capture_output=True, timeout=60)
    env = {**os.environ, "SYSFLOW_SECRET_API_TOKEN": "s3cr3t-T0K"}
    done = subprocess.run(
        [*SYSFLOW, "resume", "touchy-1", "--store", str(fleet.store), "--ssh-config", str(fleet.config)],
        capture_output=True, text=True, timeout=180, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "run touchy-1: completed" in done.stdout
    assert fleet.marked() == HOSTS
