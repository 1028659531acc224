"""``sysflow run`` with become over the real sshd: the login is the non-root ``sfmaint`` and sudo is
the real one with a sudoers entry that asks for its password (tests/fixtures/sshd.py). What the
commands printed is read back from the run store through ``sysflow logs``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.sshd import SSHD

pytestmark = pytest.mark.ssh

SYSFLOW = [sys.executable, "-m", "sysflow"]
HOSTS = ["h0031", "h0032"]

WHOAMI = """\
name: whoami
tasks:
  - id: root
    run: id -un
    become: true
  - id: nobody
    run: id -un
    become: true
    become_user: nobody
    depends_on: [root]
"""

PLAIN = """\
name: plain
tasks:
  - id: shadow
    run: head -c 0 /etc/shadow && id -un
"""


class Fleet:
    """Workflow, inventory (sfmaint logins), ssh config, store and audit log of one test."""

    def __init__(self, tmp: Path, sshd: SSHD, workflow: str, inventory: str) -> None:
        self.tmp = tmp
        self.config = sshd.write_client_config(tmp / "ssh_config", HOSTS, user=sshd.become_user)
        self.known_hosts = sshd.known_hosts
        self.inventory = tmp / "hosts.ini"
        self.inventory.write_text(inventory)
        self.workflow = tmp / "wf.yaml"
        self.workflow.write_text(workflow)
        self.store = tmp / "state.db"
        self.audit = tmp / "audit.db"

    def run(self, *extra: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        argv = [*SYSFLOW, "run", str(self.workflow), "-i", str(self.inventory)]
        argv += ["--ssh-config", str(self.config), "--known-hosts", str(self.known_hosts)]
        argv += ["--store", str(self.store), "--audit", str(self.audit), *extra]
        return subprocess.run(
            argv, input=stdin or "", capture_output=True, text=True, timeout=180, env=dict(os.environ)
        )

    def logs(self, run: subprocess.CompletedProcess[str], host: str) -> str:
        found = re.search(r"^run (\S+): ", run.stdout, re.M)
        assert found, run.stdout + run.stderr
        argv = [*SYSFLOW, "logs", found.group(1), host, "--store", str(self.store)]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=dict(os.environ))
        return out.stdout

    def stored_bytes(self) -> bytes:
        """Every file the run left behind: store (and its WAL), audit log, inputs."""
        return b"".join(p.read_bytes() for p in self.tmp.iterdir() if p.name.startswith(("state", "audit")))


def _block(logs: str, task: str) -> str:
    """The output under ``== HOST TASK (...) ==`` in ``sysflow logs``."""
    parts = re.split(r"^== \S+ (\S+) .*==$", logs, flags=re.M)
    blocks = dict(zip(parts[1::2], parts[2::2], strict=True))
    assert task in blocks, logs
    return blocks[task]


def test_inventory_password_runs_tasks_as_root_and_as_another_user(sshd: SSHD, tmp_path: Path) -> None:
    inventory = f"[fleet]\n{HOSTS[0]}\n[fleet:vars]\nansible_become_password={sshd.become_password}\n"
    fleet = Fleet(tmp_path, sshd, WHOAMI, inventory)
    run = fleet.run()
    assert run.returncode == 0, run.stdout + run.stderr
    logs = fleet.logs(run, HOSTS[0])
    assert "root" in _block(logs, "root").split()
    assert "nobody" in _block(logs, "nobody").split()
    assert sshd.become_password.encode() not in fleet.stored_bytes()


def test_cli_become_and_ask_become_pass_turn_it_on_for_every_task(sshd: SSHD, tmp_path: Path) -> None:
    fleet = Fleet(tmp_path, sshd, PLAIN, f"{HOSTS[0]}\n")
    run = fleet.run("--become", "--ask-become-pass", stdin=sshd.become_password + "\n")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "root" in _block(fleet.logs(run, HOSTS[0]), "shadow").split()
    assert sshd.become_password not in run.stdout + run.stderr
    assert sshd.become_password.encode() not in fleet.stored_bytes()


def test_without_become_a_root_only_command_is_denied(sshd: SSHD, tmp_path: Path) -> None:
    fleet = Fleet(tmp_path, sshd, PLAIN, f"{HOSTS[0]}\n")
    run = fleet.run()
    assert run.returncode == 1
    assert "Permission denied" in run.stdout, run.stdout + run.stderr


def test_wrong_password_is_one_clear_error_per_host_and_never_recorded(sshd: SSHD, tmp_path: Path) -> None:
    inventory = f"{HOSTS[0]} ansible_become_password={sshd.become_password}\n{HOSTS[1]}\n"
    fleet = Fleet(tmp_path, sshd, WHOAMI, inventory)
    wrong = "wrong-" + sshd.become_password
    run = fleet.run("--ask-become-pass", "--json", stdin=wrong + "\n")
    assert run.returncode == 1
    line = f"become password rejected by sudo on {HOSTS[1]} (user {sshd.become_user})"
    assert line in run.stdout + run.stderr
    assert f"on {HOSTS[0]}" not in run.stdout  # the host with its own (right) password ran
    for secret in (wrong, sshd.become_password):
        assert secret not in run.stdout + run.stderr  # --json: the event stream itself
        assert secret.encode() not in fleet.stored_bytes()


def test_missing_password_says_how_to_give_one(sshd: SSHD, tmp_path: Path) -> None:
    fleet = Fleet(tmp_path, sshd, WHOAMI, f"{HOSTS[1]}\n")
    run = fleet.run()
    assert run.returncode == 1
    assert (
        f"sudo: a password is required on {HOSTS[1]} (user {sshd.become_user}) — pass --ask-become-pass "
        "or set ansible_become_password"
    ) in run.stdout, run.stdout + run.stderr


ROLLBACK = """\
name: undo
rollout:
  auto_rollback: true
tasks:
  - id: change
    run: 'true'
    become: true
    rollback: id -un > {proof}
  - id: breaks
    run: 'false'
    depends_on: [change]
"""


def test_rollback_runs_as_the_same_user_as_its_task(sshd: SSHD, tmp_path: Path) -> None:
    inventory = f"{HOSTS[0]} ansible_become_password={sshd.become_password}\n"
    proof = tmp_path / "rolled-back-by"  # under root's private pytest dir: sfmaint cannot write it
    fleet = Fleet(tmp_path, sshd, ROLLBACK.format(proof=proof), inventory)
    run = fleet.run()
    assert run.returncode == 1
    assert "rolled_back" in fleet.logs(run, HOSTS[0])
    assert proof.read_text() == "root\n", run.stdout
