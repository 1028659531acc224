"""Secrets never at rest: the run store keeps references, records mask values, resume asks for them.

The real engine drives a simulated fleet on virtual time, with a real SQLite run store and audit log.
The simulated hosts echo what they are sent, and one prints a secret it was never sent (read from its
"config"), so masking is checked on outputs as well as on commands.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from pathlib import Path

import pytest

from sysflow.audit.log import AuditLog
from sysflow.audit.observer import AuditObserver
from sysflow.engine.engine import Engine
from sysflow.engine.events import RecordingObserver
from sysflow.engine.states import OpState, RunStatus
from sysflow.errors import InventoryError
from sysflow.model.inventory import SECRET_MARKER, Inventory
from sysflow.model.templates import REDACTED
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.sim.fleet import SimFleet
from sysflow.sim.loop import current_virtual_clock
from sysflow.sim.profile import Rule, SimProfile
from sysflow.sim.transport import SimTransport

HOSTS = ["app1", "app2"]
ENV = ("DB_PASSWORD", "VAULT_VALUE", "API_TOKEN", "LICENSE_CODE")


def _secret() -> str:
    return "s" + secrets.token_hex(8)  # 17 characters of random text


def _fleet() -> tuple[Inventory, dict[str, str]]:
    values = {
        "db_password@app1": _secret(),  # by name, per host
        "db_password@app2": _secret(),
        "vault_value": _secret(),  # declared by the inventory's secrets: map (group level)
        "api_token": _secret(),  # by name, on 'all'
        "license_code": _secret(),  # declared by the workflow's secrets: list
    }
    inv = Inventory()
    inv.add_group("app", HOSTS, vars={"secrets": {"vault_value": values["vault_value"]}, "tier": "backend"})
    inv.add_group("all", vars={"api_token": values["api_token"], "license_code": values["license_code"]})
    for host in HOSTS:
        inv.add_host(host, groups=["app"], db_password=values[f"db_password@{host}"])
    return inv, values


def _workflow() -> MaintenanceWorkflow:
    wf = MaintenanceWorkflow("secret_use", secrets=["license_code"])
    wf.add_task(
        "show",
        "echo {{ vars.db_password }} {{ vars.vault_value }} {{ vars.api_token }} {{ vars.license_code }}"
        " {{ vars.tier }}",
    )
    wf.add_task("config", "cat /etc/app.conf", depends_on="show")  # prints a secret it was not sent
    return wf


def _profile() -> SimProfile:
    return SimProfile(
        rules=[
            Rule(name="show", match=r"^echo (?P<text>.*)$", stdout="{text}\n"),
            Rule(name="config", match=r"^cat /etc/app.conf$", stdout="password={vars[db_password]}\n"),
        ],
        default_rules=False,
    )


def _transport(inv: Inventory) -> SimTransport:
    clock = current_virtual_clock()
    return SimTransport(SimFleet(inv, _profile(), seed=1, start=clock.start), clock)


def _controller_gone(engine: Engine, run_id: str) -> None:
    """The controller that prepared ``run_id`` is gone (it owns the run no more)."""
    assert engine.store is not None
    engine.store.disown(run_id)
    engine.store.close()


def _files_bytes(*dirs: Path) -> bytes:
    return b"".join(p.read_bytes() for d in dirs for p in sorted(d.rglob("*")) if p.is_file())


async def test_the_store_audit_and_events_hold_references_and_masks_never_values(tmp_path: Path) -> None:
    inv, values = _fleet()
    state, audit_dir = tmp_path / "state", tmp_path / "audit"
    state.mkdir()
    events = RecordingObserver()
    log = AuditLog(audit_dir / "audit.db")
    transport = _transport(inv)
    engine = Engine(
        inv,
        transport=transport,
        clock=current_virtual_clock(),
        observers=[events, AuditObserver(log)],
        store=state / "state.db",
    )
    result = await engine.run(_workflow())
    assert result.status is RunStatus.COMPLETED, result.reason

    # the hosts got the real values
    sent = {r.host: r.command for r in transport.trace if r.command.startswith("echo")}
    assert values["db_password@app1"] in sent["app1"] and values["license_code"] in sent["app2"]
    # the records show masks, in commands and in outputs (also the secret the host printed unasked)
    show, config = result.ops["show@app1"], result.ops["config@app2"]
    assert show.command.count(REDACTED) == 4 and show.command.endswith(" backend")
    assert show.stdout == " ".join([REDACTED] * 4) + " backend\n"
    assert config.stdout == f"password={REDACTED}\n"

    # the stored inventory keeps references in place of every secret
    stored = engine.store.run(result.run_id).inventory_json  # type: ignore[union-attr]
    data = json.loads(stored)
    assert data["hosts"]["app1"]["vars"]["db_password"] == {SECRET_MARKER: "db_password"}
    assert data["groups"]["app"]["vars"]["secrets"]["vault_value"] == {SECRET_MARKER: "vault_value"}
    assert data["vars"]["license_code"] == {SECRET_MARKER: "license_code"}
    assert data["groups"]["app"]["vars"]["tier"] == "backend"

    log.flush()
    raw = _files_bytes(state, audit_dir)  # the SQLite files with their -wal and -shm, as written so far
    engine.store.close()  # type: ignore[union-attr]
    log.close()
    raw += _files_bytes(state, audit_dir)
    assert b"backend" in raw  # the sweep does read the data
    assert sqlite3.connect(state / "state.db").execute("SELECT count(*) FROM ops").fetchone()[0] == 4
    for value in values.values():
        assert value.encode() not in raw
        assert all(value not in repr(e.to_dict()) for e in events.events)


async def test_resume_without_the_secret_values_fails_naming_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ENV:
        monkeypatch.delenv(f"SYSFLOW_SECRET_{name}", raising=False)
    inv, values = _fleet()
    store = tmp_path / "state.db"
    clock = current_virtual_clock()
    first = Engine(inv, transport=_transport(inv), clock=clock, store=store)
    run = first.prepare(_workflow())  # recorded, never started: as if the process died at once
    _controller_gone(first, run.id)

    transport = _transport(inv)
    again = Engine(Inventory(), transport=transport, clock=clock, store=store)
    with pytest.raises(InventoryError) as err:
        await again.resume_async(run.id)
    text = str(err.value)
    for name, where in [
        ("db_password", "host app1"),
        ("db_password", "host app2"),
        ("vault_value", "group app"),
        ("api_token", "group all"),
        ("license_code", "group all"),
    ]:
        assert f"{where}: secret variable {name!r} is not stored with the run" in text
    assert "SYSFLOW_SECRET_LICENSE_CODE" in text
    assert transport.trace == []  # nothing ran with a reference in place of a value
    again.store.close()  # type: ignore[union-attr]

    # the values from the environment (one value per name here, as both hosts' passwords must agree)
    monkeypatch.setenv("SYSFLOW_SECRET_DB_PASSWORD", values["db_password@app1"])
    for name in ENV[1:]:
        monkeypatch.setenv(f"SYSFLOW_SECRET_{name}", values[name.lower()])
    resumed = Engine(Inventory(), transport=transport, clock=clock, store=store)
    result = await resumed.resume_async(run.id)
    resumed.store.close()  # type: ignore[union-attr]
    assert result.status is RunStatus.COMPLETED, result.reason
    sent = [r.command for r in transport.trace if r.host == "app2" and r.command.startswith("echo")]
    assert sent == [
        f"echo {values['db_password@app1']} {values['vault_value']} {values['api_token']}"
        f" {values['license_code']} backend"
    ]
    assert result.ops["config@app1"].stdout == f"password={REDACTED}\n"


async def test_resume_with_the_callers_inventory_or_lookup_needs_no_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ENV:
        monkeypatch.delenv(f"SYSFLOW_SECRET_{name}", raising=False)
    inv, values = _fleet()
    store = tmp_path / "state.db"
    clock = current_virtual_clock()
    first = Engine(inv, transport=_transport(inv), clock=clock, store=store)
    run = first.prepare(_workflow())
    _controller_gone(first, run.id)

    # the operator passes the inventory again: its values are used
    transport = _transport(inv)
    again = Engine(_fleet()[0], transport=transport, clock=clock, store=store)
    again.inventory = inv
    result = await again.resume_async(run.id)
    again.store.close()  # type: ignore[union-attr]
    assert result.status is RunStatus.COMPLETED, result.reason
    assert any(values["db_password@app2"] in r.command for r in transport.trace if r.host == "app2")

    # or a provider, consulted by name
    second = Engine(inv, transport=_transport(inv), clock=clock, store=store)
    other = second.prepare(_workflow())
    _controller_gone(second, other.id)
    asked: list[str] = []

    def provider(name: str) -> str | None:
        asked.append(name)
        return values.get(name) or values.get(f"{name}@app1")

    transport = _transport(inv)
    third = Engine(Inventory(), transport=transport, clock=clock, store=store)
    third.secret_lookup = provider
    result = await third.resume_async(other.id)
    third.store.close()  # type: ignore[union-attr]
    assert result.status is RunStatus.COMPLETED, result.reason
    assert sorted(set(asked)) == ["api_token", "db_password", "license_code", "vault_value"]
    assert all(r.state is OpState.SUCCEEDED for r in result.ops.values())


async def test_verification_probes_never_report_a_secret_they_printed(tmp_path: Path) -> None:
    inv, values = _fleet()
    wf = MaintenanceWorkflow("probe_secret", secrets=["license_code"])
    wf.add_task("touch", "true")
    wf.add_verification(
        "config",
        {
            "before_tasks": ["touch"],
            "after_tasks": ["touch"],
            "commands": {"conf": "cat /etc/app.conf", "templated": "echo {{ vars.api_token }}"},
            "comparisons": {
                "conf": {"type": "equals", "expected": "password=unknown"},
                "templated": {"type": "equals", "expected": "nothing"},
            },
        },
    )
    events = RecordingObserver()
    log = AuditLog(tmp_path / "audit.db")
    engine = Engine(
        inv,
        transport=_transport(inv),
        clock=current_virtual_clock(),
        observers=[events, AuditObserver(log)],
        store=tmp_path / "state.db",
    )
    result = await engine.run(wf)
    engine.store.close()  # type: ignore[union-attr]
    log.close()
    report = result.verification_results
    assert report is not None and list(report.failed_hosts) == HOSTS  # the probes ran and their values failed
    reasons = " ".join(e.message for e in events.events if e.kind.value == "verification")
    assert f"password={REDACTED}" in reasons and REDACTED in reasons
    text = repr(report) + repr([e.to_dict() for e in events.events])
    raw = _files_bytes(tmp_path)
    for value in values.values():
        assert value not in text
        assert value.encode() not in raw


async def test_outputs_are_masked_even_when_the_workflow_uses_no_templates(tmp_path: Path) -> None:
    inv, values = _fleet()
    wf = MaintenanceWorkflow("plain")
    wf.add_task("config", "cat /etc/app.conf")  # no template, no condition: the host prints a secret
    engine = Engine(
        inv, transport=_transport(inv), clock=current_virtual_clock(), store=tmp_path / "state.db"
    )
    result = await engine.run(wf)
    engine.store.close()  # type: ignore[union-attr]
    assert result.status is RunStatus.COMPLETED, result.reason
    assert result.ops["config@app1"].stdout == f"password={REDACTED}\n"
    raw = _files_bytes(tmp_path)
    assert b"password=" + REDACTED.encode() in raw
    clear = values.pop("license_code")  # secret only for workflows that list it under secrets:
    assert clear.encode() in raw
    for value in values.values():
        assert value.encode() not in raw

    bare = Inventory()
    bare.add_host("app1", tier="backend")
    assert not bare.has_secrets() and bare.has_secrets(["tier"]) and inv.has_secrets()
