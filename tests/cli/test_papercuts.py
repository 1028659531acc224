"""Issue 17's papercuts, through the CLI as a person uses it: bad input is one located line per
problem, a summary naming the file that is wrong and the documented exit code, never a traceback.

Exit codes (``sysflow.cli.root``): 1 invalid input, 2 usage, 3 not found.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sysflow.audit.keys import KEY_ENV
from sysflow.audit.log import AuditLog
from sysflow.cli import app

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "patching.yaml"
INI = ROOT / "examples" / "inventory.ini"
T0 = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)
WORKFLOW = "name: hello\ntasks:\n  - {id: hello, run: echo hi}\n"
runner = CliRunner()


def sysflow(*args: str | Path, cwd: Path | None = None) -> tuple[int, str, str]:
    """``python -m sysflow ARGS`` in a real process: (exit code, stdout, stderr)."""
    done = subprocess.run(
        [sys.executable, "-m", "sysflow", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    return done.returncode, done.stdout, done.stderr


def cli(*args: str | Path) -> tuple[int, str, str]:
    """The same through typer's CliRunner (in-process, faster); an uncaught exception fails the test."""
    result = runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "120"})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def wf(tmp_path: Path) -> Path:
    path = tmp_path / "wf.yaml"
    path.write_text(WORKFLOW)
    return path


@pytest.fixture
def bad_port(tmp_path: Path) -> Path:
    path = tmp_path / "hosts.ini"
    path.write_text("[web]\nweb01 ansible_host=127.0.0.1 ansible_port=22x99\n")
    return path


# -- 1. an invalid connection variable is an inventory error before anything runs ------------------

PORT_LINE = "hosts.ini:2: host web01: ansible_port '22x99' is not a TCP port (an integer 1-65535)"


def test_bad_port_fails_validate_with_its_file_and_line(wf: Path, bad_port: Path) -> None:
    code, out, err = sysflow("validate", wf.name, "-i", bad_port.name, cwd=wf.parent)
    assert code == 1 and out == ""
    assert err.splitlines() == [PORT_LINE, "hosts.ini: invalid, 1 problem(s)"]


def test_bad_port_is_refused_by_run_and_dry_run_and_nothing_starts(wf: Path, bad_port: Path) -> None:
    store = wf.parent / "state.db"
    for extra in (["--dry-run"], []):
        code, out, err = sysflow("run", wf.name, "-i", bad_port.name, "--store", store, *extra, cwd=wf.parent)
        assert code == 1, err
        assert err.splitlines() == [PORT_LINE]
        assert "dry run" not in out
    code, _, err = sysflow("status", "--store", store)
    assert code == 3 and not store.exists()  # no run was created, so none is left `running`


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("web01:70000", "host web01:70000: ansible_port 70000 is not a TCP port"),
        ("web01 ansible_ssh_port=0", "host web01: ansible_ssh_port 0 is not a TCP port"),
        ("web01 ansible_user=''", "host web01: ansible_user is empty"),
        ("web01 ansible_host='web 01'", "host web01: ansible_host 'web 01' holds whitespace"),
    ],
)
def test_other_bad_connection_variables_are_located(wf: Path, line: str, message: str) -> None:
    inventory = wf.parent / "hosts.ini"
    inventory.write_text(f"[web]\n{line}\n")
    code, _, err = cli("validate", wf, "-i", inventory)
    assert code == 1
    first, last = err.splitlines()
    assert first.startswith(f"{inventory}:2: {message}")
    assert last == f"{inventory}: invalid, 1 problem(s)"


def test_bad_port_in_a_yaml_inventory_and_in_group_vars(wf: Path) -> None:
    inventory = wf.parent / "hosts.yaml"
    inventory.write_text("web:\n  hosts:\n    web01:\n  vars:\n    ansible_port: ssh\n")
    code, _, err = cli("validate", wf, "-i", inventory)
    assert code == 1
    assert err.splitlines() == [
        f"{inventory}:5: group web: ansible_port 'ssh' is not a TCP port (an integer 1-65535)",
        f"{inventory}: invalid, 1 problem(s)",
    ]
    folder = wf.parent / "inv"
    (folder / "group_vars").mkdir(parents=True)
    (folder / "hosts.ini").write_text("[web]\nweb01\n")
    (folder / "group_vars" / "web.yml").write_text("ansible_port: 99999\n")
    code, _, err = cli("validate", wf, "-i", folder)
    assert code == 1
    assert "group_vars/web: ansible_port 99999 is not a TCP port" in err.splitlines()[0]
    assert err.splitlines()[-1] == f"{folder}: invalid, 1 problem(s)"


# -- 2. audit verify | query | export take the log as an argument -----------------------------------


@pytest.fixture
def audit_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(KEY_ENV, str(tmp_path / "keys" / "audit.key"))
    path = tmp_path / "audit.db"
    with AuditLog(path, who="alice") as log:
        log.append("r1", "op_finished", at=T0, host="web01", task="t", outcome="exit 0")
    return path


def test_audit_commands_take_the_log_positionally_or_as_db(audit_db: Path) -> None:
    intact = f"{audit_db}: intact, 1 records\n"
    assert cli("audit", "verify", audit_db)[:2] == (0, intact)
    assert cli("audit", "verify", "--db", audit_db)[:2] == (0, intact)
    code, out, _ = cli("audit", "query", audit_db, "--host", "web01")
    assert code == 0 and "op_finished  web01 t -> exit 0" in out
    code, out, _ = cli("audit", "export", audit_db)
    assert code == 0 and '"host": "web01"' in out


def test_audit_without_a_log_or_with_two_is_a_usage_error(audit_db: Path, tmp_path: Path) -> None:
    code, _, err = cli("audit", "verify")
    assert (code, err) == (2, "audit verify: which audit log? give its path: sysflow audit verify audit.db\n")
    code, _, err = cli("audit", "query", audit_db, "--db", tmp_path / "other.db")
    assert code == 2 and err.startswith("audit query: two audit logs given")
    assert cli("audit", "verify", tmp_path / "missing.db")[0] == 3


# -- 3. the summary names the file that is wrong ------------------------------------------------------


def test_summary_names_the_inventory_the_workflow_or_both(wf: Path, bad_port: Path, tmp_path: Path) -> None:
    assert cli("validate", wf, "-i", bad_port)[2].splitlines()[-1] == f"{bad_port}: invalid, 1 problem(s)"
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\ntasks: 5\n")
    last = cli("validate", broken, "-i", INI)[2].splitlines()[-1]
    assert last == f"{broken}: invalid, 1 problem(s)"
    last = cli("validate", broken, "-i", bad_port)[2].splitlines()[-1]
    assert last == f"{broken}, {bad_port}: invalid, 2 problem(s)"
    code, _, err = cli("plan", wf, "-i", bad_port)
    assert code == 1 and err.splitlines()[-1] == f"{bad_port}: invalid, cannot plan"


# -- 4. a bad --when (and other bad schedule input) exits 1 with one line --------------------------


@pytest.mark.parametrize(
    ("extra", "line"),
    [
        (["--when", "nonsense"], "error: cannot read recurrence 'nonsense': expected 'cron \"EXPR\"'"),
        (['--when=cron "99 2 * * *"'], "error: invalid cron expression '99 2 * * *'"),
        (['--when=cron "0 2 * * *"', "--timezone", "Mars/Base"], "error: unknown time zone 'Mars/Base'"),
        (['--when=cron "0 2 * * *"', "--lease-wait", "-5"], "error: --lease-wait: Input should be greater"),
        (
            ['--when=cron "0 2 * * *"', "--missed", "bogus"],
            "error: --missed must be one of skip, run_next_window, catch_up, not 'bogus'",
        ),
    ],
)
def test_schedule_add_bad_input_is_one_line_and_exit_1(tmp_path: Path, extra: list[str], line: str) -> None:
    code, out, err = cli(
        "schedule", "add", "nightly", EXAMPLE, "-i", INI, "--store", tmp_path / "state.db", *extra
    )
    assert (code, out) == (1, "")
    assert len(err.splitlines()) == 1 and err.startswith(line), err


def test_schedule_add_with_a_bad_inventory_names_its_line(wf: Path, bad_port: Path) -> None:
    code, _, err = sysflow(
        "schedule", "add", "n", wf.name, "-i", bad_port.name, "--when", "every window of web", cwd=wf.parent
    )
    assert (code, err) == (1, PORT_LINE + "\n")


# -- 5. boolean flags read as flags in --help ------------------------------------------------------


def test_help_shows_flags_without_a_value() -> None:
    code, out, _ = cli("run", "--help")
    assert code == 0
    assert "<bool>" not in out
    lines = {line.split()[1]: line for line in out.splitlines() if line.startswith("│ ") and "--" in line}
    assert "--dry-run " in lines["--dry-run"] and "Validate and plan; run nothing." in lines["--dry-run"]
    assert "<path>" in lines["*"] and "--inventory" in lines["*"]  # options with a value still say which
    assert "<bool>" not in cli("sim", "--help")[1] and "--no-approve" in cli("sim", "--help")[1]


# -- 6. what the demo and the test command leave behind is git-ignored ------------------------------


def test_demo_output_and_test_reports_are_git_ignored() -> None:
    default = next(line for line in cli("demo", "--help")[1].splitlines() if line.startswith("│ --out "))
    out_dir = default.split("[default: ")[1].split("]")[0]
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert f"{out_dir}/" in ignored
    assert "pytest_results.json" in ignored and ".coverage*" in ignored


# -- 7. more bad input: one line, the documented code, no traceback --------------------------------


def test_missing_and_directory_inputs(wf: Path, tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    code, _, err = cli("validate", folder, "-i", INI)
    assert code == 1 and err.splitlines() == [
        f"{folder}: cannot read workflow: Is a directory",
        f"{folder}: invalid, 1 problem(s)",
    ]
    code, _, err = cli("validate", tmp_path / "nope.yaml", "-i", tmp_path / "nope.ini")
    assert (
        code == 1
        and err.splitlines()[-1]
        == f"{tmp_path / 'nope.yaml'}, {tmp_path / 'nope.ini'}: invalid, 2 problem(s)"
    )
    code, _, err = cli("validate", wf, "-i", INI, "--ssh-config", tmp_path / "nope")
    assert code == 1 and err.splitlines()[-1] == f"{tmp_path / 'nope'}: invalid, 1 problem(s)"
    code, _, err = cli("plan", EXAMPLE, "-i", INI, "--json", folder)
    assert code == 1 and err.splitlines() == [f"error: {folder}: Is a directory", f"{EXAMPLE}: cannot plan"]


def test_audit_export_to_a_directory(audit_db: Path, tmp_path: Path) -> None:
    code, _, err = cli("audit", "export", audit_db, "-o", tmp_path)
    assert (code, err) == (1, f"error: -o {tmp_path} is a directory; give a file to write\n")


@pytest.mark.parametrize(
    ("args", "code", "line"),
    [
        (["plan", EXAMPLE, "-i", INI, "--start", "garbage"], 1, "error: --start: not an ISO 8601 time"),
        (["sim", EXAMPLE, "-i", INI, "--start", "garbage"], 1, "error: --start: not an ISO 8601 time"),
        (["run", "WF", "-i", INI, "--backend", "garbage"], 1, "--backend must be local, local=N, ray or"),
        (["run", "WF", "-i", INI, "--backend", "local=abc"], 1, "--backend local=N takes a number"),
        (["sim", EXAMPLE, "--hosts", "0"], 1, "error: --hosts must be at least 3, not 0"),
        (["status", "--store", "DIR"], 1, "error: DIR: cannot open the run store"),
        (["audit", "verify", "DIR"], 1, "error: DIR is a directory, not an audit log"),
        (["schedule", "list", "--store", "DIR"], 1, "error: DIR: cannot open the run store"),
        (["forecast", EXAMPLE, "-i", INI, "--start", "9999-12-31T23:59"], 1, "error: --start 9999-12-31T23:59 is too far"),
        (["plan", EXAMPLE, "-i", INI, "--start", "9500-01-01"], 1, "error: --start 9500-01-01 is too far in the"),
        (["scheduler", "--once", "--poll", "-1", "--store", "STORE"], 1, "error: --poll must be a number of seconds"),
        (["scheduler", "--once", "--schedule", "nope", "--store", "STORE"], 3, "error: no schedule named 'nope'"),
    ],
)  # fmt: skip
def test_bad_options_are_one_line(
    tmp_path: Path, wf: Path, args: list[str | Path], code: int, line: str
) -> None:
    swap = {"WF": str(wf), "DIR": str(tmp_path), "STORE": str(tmp_path / "s.db")}
    argv = [swap.get(str(a), str(a)) for a in args] + (["--store", swap["STORE"]] if args[0] == "run" else [])
    got, _, err = cli(*argv)
    expected = line.replace("DIR", str(tmp_path))
    assert got == code, err
    assert err.splitlines()[0].startswith(expected), err
    assert len(err.splitlines()) <= 2  # the error, and for plan/forecast the summary line


def test_output_that_cannot_be_written_is_one_line(wf: Path) -> None:
    """stdout on a full disk (Linux's /dev/full): one line on stderr, exit 1, nothing at exit."""
    for args in (["schema"], ["validate", wf, "-i", INI]):
        with open("/dev/full", "w") as full:
            done = subprocess.run(
                [sys.executable, "-m", "sysflow", *map(str, args)],
                stdout=full,
                stderr=subprocess.PIPE,
                text=True,
                timeout=60,
            )
        assert (done.returncode, done.stderr) == (
            1,
            "error: cannot write the output: No space left on device\n",
        )


def test_a_host_range_typo_is_refused_at_once_not_expanded(wf: Path, tmp_path: Path) -> None:
    """``web[0:99999999]`` (one digit too many) once took minutes and gigabytes to expand."""
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("[web]\nweb[0:99999999]\n")
    started = datetime.now(UTC)
    code, _out, err = cli("validate", wf, "-i", inventory)
    assert code == 1
    assert "expands to 100,000,000 hosts, more than 100,000" in err
    assert "hosts.ini:2" in err
    assert (datetime.now(UTC) - started).total_seconds() < 5
