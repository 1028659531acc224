"""Secret variables: which names are secret, ``secrets:`` maps, the stored form, restore, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sysflow.errors import InventoryError, WorkflowError
from sysflow.model.inventory import SECRET_MARKER, Inventory
from sysflow.model.templates import REDACTED, SecretMasker, is_secret_name, redact_text, render
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.planner.compile import compile_workflow

DB = "Kd93-fQp2Lw8zR"  # random-looking secrets, long enough to be masked anywhere
API = "tok_Vb71Xc0qPe"
VAULT = "x9Wq-Lm42Zs"


def _inventory() -> Inventory:
    inv = Inventory()
    inv.add_group("web", ["web1", "web2"], vars={"secrets": {"vault_value": VAULT}, "tier": "front"})
    inv.add_host("web1", groups=["web"], db_password=DB, backup_dir="/srv/backup")
    inv.add_host("web2", groups=["web"], secrets={"app_credential": "Qz8-Hh31-Pw"})
    inv.add_group("all", vars={"api_token": API, "ansible_ssh_private_key_file": "/keys/id_ed25519"})
    return inv


@pytest.mark.parametrize(
    "name",
    [
        "db_password",
        "ansible_password",
        "ansible_ssh_pass",
        "ansible_become_pass",
        "key_passphrase",
        "api_token",
        "ssh_key",
        "api_key",
        "aws_secret",
        "secret_value",
        "password",
        "DB_PASSWORD",
    ],
)
def test_names_that_mark_a_secret(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "ansible_ssh_private_key_file",  # a path: only the name's end counts
        "ansible_private_key_file",
        "tokenizer",
        "bypass",
        "keyboard",
        "passenger",
        "backup_dir",
        "monkey",
    ],
)
def test_names_that_do_not_mark_a_secret(name: str) -> None:
    assert not is_secret_name(name)
    assert is_secret_name(name, declared={name})  # unless a workflow or inventory declares it


def test_a_secrets_map_declares_variables_at_each_level() -> None:
    inv = _inventory()
    web1, web2 = inv.host_vars("web1"), inv.host_vars("web2")
    assert web1["vault_value"] == VAULT and web2["vault_value"] == VAULT  # group level, lifted
    assert web2["app_credential"] == "Qz8-Hh31-Pw"  # host level, lifted
    assert "secrets" not in web1 and "secrets" not in web2
    assert web1["db_password"] == DB and web1["api_token"] == API  # by name, as before
    assert inv.secret_names() == {"vault_value", "app_credential"}
    # a later add merges into the map instead of replacing it
    inv.add_host("web2", secrets={"other_value": "Rr55-Tt66"})
    assert inv.host_vars("web2")["app_credential"] == "Qz8-Hh31-Pw"
    assert inv.host_vars("web2")["other_value"] == "Rr55-Tt66"


def test_a_yaml_inventory_declares_secrets_under_a_secrets_key() -> None:
    text = f"""
web:
  hosts:
    web1:
      secrets:
        db_conn: "{DB}"
  vars:
    secrets:
      vault_value: "{VAULT}"
"""
    inv = Inventory.from_yaml_text(text)
    assert inv.host_vars("web1")["db_conn"] == DB
    assert inv.host_vars("web1")["vault_value"] == VAULT
    assert inv.secret_names() == {"db_conn", "vault_value"}
    stored = inv.redacted_json()
    assert DB not in stored and VAULT not in stored


def test_the_stored_form_keeps_references_not_values() -> None:
    inv = _inventory()
    before = inv.model_dump_json()
    stored = inv.redacted_json(declared=["backup_dir"])
    for value in (DB, API, VAULT, "Qz8-Hh31-Pw", "/srv/backup"):
        assert value not in stored
    data = json.loads(stored)
    assert data["hosts"]["web1"]["vars"]["db_password"] == {SECRET_MARKER: "db_password"}
    assert data["groups"]["web"]["vars"]["secrets"] == {"vault_value": {SECRET_MARKER: "vault_value"}}
    assert data["vars"]["api_token"] == {SECRET_MARKER: "api_token"}
    assert data["vars"]["ansible_ssh_private_key_file"] == "/keys/id_ed25519"  # a path, kept
    assert data["groups"]["web"]["vars"]["tier"] == "front"
    assert inv.model_dump_json() == before  # the live inventory keeps its values

    copy = inv.redacted(declared=["backup_dir"])
    missing = sorted(copy.unresolved_secrets())
    assert ("db_password", "host web1") in missing and ("vault_value", "group web") in missing
    values = {"db_password": DB, "api_token": API, "vault_value": VAULT, "app_credential": "Qz8-Hh31-Pw"}
    copy.restore_secrets({**values, "backup_dir": "/srv/backup"}.get)
    assert copy == inv and copy.unresolved_secrets() == []


def test_restoring_without_the_values_names_every_missing_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    copy = _inventory().redacted()
    for name in ("DB_PASSWORD", "API_TOKEN", "VAULT_VALUE", "APP_CREDENTIAL"):
        monkeypatch.delenv(f"SYSFLOW_SECRET_{name}", raising=False)
    with pytest.raises(InventoryError) as err:
        copy.restore_secrets()
    text = str(err.value)
    for name, where in [
        ("db_password", "host web1"),
        ("api_token", "group all"),
        ("vault_value", "group web"),
        ("app_credential", "host web2"),
    ]:
        assert f"{where}: secret variable {name!r} is not stored" in text
    assert "SYSFLOW_SECRET_DB_PASSWORD" in text
    assert copy.unresolved_secrets()  # nothing was half-restored into a usable inventory

    monkeypatch.setenv("SYSFLOW_SECRET_DB_PASSWORD", DB)
    monkeypatch.setenv("SYSFLOW_SECRET_API_TOKEN", API)
    monkeypatch.setenv("SYSFLOW_SECRET_VAULT_VALUE", VAULT)
    monkeypatch.setenv("SYSFLOW_SECRET_APP_CREDENTIAL", "Qz8-Hh31-Pw")
    copy.restore_secrets()
    assert copy == _inventory()


def test_short_secrets_are_refused_at_validation_naming_variable_and_place_not_value() -> None:
    inv = _inventory()
    inv.add_host("web2", db_password="Zq9")
    inv.add_group("web", vars={"secrets": {"pin_value": "7Y"}})
    inv.add_group("all", vars={"feature_flag": "Wx"})  # not secret: no limit
    wf = MaintenanceWorkflow("short", secrets=["feature_flag_two"])
    wf.add_task("t", "echo {{ vars.tier }}", targets="web")
    with pytest.raises(WorkflowError) as err:
        compile_workflow(wf, inv)
    text = str(err.value)
    assert "host web2: secret variable 'db_password' is shorter than 4 characters" in text
    assert "group web: secret variable 'pin_value' is shorter than 4 characters" in text
    assert "Zq9" not in text and "7Y" not in text
    assert "feature_flag" not in text

    # a workflow's secrets: list makes a name secret, and so subject to the same limit
    ok = _inventory()
    ok.add_group("all", vars={"feature_flag": "Wx"})
    compile_workflow(wf, ok)
    declared = MaintenanceWorkflow("declared", secrets=["feature_flag"])
    declared.add_task("t", "true", targets="web")
    with pytest.raises(WorkflowError, match="group all: secret variable 'feature_flag' is shorter"):
        compile_workflow(declared, ok)


def test_booleans_and_empty_values_are_not_secrets_to_mask_or_refuse() -> None:
    inv = Inventory()
    inv.add_host("h1", use_token=True, old_password="", api_key=None)
    assert inv.secret_problems() == []
    out = render("echo {{ vars.use_token }} True", {"vars": inv.host_vars("h1")})
    assert out.secrets == ()
    assert "True" in redact_text("True is True", out.secrets)
    data = json.loads(inv.redacted_json())
    assert data["hosts"]["h1"]["vars"] == {"use_token": True, "old_password": "", "api_key": None}


def test_a_secrets_key_that_is_not_a_map_is_a_problem() -> None:
    inv = Inventory()
    inv.add_host("h1", secrets=["db_password"])
    problems = inv.secret_problems()
    assert [p.location for p in problems] == ["host h1"]
    assert "must map secret variable names to values" in problems[0].message


def test_masking_replaces_whole_values_only() -> None:
    long, short = "Lq7-Vv2k-Pp9", "Zk4q"
    assert (
        redact_text(f"user=x pw={long} again{long}tail", [long])
        == f"user=x pw={REDACTED} again{REDACTED}tail"
    )
    # a short secret is masked where it stands alone, not inside other words
    assert redact_text(f"pin {short}, Zk4qZ and aZk4q; ({short})", [short]) == (
        f"pin {REDACTED}, Zk4qZ and aZk4q; ({REDACTED})"
    )
    # the shell-quoted form goes as a whole too
    spaced = "pa ss-word 42"
    assert redact_text("run 'pa ss-word 42' now", [spaced]) == f"run {REDACTED} now"
    # never a one-letter mask: values under 4 characters are not masked (validation refuses them)
    assert redact_text("a cat sat", ["a"]) == "a cat sat"


def test_sysflow_validate_names_short_secrets_without_showing_them(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sysflow.cli import app

    (tmp_path / "inv.yaml").write_text(
        "app:\n  hosts:\n    app1:\n      db_password: Q7z\n  vars:\n    secrets:\n      pin_value: Wv\n"
    )
    (tmp_path / "wf.yaml").write_text("name: check\ntasks:\n  - id: t\n    run: 'true'\n")
    result = CliRunner().invoke(
        app, ["validate", str(tmp_path / "wf.yaml"), "-i", str(tmp_path / "inv.yaml")]
    )
    assert result.exit_code == 1
    assert "host app1: secret variable 'db_password' is shorter than 4 characters" in result.output
    assert "group app: secret variable 'pin_value' is shorter than 4 characters" in result.output
    assert "Q7z" not in result.output and "Wv" not in result.output


def test_a_masker_of_thousands_of_secrets_masks_as_redact_text_does() -> None:
    import random
    import secrets as rnd

    values = [f"v{rnd.token_hex(6)}" for _ in range(2000)] + ["Zk4q", "pa ss-word 42", "ab"]
    masker = SecretMasker(values)
    assert len(masker) == len(values) - 1 and "ab" not in masker  # too short to be a secret
    rng = random.Random(7)
    for _ in range(200):
        words = [
            rng.choice(values) if rng.random() < 0.2 else rnd.token_hex(rng.randint(1, 6)) for _ in range(12)
        ]
        words += ["'pa ss-word 42'", "xZk4q", "Zk4q.", "cab"]
        text = " ".join(words)
        assert masker.mask(text) == redact_text(text, values)
    assert (
        masker.mask(f"{values[5]} and 'pa ss-word 42' and Zk4q!")
        == f"{REDACTED} and {REDACTED} and {REDACTED}!"
    )
    assert masker.mask("nothing here") == "nothing here"
    assert SecretMasker().mask("Zk4q") == "Zk4q"
