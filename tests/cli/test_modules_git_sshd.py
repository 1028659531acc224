"""The ``git`` module over the real sshd, through sudo: a local bare repository (``file://``) with
two commits, cloned at a tag, found unchanged, moved to a branch, rolled back by the engine when a
later task fails, and refused with a located message for an unknown version or local changes."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sysflow.model.workflow import MaintenanceWorkflow
from tests.cli.test_modules_sshd import connect, logs, run_workflow, sysflow
from tests.fixtures.sshd import SSHD

pytestmark = pytest.mark.ssh

HOSTS = ["h0071", "h0072"]

WORKFLOW = """\
name: deploy
become: true
rollout:
  auto_rollback: {rollback}
tasks:
  - id: app
    git: {{repo: "{repo}", dest: "{{{{ vars.srv }}}}/{{{{ host.name }}}}", version: {version}}}
  - id: restart
    depends_on: [app]
    run: 'test {{{{ host.name }}}} != {broken}'
"""


@dataclass(frozen=True)
class Repo:
    url: str
    v1: str  # the commit tagged v1
    v2: str  # main, one commit later


def _git(*argv: str, cwd: Path | None = None) -> str:
    ident = ["-c", "user.name=sysflow tests", "-c", "user.email=root@localhost"]
    done = subprocess.run(["git", *ident, *argv], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout.strip()


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    where = tmp_path_factory.mktemp("git")
    _git("init", "--quiet", "--bare", "-b", "main", str(where / "app.git"))
    work = where / "work"
    _git("clone", "--quiet", str(where / "app.git"), str(work))
    (work / "VERSION").write_text("1\n")
    _git("add", "VERSION", cwd=work)
    _git("commit", "--quiet", "-m", "first", cwd=work)
    _git("tag", "v1", cwd=work)
    (work / "VERSION").write_text("2\n")
    _git("commit", "--quiet", "-am", "second", cwd=work)
    _git("push", "--quiet", "origin", "main", "v1", cwd=work)
    return Repo(
        f"file://{where / 'app.git'}", _git("rev-parse", "v1", cwd=work), _git("rev-parse", "main", cwd=work)
    )


@pytest.fixture
def srv() -> Iterator[Path]:
    """A root-owned directory the non-root login cannot write (like /srv)."""
    path = Path(tempfile.mkdtemp(prefix="sysflow-srv-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def _run(
    sshd: SSHD,
    tmp: Path,
    srv: Path,
    repo: Repo,
    version: str,
    *,
    rollback: bool = False,
    broken: str = "none",
) -> subprocess.CompletedProcess[str]:
    workflow = WORKFLOW.format(rollback=str(rollback).lower(), repo=repo.url, version=version, broken=broken)
    return run_workflow(sshd, tmp, workflow, HOSTS, srv=str(srv))


def _head(checkout: Path) -> tuple[str, str]:
    """(commit, branch) of a checkout; branch empty when detached."""
    branch = subprocess.run(
        ["git", "-C", str(checkout), "symbolic-ref", "-q", "--short", "HEAD"], capture_output=True
    )
    return _git("-C", str(checkout), "rev-parse", "HEAD"), branch.stdout.decode().strip()


def test_clone_at_a_tag_ok_then_move_to_a_branch(sshd: SSHD, tmp_path: Path, srv: Path, repo: Repo) -> None:
    (tmp_path / "wf.yaml").write_text(
        WORKFLOW.format(rollback="false", repo=repo.url, version="v1", broken="-")
    )
    check = MaintenanceWorkflow.from_file(tmp_path / "wf.yaml").tasks[0].check or ""
    checked = sysflow("exec", "fleet", *connect(sshd, tmp_path, HOSTS, srv=str(srv)), "--become", "--", check)
    assert checked.returncode == 1 and f"{HOSTS[0]} | FAILED | rc=1" in checked.stdout  # would clone
    assert f"{srv / HOSTS[0]}: (none) -> {repo.v1[:7]} (v1)" in checked.stdout
    assert list(srv.iterdir()) == []  # checked, nothing cloned

    first = _run(sshd, tmp_path, srv, repo, "v1")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "  modules: 2 operations changed on 2 hosts, 0 ok" in first.stdout
    assert f"{srv / HOSTS[0]}: (none) -> {repo.v1[:7]} (v1)" in logs(tmp_path, first, HOSTS[0], "app")
    assert _head(srv / HOSTS[0]) == (repo.v1, "") and (srv / HOSTS[0] / "VERSION").read_text() == "1\n"
    assert (srv / HOSTS[0]).stat().st_uid == 0  # cloned by root, through sudo

    again = _run(sshd, tmp_path, srv, repo, "v1")
    assert "  modules: nothing changed, 2 ok" in again.stdout, again.stdout

    moved = _run(sshd, tmp_path, srv, repo, "main")
    assert moved.returncode == 0, moved.stdout
    log = logs(tmp_path, moved, HOSTS[1], "app")
    assert (
        f"{srv / HOSTS[1]}: {repo.v1[:7]} -> {repo.v2[:7]} (main)" in log and f"{repo.v2[:7]} second" in log
    )
    assert _head(srv / HOSTS[1]) == (repo.v2, "main") and (srv / HOSTS[1] / "VERSION").read_text() == "2\n"


def test_a_failed_later_task_checks_the_previous_commit_out_again(
    sshd: SSHD, tmp_path: Path, srv: Path, repo: Repo
) -> None:
    assert _run(sshd, tmp_path, srv, repo, "main").returncode == 0
    failed = _run(sshd, tmp_path, srv, repo, "v1", rollback=True, broken=HOSTS[1])
    assert failed.returncode == 1, failed.stdout + failed.stderr
    for host in HOSTS:  # the wave failed: both checkouts are back on main
        assert _head(srv / host) == (repo.v2, "main"), failed.stdout
        assert (srv / host / "VERSION").read_text() == "2\n"


def test_an_unknown_version_and_local_changes_are_refused(
    sshd: SSHD, tmp_path: Path, srv: Path, repo: Repo
) -> None:
    unknown = _run(sshd, tmp_path, srv, repo, "v9")
    assert unknown.returncode == 1
    assert f"git: {repo.url} has no branch or tag v9" in unknown.stdout, unknown.stdout
    assert list(srv.iterdir()) == []
    assert _run(sshd, tmp_path, srv, repo, "main").returncode == 0
    (srv / HOSTS[0] / "VERSION").write_text("edited by hand\n")
    dirty = _run(sshd, tmp_path, srv, repo, "v1")
    assert dirty.returncode == 1
    assert f"git: {srv / HOSTS[0]} has local changes (force: true discards them)" in dirty.stdout
    assert (srv / HOSTS[0] / "VERSION").read_text() == "edited by hand\n"
