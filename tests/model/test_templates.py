"""Command templates: quoting, raw values, secrets, and every error found before a run."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from sysflow.errors import WorkflowError
from sysflow.model.conditional_checks import conditional_note, host_var_problems
from sysflow.model.inventory import Inventory
from sysflow.model.templates import (
    REDACTED,
    Reference,
    TemplateError,
    is_secret_name,
    is_template,
    redact_text,
    render,
    template_references,
)
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.planner.compile import compile_workflow

CTX = {
    "host": {"name": "web01"},
    "vars": {"backup_dir": "/srv/backup dir", "evil": "; rm -rf / #", "db_password": "hunter2", "n": None},
    "facts": {"os_family": "Debian"},
    "results": {"check_disk": {"stdout": "42\n"}},
}


def test_values_are_shell_quoted_and_raw_values_are_not() -> None:
    out = render("tar -czf {{ vars.backup_dir }}/{{ host.name }}.tgz /etc; echo {{ vars.evil }}", CTX)
    assert out.command == "tar -czf '/srv/backup dir'/web01.tgz /etc; echo '; rm -rf / #'"
    assert shlex.split(out.command.split(";")[0])[2] == "/srv/backup dir/web01.tgz"
    raw = render("echo {{ facts.os_family | raw }} {{ results.check_disk.stdout | trim }} {{ vars.n }}", CTX)
    assert raw.command == "echo Debian 42 ''"
    assert render("{{ vars.n | raw }}x", CTX).command == "x"


def test_plain_commands_are_left_alone() -> None:
    assert not is_template("apt-get -y upgrade")
    assert render("echo $HOME", CTX).command == "echo $HOME"
    assert template_references("echo $HOME") == []


def test_secrets_are_redacted_in_what_is_recorded() -> None:
    out = render("mysql -p{{ vars.db_password }} -e 'select 1'", CTX)
    assert out.command == "mysql -phunter2 -e 'select 1'"
    assert out.redacted == f"mysql -p{shlex.quote(REDACTED)} -e 'select 1'"
    assert out.secrets == ("hunter2",)
    declared = render("echo {{ vars.backup_dir }}", CTX, secrets={"backup_dir"})
    assert "srv" not in declared.redacted and "srv" in declared.command
    assert redact_text("pw='/srv/backup dir' and hunter2", ["/srv/backup dir", "hunter2", ""]) == (
        f"pw={REDACTED} and {REDACTED}"
    )
    assert is_secret_name("secret_key") and is_secret_name("api_token") and not is_secret_name("tokenizer")


def test_undefined_variables_and_sandbox_escapes_are_errors() -> None:
    with pytest.raises(TemplateError, match="undefined variable: 'dict object' has no attribute 'nope'"):
        render("echo {{ vars.nope }}", CTX)
    with pytest.raises(TemplateError, match="unsafe"):
        render("{{ vars.__class__.__mro__ }}", CTX)
    with pytest.raises(TemplateError, match="invalid template"):
        render("echo {{ vars.x ", CTX)


def test_references_list_what_a_template_reads() -> None:
    refs = template_references(
        "{{ vars.a }} {{ facts['os_family'] }} {{ results.x.stdout }} {{ vars[host.name] }}"
    )
    assert refs[:3] == [Reference("vars", "a"), Reference("facts", "os_family"), Reference("results", "x")]
    assert Reference("vars", None) in refs
    with pytest.raises(TemplateError, match=r"unknown name\(s\) inventory_hostname"):
        template_references("{{ inventory_hostname }}")
    with pytest.raises(TemplateError, match="invalid template"):
        template_references("{% if %}")


WORKFLOW = """name: templated
secrets: [api_key_name]
tasks:
  - id: backup
    run: tar -czf {{ vars.backup_dir }}/etc.tgz /etc
    rollback: "{{ vars.restore_cmd | raw }}"
  - id: upgrade
    run: "{{ facts.pkg_manager }} upgrade"
    depends_on: backup
  - id: report
    run: echo {{ results.nothing.stdout }} {{ host.rack }}
    when: results.check.rc == 0
  - id: bad
    run: echo {{ vars.x
  - id: heal
    run: "true"
    on_failure: [missing, heal, notify]
  - id: notify
    run: echo notify
    run_once: true
  - id: uses_branch
    run: "true"
    depends_on: notify
"""


def test_template_and_reference_errors_are_reported_at_their_lines() -> None:
    with pytest.raises(WorkflowError) as err:
        MaintenanceWorkflow.from_yaml(WORKFLOW)
    lines = [str(p) for p in err.value.problems]
    assert len(lines) == 1 and "<string>:14:5" in lines[0] and "invalid template" in lines[0]
    wf = MaintenanceWorkflow.from_yaml(WORKFLOW.replace("echo {{ vars.x\n", "echo {{ vars.x }}\n"))
    found = {str(p) for p in wf.problems()}
    expected = [
        ("<string>:8:5", "facts.pkg_manager is undefined (known facts:"),
        ("<string>:11:5", "results.nothing is undefined (no task registers it)"),
        ("<string>:11:5", "host.rack is undefined (host fields:"),
        ("<string>:12:5", "results.check is undefined"),
        ("<string>:17:18", "on_failure names unknown task 'missing'"),
        ("<string>:17:27", "on_failure names the task itself"),
        ("<string>:17:33", "on_failure task 'notify' is run_once"),
        ("<string>:23:5", "depends on 'notify', which only runs as an on_failure branch"),
    ]
    for where, what in expected:
        assert any(where in p and what in p for p in found), (where, what, sorted(found))


def test_host_vars_missing_on_a_targeted_host_fail_validation_with_the_task_line() -> None:
    inv = Inventory()
    inv.add_group("web", ["web01", "web02", "web03", "web04", "web05"])
    inv.add_host("web01", groups=["web"], backup_dir="/b1")
    inv.groups["web"].vars["restore_cmd"] = "restore"
    wf = MaintenanceWorkflow.from_yaml(
        """name: t
tasks:
  - id: backup
    run: tar -czf {{ vars.backup_dir }}/etc.tgz /etc
    rollback: "{{ vars.restore_cmd | raw }}"
    targets: web
  - id: clean
    run: "true"
    when: vars.keep_days > 3
    targets: web01
"""
    )
    with pytest.raises(WorkflowError) as err:
        compile_workflow(wf, inv)
    lines = [str(p) for p in err.value.problems]
    assert any(
        "<string>:4:5" in p and "vars.backup_dir is undefined on host web02, web03, web04 and 1 more" in p
        for p in lines
    ), lines
    assert any("<string>:9:5" in p and "vars.keep_days is undefined on host web01" in p for p in lines), lines
    assert len(lines) == 2
    targets = {"backup": {"web01"}}
    assert list(host_var_problems(wf, targets, inv.host_vars)) == []


def test_the_forecast_note_names_tasks_decided_at_run_time() -> None:
    wf = MaintenanceWorkflow("n")
    assert conditional_note(wf) is None
    wf.add_task("check", "curl -s localhost", on_failure=["restart"])
    wf.add_task("restart", "systemctl restart nginx")
    wf.add_task("upgrade", "dnf -y upgrade", when="facts.os_family == 'RedHat'")
    note = conditional_note(wf)
    assert note is not None
    assert "conditional tasks (upgrade) are planned as if they run" in note
    assert "on_failure branches (restart) are not planned" in note


def test_register_round_trips_through_yaml() -> None:
    wf = MaintenanceWorkflow("r")
    wf.add_task("disk", "df -Pk /", register="disk", until="result.ok", retries=3, delay="10s")
    again = MaintenanceWorkflow.from_yaml(wf.to_yaml())
    assert again == wf
    assert again.task("disk").register_as == "disk"
    assert again.task("disk").delay == 10.0


def test_sysflow_validate_reports_template_and_condition_errors_with_file_lines(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sysflow.cli import app

    workflow = tmp_path / "wf.yaml"
    workflow.write_text(
        """name: conditional
tasks:
  - id: backup
    run: tar -czf {{ vars.backup_dir }}/etc.tgz /etc
  - id: upgrade
    run: "{{ facts.pkg_mgr | raw }} -y upgrade"
    when: facts.os_family in ['Debian', 'RedHat']
    depends_on: backup
"""
    )
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("[web]\nweb01 backup_dir=/b\nweb02\n")
    result = CliRunner().invoke(app, ["validate", str(workflow), "-i", str(inventory)])
    assert result.exit_code == 1, result.output
    assert f"{workflow}:4:5: task 'backup': vars.backup_dir is undefined on host web02" in result.output
    inventory.write_text("[web]\nweb01 backup_dir=/b\nweb02 backup_dir=/c\n")
    result = CliRunner().invoke(app, ["validate", str(workflow), "-i", str(inventory)])
    assert result.exit_code == 0, result.output
    workflow.write_text(workflow.read_text().replace("when: facts", "when: exec('x') or facts"))
    result = CliRunner().invoke(app, ["validate", str(workflow), "-i", str(inventory)])
    assert result.exit_code == 1
    assert f"{workflow}:7:5: tasks[1].when: calling 'exec' is not allowed" in result.output


def test_plans_carry_the_note_about_run_time_decisions() -> None:
    from datetime import UTC, datetime

    from sysflow.planner.build import plan_pair
    from sysflow.planner.forecast import forecast

    inv = Inventory()
    inv.add_group("web", ["web01", "web02"])
    wf = MaintenanceWorkflow("noted")
    wf.add_task("upgrade", "apt-get -y upgrade", when="facts.os_family == 'Debian'")
    wf.add_task("restart", "systemctl restart nginx", depends_on="upgrade")
    (p50,) = plan_pair(wf, inv, start=datetime(2026, 11, 29, tzinfo=UTC))
    assert any("conditional tasks (upgrade) are planned as if they run" in n for n in p50.notes)
    assert any("decided at run time" in n for n in forecast(p50).notes)
    plain = MaintenanceWorkflow("plain")
    plain.add_task("upgrade", "apt-get -y upgrade")
    (p,) = plan_pair(plain, inv, start=datetime(2026, 11, 29, tzinfo=UTC))
    assert not any("run time" in n for n in p.notes)
