"""The ``reboot`` module as a task: its defaults (timeout as the operation's bound, an estimate in the
chain), what it refuses, and its command run by a real ``sh`` here (the boot id and the mark; the
reboot-required file and ``needs-restarting -r``; the check resume runs)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from sysflow.actors.reboot import asked_boot_id
from sysflow.model.modules.reboot import REQUIRED_FILE
from sysflow.model.task import Task
from sysflow.transport import REBOOT_NEEDED, CommandResult, Reboot


def _task(**reboot: object) -> Task:
    return Task.model_validate({"id": "rb", "become": True, "reboot": reboot})


def _sh(script: str, tmp: Path, required: bool = False, needs_restarting: int | None = None) -> CommandResult:
    """Run ``script`` with the reboot-required file moved into ``tmp`` and a stand-in needs-restarting."""
    flag = tmp / "reboot-required"
    flag.unlink(missing_ok=True)
    if required:
        flag.write_text("*** System restart required ***\n")
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    if needs_restarting is not None:
        tool = bin_dir / "needs-restarting"
        tool.write_text(f"#!/bin/sh\nexit {needs_restarting}\n")
        tool.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin"}
    done = subprocess.run(
        ["sh", "-c", script.replace(REQUIRED_FILE, str(flag))], capture_output=True, text=True, env=env
    )
    from datetime import datetime

    now = datetime.now()
    return CommandResult("h", script, done.returncode, done.stdout, done.stderr, now, now)


def test_defaults_bound_the_operation_and_put_the_reboot_in_the_chain() -> None:
    task = _task()
    assert task.module == "reboot" and task.idempotent
    assert (task.timeout, task.estimate) == (600.0, 120.0)
    assert task.reboot_spec == Reboot(
        "cat -- /proc/sys/kernel/random/boot_id",
        "systemctl reboot || shutdown -r now",
        600.0,
        10.0,
        2.0,
        10.0,
    )
    short = _task(timeout="1m")
    assert (short.timeout, short.estimate) == (60.0, 60.0)
    given = Task.model_validate({"id": "rb", "reboot": {}, "timeout": "20m", "expected_duration": "3m"})
    assert (given.timeout, given.estimate) == (1200.0, 180.0)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"reboot": {"reboot_command": "reboot {{ vars.how }}"}}, "cannot be a template"),
        ({"reboot": {"boot_id_path": "relative"}}, "path must be absolute"),
        ({"reboot": {"timeout": 0}}, "greater than 0"),
        ({"reboot": {}, "local": True}, "not local, run_once or delegated"),
        ({"reboot": {}, "run_once": True}, "not local, run_once or delegated"),
        ({"reboot": {}, "delegate_to": "localhost"}, "not local, run_once or delegated"),
        ({"reboot": {}, "delegate_to": "lb1"}, "not local, run_once or delegated"),
        ({"reboot": {}, "run": "echo"}, "not both"),
        ({"reboot": {"reboots": 2}}, "Extra inputs are not permitted"),
    ],
)
def test_refusals(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Task.model_validate({"id": "rb", **fields})


def test_the_command_prints_the_boot_id_and_asks(tmp_path: Path) -> None:
    (tmp_path / "boot_id").write_text("1f0e-old\n")
    task = _task(boot_id_path=str(tmp_path / "boot_id"))
    result = _sh(task.run, tmp_path)
    assert result.exit_status == REBOOT_NEEDED and asked_boot_id(result) == "1f0e-old"
    assert result.stdout.endswith("reboot asked\n")
    assert _sh(task.check, tmp_path).exit_status == 1  # an unconditional reboot always has work to do
    missing = _sh(_task(boot_id_path=str(tmp_path / "nope")).run, tmp_path)
    assert missing.exit_status == 1 and "reboot: cannot read the boot id from" in missing.stderr


def test_only_if_required_asks_only_a_host_that_needs_it(tmp_path: Path) -> None:
    (tmp_path / "boot_id").write_text("1f0e-old\n")
    task = _task(only_if_required=True, boot_id_path=str(tmp_path / "boot_id"))
    calm = _sh(task.run, tmp_path)
    assert (calm.exit_status, calm.stdout) == (0, "::sysflow ok\nno reboot required\n")
    assert _sh(task.check, tmp_path).exit_status == 0
    debian = _sh(task.run, tmp_path, required=True)
    assert asked_boot_id(debian) == "1f0e-old" and f"{tmp_path}/reboot-required exists" in debian.stdout
    assert _sh(task.check, tmp_path, required=True).exit_status == 1
    rhel = _sh(task.run, tmp_path, needs_restarting=1)
    assert asked_boot_id(rhel) == "1f0e-old" and "needs-restarting -r: a reboot is required" in rhel.stdout
    assert _sh(task.run, tmp_path, needs_restarting=0).stdout.startswith("::sysflow ok\n")


def _btime() -> int:
    """When this machine booted (Unix seconds), as the check reads it."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return int(line.split()[1])
    raise AssertionError("no btime in /proc/stat")


def test_an_interrupted_reboot_is_not_done_twice_when_the_host_booted_since_it_began(tmp_path: Path) -> None:
    """Resume gives the check the instant the interrupted operation started: a host booted after it
    was rebooted by it (done); one that did not boot since still needs it."""
    task = _task(boot_id_path=str(tmp_path / "boot_id"))
    booted = f"SYSFLOW_OP_STARTED={_btime() - 30}; export SYSFLOW_OP_STARTED\n"
    done = _sh(booted + task.check, tmp_path)
    assert (done.exit_status, done.stdout) == (0, "booted since the reboot began\n")
    not_yet = f"SYSFLOW_OP_STARTED={_btime() + 30}; export SYSFLOW_OP_STARTED\n"
    assert _sh(not_yet + task.check, tmp_path).exit_status == 1
    required = _task(only_if_required=True, boot_id_path=str(tmp_path / "boot_id"))
    assert _sh(booted + required.check, tmp_path, required=True).exit_status == 0
