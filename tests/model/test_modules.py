"""Task modules as a user writes them: validation with file:line, and the rendered scripts run by a
real /bin/sh on real files (changed, unchanged, check mode, diff, rollback, failure)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from sysflow.errors import WorkflowError
from sysflow.model.modules import CHANGED_MARK, MODULES, OK_MARK, changed_of
from sysflow.model.templates import template_references
from sysflow.model.workflow import MaintenanceWorkflow, Task


def _load(tmp_path: Path, tasks: str) -> MaintenanceWorkflow:
    path = tmp_path / "wf.yaml"
    path.write_text(f"name: m\ntasks:\n{tasks}")
    return MaintenanceWorkflow.from_file(path)


def _problems(tmp_path: Path, tasks: str) -> str:
    with pytest.raises(WorkflowError) as err:
        _load(tmp_path, tasks)
    return str(err.value)


def sh(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize(
    ("tasks", "where", "message"),
    [
        ("  - id: a\n    fetch: {src: x, dest: y}\n", "wf.yaml:4", "path must be absolute"),
        ("  - id: a\n    fetch: {src: '/{{ host.name }}', dest: y}\n", "wf.yaml:4", "src names the file on every host: it cannot be a template"),
        ("  - id: a\n    template: {src: no-such.j2, dest: /y}\n", "wf.yaml:4", "src no-such.j2: no such file on the controller"),
        ("  - id: a\n    lineinfile: {path: /x, line: '{{ vars.x'}\n", "wf.yaml:3", "invalid template: "),
        ("  - id: a\n    copy: {src: no-such-file, dest: /y}\n", "wf.yaml:4", "src no-such-file: no such file on the controller"),
        ("  - id: a\n    lineinfile: {path: /etc/x}\n", "wf.yaml:4", "state: present needs line"),
        ("  - id: a\n    lineinfile: {path: etc/x, line: y}\n", "wf.yaml:4", "path must be absolute"),
        ("  - id: a\n    run: 'true'\n    file: {path: /x}\n", "wf.yaml:3", "give run: or the file module, not both"),
        ("  - id: a\n    tags: [x]\n", "wf.yaml:3", "a task needs run: (a shell command) or one module"),
        ("  - id: a\n    file: {path: /x, mode: '999'}\n", "wf.yaml:4", "String should match pattern"),
        ("  - id: a\n    wait_for: {path: /x, port: 22}\n", "wf.yaml:4", "give exactly one of path, port or command (got path, port)"),
        ("  - id: a\n    file: {path: /x}\n    wait_for: {path: /x}\n", "wf.yaml:3", "one module per task, not file and wait_for"),
        ("  - id: a\n    blockinfile: {path: /x}\n", "wf.yaml:4", "state: present needs block"),
        ("  - id: a\n    service: {name: nginx}\n", "wf.yaml:4", "give state or enabled (or both)"),
        ("  - id: a\n    service: {name: 'nginx; reboot', state: started}\n", "wf.yaml:4", "String should match pattern"),
        ("  - id: a\n    service: {name: nginx, state: running}\n", "wf.yaml:4", "Input should be 'started', 'stopped', 'restarted' or 'reloaded'"),
        ("  - id: a\n    git: {repo: /r, dest: srv/app}\n", "wf.yaml:4", "path must be absolute"),
        ("  - id: a\n    git: {repo: /r, dest: /srv/app, version: '-x; id'}\n", "wf.yaml:4", "String should match pattern"),
        ("  - id: a\n    package: {name: 'nginx; rm -rf /'}\n", "wf.yaml:4", "not a package name, NAME=VERSION or absolute path"),
        ("  - id: a\n    package: {name: []}\n", "wf.yaml:4", "List should have at least 1 item"),
        ("  - id: a\n    package: {name: [curl, x.deb]}\n", "wf.yaml:4", "a package file is named by its absolute path on the host: 'x.deb'"),
        ("  - id: a\n    package: {name: nginx, state: installed}\n", "wf.yaml:4", "Input should be 'present', 'latest' or 'absent'"),
        ("  - id: a\n    blockinfile: {path: /x, block: y, marker: '# managed'}\n", "wf.yaml:4", "marker must contain {mark}"),
        ("  - id: a\n    blockinfile:\n      path: /x\n      block: y\n      marker_end: \"a\\nb\"\n", "wf.yaml:7", "must be one line"),
        ("  - id: a\n    blockinfile: {path: /x, block: y, insertafter: a, insertbefore: b}\n", "wf.yaml:4", "give insertafter or insertbefore, not both"),
    ],
)  # fmt: skip
def test_bad_module_tasks_are_refused_with_file_and_line(
    tmp_path: Path, tasks: str, where: str, message: str
) -> None:
    text = _problems(tmp_path, tasks)
    line = next(x for x in text.splitlines() if message in x)
    assert line.startswith(f"{tmp_path / where}"), text


def test_a_module_task_renders_run_check_rollback_and_reads_back_the_same(tmp_path: Path) -> None:
    wf = _load(tmp_path, "  - id: ntp\n    lineinfile: {path: /etc/ntp.conf, line: server a}\n")
    task = wf.tasks[0]
    assert task.module == "lineinfile" and task.idempotent
    assert task.run and task.check and task.rollback
    again = Task.model_validate(task.model_dump(by_alias=True))  # a stored workflow, resumed
    assert again == task
    api = MaintenanceWorkflow("m")
    made = api.add_task("ntp", lineinfile={"path": "/etc/ntp.conf", "line": "server a"})
    assert made.run == task.run


def test_lineinfile_changes_then_reports_ok_with_a_diff_check_and_rollback(tmp_path: Path) -> None:
    conf = tmp_path / "ntp.conf"
    conf.write_text("# ntp\nserver old iburst\ndriftfile /var/lib/ntp/drift\n")
    conf.chmod(0o640)
    task = Task(id="ntp", lineinfile={"path": str(conf), "regexp": "^server ", "line": "server new iburst"})
    assert sh(task.check or "").returncode == 1  # check mode: it would change, nothing changed
    assert conf.read_text().count("server old") == 1
    first = sh(task.run)
    assert first.returncode == 0, first.stderr
    assert changed_of(first.stdout) is True and first.stdout.startswith(CHANGED_MARK)
    assert "-server old iburst\n+server new iburst" in first.stdout  # the diff
    assert conf.read_text() == "# ntp\nserver new iburst\ndriftfile /var/lib/ntp/drift\n"
    assert oct(conf.stat().st_mode & 0o777) == "0o640"  # mode kept across the atomic replace
    assert sh(task.check or "").returncode == 0
    second = sh(task.run)
    assert second.stdout.splitlines() == [OK_MARK] and changed_of(second.stdout) is False
    assert not (tmp_path / "ntp.conf.sysflow-bak").exists()  # an unchanged run leaves no backup
    third = sh(task.run.replace("server new iburst", "server newer"))
    assert changed_of(third.stdout) is True
    assert sh(task.rollback or "").returncode == 0  # restores what the last change replaced
    assert "server new iburst" in conf.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ntp.conf"]


def test_lineinfile_absent_create_and_a_missing_file(tmp_path: Path) -> None:
    conf = tmp_path / "hosts.allow"
    missing = sh(Task(id="a", lineinfile={"path": str(conf), "line": "x"}).run)
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"lineinfile: {conf} does not exist (create: true creates it)"
    create = Task(id="a", lineinfile={"path": str(conf), "line": "sshd: 10.0.0.0/8", "create": True})
    assert changed_of(sh(create.run).stdout) is True and conf.read_text() == "sshd: 10.0.0.0/8\n"
    assert sh(create.rollback or "").returncode == 0 and not conf.exists()  # it created it: gone
    conf.write_text("a\nsshd: ALL\nb\nsshd: ALL\n")
    gone = Task(id="a", lineinfile={"path": str(conf), "line": "sshd: ALL", "state": "absent"})
    assert changed_of(sh(gone.run).stdout) is True and conf.read_text() == "a\nb\n"
    assert changed_of(sh(gone.run).stdout) is False


def test_a_hostile_line_is_written_as_is(tmp_path: Path) -> None:
    conf = tmp_path / "f"
    conf.write_text("")
    line = "x'; touch " + str(tmp_path / "pwned") + "; echo '\\n $HOME `id` \\\\ & |"
    task = Task(id="a", lineinfile={"path": str(conf), "line": line})
    assert changed_of(sh(task.run).stdout) is True
    assert conf.read_text() == line + "\n" and not (tmp_path / "pwned").exists()


def test_file_directory_mode_and_absent(tmp_path: Path) -> None:
    d = tmp_path / "a" / "b"
    task = Task(id="d", file={"path": str(d), "state": "directory", "mode": "0750"})
    first = sh(task.run)
    assert first.stdout.splitlines() == [CHANGED_MARK, f"created directory {d}", "mode: (new) -> 750"]
    assert oct(d.stat().st_mode & 0o777) == "0o750"
    assert sh(task.run).stdout.splitlines() == [OK_MARK]
    d.chmod(0o700)
    assert sh(task.check or "").returncode == 1
    assert sh(task.run).stdout.splitlines() == [CHANGED_MARK, "mode: 700 -> 750"]
    plain = sh(Task(id="f", file={"path": str(tmp_path / "nope")}).run)
    assert (
        plain.returncode == 1 and "does not exist or is not a file (state: touch creates it)" in plain.stderr
    )
    gone = Task(id="g", file={"path": str(tmp_path / "a"), "state": "absent"})
    assert sh(gone.run).stdout.splitlines() == [CHANGED_MARK, f"removed {tmp_path / 'a'}"]
    assert not (tmp_path / "a").exists() and sh(gone.run).stdout.splitlines() == [OK_MARK]


def test_wait_for_a_path_and_a_timeout(tmp_path: Path) -> None:
    flag = tmp_path / "ready"
    task = Task(id="w", wait_for={"path": str(flag), "timeout": "5s", "interval": 0.2})
    late = subprocess.Popen(["/bin/sh", "-c", f"sleep 0.5; touch {flag}"])
    try:
        waited = sh(task.run)
    finally:
        late.wait(timeout=10)
    assert waited.returncode == 0 and waited.stdout.splitlines() == [OK_MARK, f"path {flag} is present"]
    never = Task(id="n", wait_for={"path": str(tmp_path / "never"), "timeout": 1, "interval": 0.2})
    failed = sh(never.run)
    assert failed.returncode == 1
    assert failed.stderr.strip() == f"wait_for: path {tmp_path / 'never'} not present after 1 s"
    closed = Task(id="p", wait_for={"port": 9, "state": "absent", "timeout": 2})
    assert sh(closed.run).returncode == 0  # nothing listens on 127.0.0.1:9


BEGIN, END = "# BEGIN SYSFLOW MANAGED BLOCK", "# END SYSFLOW MANAGED BLOCK"


def test_blockinfile_inserts_replaces_in_place_and_removes_with_diff_check_and_rollback(
    tmp_path: Path,
) -> None:
    conf = tmp_path / "sshd_config"
    conf.write_text("Port 22\nMatch User backup\n  X11Forwarding no\n")
    conf.chmod(0o600)
    block = {"path": str(conf), "block": "PermitRootLogin no\nMaxAuthTries 3\n", "insertbefore": "^Match "}
    task = Task(id="b", blockinfile=block)
    assert sh(task.check or "").returncode == 1 and "PermitRootLogin" not in conf.read_text()
    first = sh(task.run)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(CHANGED_MARK + "\n")
    assert f"+{BEGIN}\n+PermitRootLogin no\n+MaxAuthTries 3\n+{END}\n Match User backup" in first.stdout
    placed = f"Port 22\n{BEGIN}\nPermitRootLogin no\nMaxAuthTries 3\n{END}\nMatch User backup\n  X11Forwarding no\n"
    assert conf.read_text() == placed and oct(conf.stat().st_mode & 0o777) == "0o600"
    assert sh(task.check or "").returncode == 0
    assert sh(task.run).stdout.splitlines() == [OK_MARK]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sshd_config"]  # no backup after an ok run
    conf.write_text(placed + "Port 2222\n")  # the regexp now matches elsewhere: the block stays put
    moved = Task(id="b", blockinfile={**block, "block": "PermitRootLogin no"})
    second = sh(moved.run)
    assert "-MaxAuthTries 3\n" in second.stdout and changed_of(second.stdout) is True
    assert conf.read_text() == placed.replace("MaxAuthTries 3\n", "") + "Port 2222\n"
    assert sh(moved.rollback or "").returncode == 0 and conf.read_text() == placed + "Port 2222\n"
    gone = Task(id="b", blockinfile={"path": str(conf), "state": "absent"})
    assert changed_of(sh(gone.run).stdout) is True
    assert conf.read_text() == "Port 22\nMatch User backup\n  X11Forwarding no\nPort 2222\n"
    assert sh(gone.run).stdout.splitlines() == [OK_MARK]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ({}, "a\nb\na\n{block}"),
        ({"insertafter": "EOF"}, "a\nb\na\n{block}"),
        ({"insertbefore": "BOF"}, "{block}a\nb\na\n"),
        ({"insertafter": "^a$"}, "a\nb\na\n{block}"),  # after the *last* match
        ({"insertafter": "^b"}, "a\nb\n{block}a\n"),
        ({"insertbefore": "^b"}, "a\n{block}b\na\n"),
        ({"insertafter": "^nowhere"}, "a\nb\na\n{block}"),  # no match: the end
        ({"insertbefore": "^nowhere"}, "a\nb\na\n{block}"),
    ],
)
def test_blockinfile_places_a_new_block(tmp_path: Path, where: dict[str, str], expected: str) -> None:
    conf = tmp_path / "f"
    conf.write_text("a\nb\na\n")
    task = Task(id="b", blockinfile={"path": str(conf), "block": "x", "marker": ";; {mark} app", **where})
    assert changed_of(sh(task.run).stdout) is True
    assert conf.read_text() == expected.format(block=";; BEGIN app\nx\n;; END app\n")


def test_blockinfile_create_a_missing_file_and_an_unterminated_block(tmp_path: Path) -> None:
    conf = tmp_path / "new.conf"
    missing = sh(Task(id="b", blockinfile={"path": str(conf), "block": "x"}).run)
    assert missing.returncode == 1 and not conf.exists()
    assert missing.stderr.strip() == f"blockinfile: {conf} does not exist (create: true creates it)"
    create = Task(id="b", blockinfile={"path": str(conf), "block": "x", "create": True})
    assert changed_of(sh(create.run).stdout) is True and conf.read_text() == f"{BEGIN}\nx\n{END}\n"
    assert sh(create.rollback or "").returncode == 0 and not conf.exists()
    conf.write_text(f"keep\n{BEGIN}\nhalf\n")
    broken = sh(Task(id="b", blockinfile={"path": str(conf), "block": "x"}).run)
    assert broken.returncode == 1 and broken.stdout == ""
    assert broken.stderr.strip() == (
        f"blockinfile: {conf}: line 2 begins a block ({BEGIN}) but no line ends it ({END})"
    )
    assert conf.read_text() == f"keep\n{BEGIN}\nhalf\n"


def test_package_check_and_run_against_this_hosts_dpkg(tmp_path: Path) -> None:
    """Read-only against the machine's real package database: nothing is installed or removed."""
    there = Task(id="p", package={"name": "coreutils"})
    assert there.package is not None and there.package.name == ["coreutils"]  # one name, as a list
    assert sh(there.check or "").returncode == 0 and sh(there.run).stdout.splitlines() == [OK_MARK]
    gone = Task(id="p", package={"name": ["sysflow-no-such-package", "another-one"], "state": "absent"})
    assert sh(gone.run).stdout.splitlines() == [OK_MARK]
    unknown = sh(Task(id="p", package={"name": ["coreutils", "sysflow-no-such-package"]}).run)
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert (
        unknown.stderr.strip()
        == "package: sysflow-no-such-package is not installed and apt-get knows no version of it"
    )
    file = sh(Task(id="p", package={"name": str(tmp_path / "x.deb")}).check or "")
    assert file.stderr.strip() == f"package: {tmp_path / 'x.deb'} does not exist or cannot be read"
    (tmp_path / "x.deb").write_text("not a package")
    file = sh(Task(id="p", package={"name": str(tmp_path / "x.deb")}).check or "")
    assert file.stderr.strip() == f"package: {tmp_path / 'x.deb'} is not a package file apt-get can install"


def test_package_without_a_package_manager_says_so() -> None:
    task = Task(id="p", package={"name": "nginx=1.22.1-9"})
    bare = subprocess.run(
        ["/bin/sh", "-c", task.run], capture_output=True, text=True, env={"PATH": "/nonexistent"}
    )
    assert (
        bare.returncode == 1 and bare.stderr.strip() == "package: no apt-get, dnf, yum or zypper on this host"
    )
    dnf = sh(Task(id="p", package={"name": "nginx", "manager": "dnf"}).run)
    assert dnf.returncode == 1 and dnf.stderr.strip() == "package: dnf is not on this host"


EVERY_MODULE = {
    "copy": {"src": __file__, "dest": "/x", "mode": "0640", "owner": "root"},
    "template": {"src": str(Path(__file__).parent / "data" / "motd.j2"), "dest": "/x"},
    "fetch": {"src": "/etc/hostname", "dest": "/tmp/fetched"},
    "file": {"path": "/x"},
    "lineinfile": {"path": "/x", "line": "y"},
    "blockinfile": {"path": "/x", "block": "y"},
    "package": {"name": ["a", "/b.deb"]},
    "git": {"repo": "file:///r", "dest": "/d", "version": "0123abc"},
    "service": {"name": "nginx", "state": "started", "enabled": True, "daemon_reload": True},
    "wait_for": {"port": 22},
    "reboot": {"only_if_required": True},
    "script": {"src": __file__, "args": ["a"], "chdir": "/t", "creates": "/x", "env": {"A": "b"}},
    "http": {"url": "http://x/", "method": "PUT", "body": {"a": {"b": [{}]}}, "json": {"a.b": {"c": 1}}},
}


@pytest.mark.parametrize("module", MODULES)
def test_every_rendered_script_is_a_command_template_that_renders_as_is(module: str) -> None:
    """Commands are Jinja templates: a script must hold no ``{{``, ``{%`` or ``{#`` of its own."""
    task = Task(id="m", **{module: EVERY_MODULE[module]})
    for command in (task.run, task.check, task.rollback):
        assert command is None or template_references(command) == []


def _git(*argv: str) -> str:
    ident = ["-c", "user.name=t", "-c", "user.email=t@localhost"]
    done = subprocess.run(["git", *ident, *argv], check=True, capture_output=True, text=True)
    return done.stdout.strip()


def test_git_clone_ok_move_rollback_and_refusals(tmp_path: Path) -> None:
    work, bare, dest = tmp_path / "work", tmp_path / "app.git", tmp_path / "app"
    _git("init", "-q", "--bare", "-b", "main", str(bare))
    _git("clone", "-q", str(bare), str(work))
    (work / "f").write_text("1\n")
    _git("-C", str(work), "add", "f")
    _git("-C", str(work), "commit", "-qm", "one")
    (work / "f").write_text("2\n")
    _git("-C", str(work), "commit", "-qam", "two")
    _git("-C", str(work), "push", "-q", "origin", "main")
    one, two = _git("-C", str(work), "rev-parse", "HEAD~1"), _git("-C", str(work), "rev-parse", "HEAD")
    at_one = Task(id="g", git={"repo": f"file://{bare}", "dest": str(dest), "version": one[:10]})
    assert (
        sh(at_one.check or "").stdout == f"{dest}: (none) -> {one[:7]} ({one[:10]})\n" and not dest.exists()
    )
    assert sh(at_one.run).stdout.splitlines() == [CHANGED_MARK, f"{dest}: (none) -> {one[:7]} ({one[:10]})"]
    assert sh(at_one.run).stdout.splitlines() == [OK_MARK] and sh(at_one.check or "").returncode == 0
    main = Task(id="g", git={"repo": f"file://{bare}", "dest": str(dest)})  # HEAD: the default branch
    moved = sh(main.run).stdout.splitlines()
    assert moved == [CHANGED_MARK, f"{dest}: {one[:7]} -> {two[:7]} (HEAD)", f"{two[:7]} two"]
    assert (dest / "f").read_text() == "2\n"
    assert (
        sh(main.rollback or "").stdout == f"{dest}: back to {one[:7]}\n" and (dest / "f").read_text() == "1\n"
    )
    assert sh(main.rollback or "").stdout == ""  # once: the file that said where to go back is gone
    shutil.rmtree(dest)
    assert changed_of(sh(main.run).stdout) is True
    assert sh(main.rollback or "").stdout == f"removed {dest}\n" and not dest.exists()  # it cloned it
    nowhere = sh(Task(id="g", git={"repo": f"file://{tmp_path / 'nope'}", "dest": str(dest)}).run)
    assert (
        nowhere.returncode == 1
        and nowhere.stderr.splitlines()[-1] == f"git: cannot read file://{tmp_path / 'nope'}"
    )
    dest.mkdir()
    (dest / "x").write_text("")
    taken = sh(main.run)
    assert taken.returncode == 1 and taken.stderr == f"git: {dest} exists and is not a git checkout\n"


@pytest.mark.parametrize("state", ["started", "stopped", "restarted", "reloaded", None])
@pytest.mark.parametrize("enabled", [True, False, None])
def test_service_scripts_parse_and_name_their_systemctl_verbs(
    state: str | None, enabled: bool | None
) -> None:
    """No systemd runs in this container (``systemctl is-system-running``: offline), so the unit is
    never really started here: the scripts are parsed by sh and bash, and read for their verbs."""
    if state is None and enabled is None:
        return
    task = Task(id="s", service={"name": "nginx.service", "state": state, "enabled": enabled})
    for command in (task.run, task.check or "", task.rollback or ""):
        for shell in ("/bin/sh", "bash"):
            assert subprocess.run([shell, "-n", "-c", command], capture_output=True).returncode == 0
    verbs = {
        "started": "ctl start",
        "stopped": "ctl stop",
        "restarted": "ctl restart",
        "reloaded": "ctl reload",
    }
    assert state is None or verbs[state] in task.run
    assert ("ctl enable" in task.run) is (enabled is True) and ("ctl disable" in task.run) is (
        enabled is False
    )
    assert not re.search(
        r"\bctl (start|stop|restart|reload|enable|disable)\b", task.check or ""
    )  # checks only


def test_service_without_a_running_systemd_says_so() -> None:
    task = Task(id="s", service={"name": "ssh", "state": "started", "enabled": True})
    for command in (task.run, task.check or ""):
        here = sh(command)  # this container runs no systemd: the real answer of this host
        assert here.returncode == 1 and here.stdout == ""
        assert here.stderr == "service: systemd is not running on this host (no /run/systemd/system)\n"
    bare = subprocess.run(
        ["/bin/sh", "-c", task.run], capture_output=True, text=True, env={"PATH": "/nonexistent"}
    )
    assert bare.returncode == 1 and bare.stderr == "service: systemctl is not on this host\n"
    assert sh(task.rollback or "").returncode == 0  # nothing recorded: nothing to undo
