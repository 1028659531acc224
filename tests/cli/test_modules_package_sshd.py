"""The ``package`` module over the real sshd, through sudo: a package built for this session
(``sysflow-test-XXXXXX``, versions 1.0-1 and 2.0-1, as local ``.deb`` files: apt never reaches a
repository) is installed, found installed, upgraded and removed; check mode, the versions in the
logs, and the refusals without become and for a missing file."""

from __future__ import annotations

import secrets
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

HOSTS = ["h0061"]

WORKFLOW = """\
name: pkg
become: {become}
tasks:
  - id: pkg
    package: {{name: "{name}", state: {state}}}
"""


@dataclass(frozen=True)
class Debs:
    name: str
    v1: Path
    v2: Path


def _installed(name: str) -> str:
    query = ["dpkg-query", "-W", "-f=${db:Status-Status} ${Version}", name]
    return subprocess.run(query, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def debs() -> Iterator[Debs]:
    """Two versions of a package of this session's own, in a directory every user can read; the
    package is purged at the end whatever the tests did."""
    name = f"sysflow-test-{secrets.token_hex(3)}"
    where = Path(tempfile.mkdtemp(prefix="sysflow-debs-", dir="/tmp"))
    where.chmod(0o755)
    try:
        built = []
        for version in ("1.0-1", "2.0-1"):
            root = where / version
            (root / "DEBIAN").mkdir(parents=True)
            (root / "DEBIAN" / "control").write_text(
                f"Package: {name}\nVersion: {version}\nArchitecture: all\n"
                "Maintainer: sysflow tests <root@localhost>\nDescription: sysflow package module test\n"
            )
            (root / "opt" / name).mkdir(parents=True)
            (root / "opt" / name / "VERSION").write_text(version + "\n")
            deb = where / f"{name}_{version}_all.deb"
            subprocess.run(
                ["dpkg-deb", "--build", "--root-owner-group", str(root), str(deb)],
                check=True,
                capture_output=True,
            )
            built.append(deb)
        yield Debs(name, built[0], built[1])
    finally:
        subprocess.run(["dpkg", "-P", name], capture_output=True, timeout=120)
        shutil.rmtree(where)


def _run(
    sshd: SSHD, tmp: Path, name: str | Path, state: str = "present", become: bool = True
) -> subprocess.CompletedProcess[str]:
    workflow = WORKFLOW.format(become=str(become).lower(), name=name, state=state)
    return run_workflow(sshd, tmp, workflow, HOSTS)


def test_install_ok_upgrade_and_remove_a_local_deb(sshd: SSHD, tmp_path: Path, debs: Debs) -> None:
    (tmp_path / "wf.yaml").write_text(WORKFLOW.format(become="true", name=debs.v1, state="present"))
    check = MaintenanceWorkflow.from_file(tmp_path / "wf.yaml").tasks[0].check or ""
    checked = sysflow("exec", "fleet", *connect(sshd, tmp_path, HOSTS), "--become", "--", check)
    assert checked.returncode == 1 and f"{HOSTS[0]} | FAILED | rc=1" in checked.stdout  # would install
    assert f"{debs.name}: (none) -> 1.0-1" in checked.stdout
    assert _installed(debs.name) == ""  # checked, nothing installed

    first = _run(sshd, tmp_path, debs.v1)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "  modules: 1 operation changed on 1 host, 0 ok" in first.stdout
    assert f"{debs.name}: (none) -> 1.0-1" in logs(tmp_path, first, HOSTS[0], "pkg")
    assert _installed(debs.name) == "installed 1.0-1"

    again = _run(sshd, tmp_path, debs.v1)
    assert "  modules: nothing changed, 1 ok" in again.stdout, again.stdout

    upgrade = _run(sshd, tmp_path, debs.v2)
    assert upgrade.returncode == 0, upgrade.stdout
    assert f"{debs.name}: 1.0-1 -> 2.0-1" in logs(tmp_path, upgrade, HOSTS[0], "pkg")
    assert Path(f"/opt/{debs.name}/VERSION").read_text() == "2.0-1\n"

    latest = _run(sshd, tmp_path, debs.name, state="latest")  # the host's lists know no newer one
    assert "  modules: nothing changed, 1 ok" in latest.stdout, latest.stdout

    removed = _run(sshd, tmp_path, debs.name, state="absent")
    assert removed.returncode == 0, removed.stdout
    assert f"{debs.name}: 2.0-1 -> (none)" in logs(tmp_path, removed, HOSTS[0], "pkg")
    assert not _installed(debs.name).startswith("installed")
    assert "  modules: nothing changed, 1 ok" in _run(sshd, tmp_path, debs.name, state="absent").stdout


def test_without_become_or_with_a_missing_file_it_says_why(sshd: SSHD, tmp_path: Path, debs: Debs) -> None:
    denied = _run(sshd, tmp_path, debs.v1, become=False)
    assert denied.returncode == 1
    assert f"package: changing {debs.name} needs root (become: true)" in denied.stdout, denied.stdout
    missing = _run(sshd, tmp_path, debs.v1.with_name("nowhere.deb"))
    assert missing.returncode == 1
    assert f"package: {debs.v1.with_name('nowhere.deb')} does not exist or cannot be read" in missing.stdout
    assert _installed(debs.name) == ""
