"""Secret sweep: after real ``sysflow run`` / ``resume`` processes over the loopback sshd, no secret
is anywhere sysflow writes.

Secret host variables (by name and from an inventory ``secrets:`` map), secrets on ``all`` (what an
extra var would be; sysflow has no ``-e``) and a name the workflow declares under ``secrets:`` are
substituted into commands that print them on stdout and stderr and store them on the "remote" host;
the key is protected by a passphrase given through the environment. Then every byte of the run store,
the audit log (SQLite files with whatever -wal/-shm files remain), the logs and output directories and the captured
stdout/stderr of every CLI process is searched: each secret occurs 0 times. The remote file shows the
hosts did receive the real values, and the stored records show the masks where the values were.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from sysflow.model.templates import REDACTED
from tests.fixtures.sshd import SSHD, host_names

pytestmark = [pytest.mark.ssh]

CLI_TIMEOUT = 180.0  # seconds for one sysflow process
PASSPHRASE_ENV = "SWEEP_KEY_PASSPHRASE"


def _secret() -> str:
    return "S" + secrets.token_hex(10)  # 21 characters of random text (never an echo option)


def _write_inputs(inputs: Path, remote: Path, names: list[str], values: dict[str, str]) -> tuple[Path, Path]:
    hosts = "".join(f"        {n}:\n          db_password: {values[f'db_password@{n}']}\n" for n in names)
    inventory = inputs / "inventory.yaml"
    inventory.write_text(
        "all:\n"
        "  vars:\n"
        f"    api_token: {values['api_token']}\n"
        f"    license_code: {values['license_code']}\n"
        "  children:\n"
        "    app:\n"
        "      hosts:\n"
        f"{hosts}"
        "      vars:\n"
        "        tier: backend\n"
        "        secrets:\n"
        f"          vault_value: {values['vault_value']}\n"
    )
    workflow = inputs / "workflow.yaml"
    workflow.write_text(
        "name: secret_sweep\n"
        "secrets: [license_code]\n"
        "tasks:\n"
        "  - id: show\n"
        "    run: echo {{ vars.db_password }} {{ vars.vault_value }} {{ vars.license_code }} tier={{ vars.tier }};"
        " echo token {{ vars.api_token }} >&2\n"
        "  - id: keep\n"
        f"    run: printf '%s %s %s' {{{{ vars.db_password }}}} {{{{ vars.vault_value }}}}"
        f" {{{{ vars.license_code }}}} > {remote}/{{{{ host.name }}}}.txt\n"
        "    depends_on: [show]\n"
        "  - id: config\n"
        f"    run: cat {remote}/{{{{ host.name }}}}.txt\n"  # prints secrets this command was not sent
        "    depends_on: [keep]\n"
    )
    return inventory, workflow


_SEED = """
import sys
from sysflow.engine.engine import Engine
from sysflow.model.inventory import Inventory
from sysflow.model.workflow import MaintenanceWorkflow

engine = Engine(Inventory.load(sys.argv[1]), store=sys.argv[3])
print(engine.prepare(MaintenanceWorkflow.from_file(sys.argv[2])).id)
engine.store.close()
"""


def _cli(args: list[str], env: dict[str, str], logs: Path, label: str) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(
        [sys.executable, "-m", "sysflow", *args],
        env=env,
        capture_output=True,
        timeout=CLI_TIMEOUT,
        check=False,
    )
    (logs / f"{label}.stdout").write_bytes(proc.stdout)
    (logs / f"{label}.stderr").write_bytes(proc.stderr)
    return proc


def _sweep(needles: dict[str, str], dirs: list[Path], captured: list[bytes]) -> dict[str, int]:
    """Occurrences of each secret in every file under ``dirs`` (bytes) and in the captured streams."""
    blobs = [p.read_bytes() for d in dirs for p in sorted(d.rglob("*")) if p.is_file()]
    blobs += captured
    return {label: sum(b.count(value.encode()) for b in blobs) for label, value in needles.items()}


def test_no_secret_reaches_store_audit_logs_outputs_or_console(sshd: SSHD, tmp_path: Path) -> None:
    names = host_names(2, prefix="sweep")
    values = {f"db_password@{n}": _secret() for n in names}
    values |= {"api_token": _secret(), "license_code": _secret(), "vault_value": _secret()}
    dirs = {d: tmp_path / d for d in ("inputs", "remote", "state", "audit", "logs", "out")}
    for d in dirs.values():
        d.mkdir()
    inventory, workflow = _write_inputs(dirs["inputs"], dirs["remote"], names, values)
    config = sshd.write_client_config(dirs["inputs"] / "ssh_config", names, key=sshd.client_key_encrypted)
    state, audit = dirs["state"] / "state.db", dirs["audit"] / "audit.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYSFLOW_SECRET_")}
    env[PASSPHRASE_ENV] = sshd.passphrase
    connect = ["--ssh-config", str(config), "--key", str(sshd.client_key_encrypted)]
    connect += ["--passphrase-env", PASSPHRASE_ENV, "--known-hosts", str(sshd.known_hosts)]
    stores = ["--state", str(state), "--audit", str(audit)]
    wf_args = [str(workflow), "-i", str(inventory)]
    captured: list[bytes] = []

    # a run streaming JSON events, and one with the plain progress view
    json_run = _cli(["run", *wf_args, *connect, *stores, "--json"], env, dirs["logs"], "run-json")
    (dirs["out"] / "events.jsonl").write_bytes(json_run.stdout)
    plain_run = _cli(["run", *wf_args, *connect, *stores], env, dirs["logs"], "run-plain")
    for proc in (json_run, plain_run):
        captured += [proc.stdout, proc.stderr]
        assert proc.returncode == 0, proc.stderr.decode()[-2000:]

    # the hosts got the real values; the records show masks where they were printed
    for n in names:
        kept = (dirs["remote"] / f"{n}.txt").read_text()
        assert kept == f"{values[f'db_password@{n}']} {values['vault_value']} {values['license_code']}"
    with sqlite3.connect(state) as db:
        rows = db.execute("SELECT op_id, command, stdout, stderr FROM ops ORDER BY op_id").fetchall()
        stored_inventory = db.execute("SELECT inventory_json FROM runs").fetchall()
    shown = {op: (cmd, out, err) for op, cmd, out, err in rows}
    cmd, out, err = shown[f"show@{names[0]}"]
    assert cmd.count(REDACTED) == 4 and out == f"{REDACTED} {REDACTED} {REDACTED} tier=backend\n"
    assert err == f"token {REDACTED}\n"
    assert shown[f"config@{names[1]}"][1] == f"{REDACTED} {REDACTED} {REDACTED}"
    assert len(stored_inventory) == 2
    assert json.loads(stored_inventory[0][0])["vars"]["api_token"] == {"$secret": "api_token"}
    events = [json.loads(line) for line in json_run.stdout.splitlines() if line.strip()]
    assert any(e.get("kind") == "op_finished" for e in events)

    # the status and audit commands print what was stored
    for label, args in [
        ("status", ["status", "--state", str(state)]),
        ("audit-query", ["audit", "query", "--db", str(audit), "--json"]),
        ("audit-export", ["audit", "export", "--db", str(audit), "-o", str(dirs["out"] / "audit.jsonl")]),
    ]:
        proc = _cli(args, env, dirs["logs"], label)
        assert proc.returncode == 0, proc.stderr.decode()
        captured += [proc.stdout, proc.stderr]
    assert (dirs["out"] / "audit.jsonl").stat().st_size > 0

    # a run whose process ended before it started anything: resume without the secrets names them
    seeded = subprocess.run(
        [sys.executable, "-c", _SEED, str(inventory), str(workflow), str(state)],
        env=env,
        capture_output=True,
        timeout=CLI_TIMEOUT,
        check=True,
    )
    run_id = seeded.stdout.decode().strip()
    captured += [seeded.stdout, seeded.stderr]
    for f in dirs["remote"].iterdir():
        f.unlink()
    resume_args = ["resume", run_id, *connect, *stores]
    refused = _cli(resume_args, env, dirs["logs"], "resume-refused")
    captured += [refused.stdout, refused.stderr]
    assert refused.returncode == 1
    message = refused.stderr.decode()
    for name, where in [
        ("db_password", f"host {names[0]}"),
        ("vault_value", "group app"),
        ("api_token", "group all"),
    ]:
        assert f"{where}: secret variable {name!r} is not stored with the run" in message
    assert "SYSFLOW_SECRET_LICENSE_CODE" in message
    assert list(dirs["remote"].iterdir()) == []

    # with the values in the environment, it completes with them
    again = {
        "SYSFLOW_SECRET_DB_PASSWORD": values[f"db_password@{names[0]}"],
        "SYSFLOW_SECRET_API_TOKEN": values["api_token"],
        "SYSFLOW_SECRET_LICENSE_CODE": values["license_code"],
        "SYSFLOW_SECRET_VAULT_VALUE": values["vault_value"],
    }
    resumed = _cli(resume_args, env | again, dirs["logs"], "resume")
    captured += [resumed.stdout, resumed.stderr]
    assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]
    expected = f"{values[f'db_password@{names[0]}']} {values['vault_value']} {values['license_code']}"
    assert (dirs["remote"] / f"{names[1]}.txt").read_text() == expected

    # the sweep: every byte sysflow wrote or printed
    needles = {**values, "key passphrase": sshd.passphrase}
    swept = [dirs[d] for d in ("state", "audit", "logs", "out")]
    found = _sweep(needles, swept, captured)
    assert found == dict.fromkeys(needles, 0)
    # and the sweep can see: the inputs hold every secret (the passphrase only lives in memory and env)
    assert all(n > 0 for n in _sweep(values, [dirs["inputs"]], []).values())
