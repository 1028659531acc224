"""``fetch`` over the real sshd: a root-only file on each host comes back to ``DEST/HOST/PATH`` through
sudo and SFTP; an unchanged file does not move again; a changed one does; nothing is left staged on
the hosts; a missing file fails naming it, or is ok with ``fail_on_missing: false``."""

from __future__ import annotations

import glob
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_modules_sshd import connect, logs, sysflow
from tests.fixtures.sshd import SSHD

pytestmark = pytest.mark.ssh

HOSTS = ["h0095", "h0096"]

WORKFLOW = """\
name: collect
become: true
tasks:
  - id: shadow
    fetch: {{src: "{src}", dest: {dest}, fail_on_missing: {strict}}}
"""


@pytest.fixture
def secret_file() -> Iterator[Path]:
    """A file only root may read (like /etc/shadow)."""
    path = Path(tempfile.mkdtemp(prefix="sysflow-fetch-", dir="/tmp"))
    path.chmod(0o700)
    target = path / "app.secret"
    target.write_text("token=one\n")
    target.chmod(0o600)
    try:
        yield target
    finally:
        shutil.rmtree(path)


def _run(sshd: SSHD, tmp: Path, src: Path, *, strict: bool = True):  # type: ignore[no-untyped-def]
    (tmp / "wf.yaml").write_text(WORKFLOW.format(src=src, dest=tmp / "fetched", strict=str(strict).lower()))
    return sysflow("run", str(tmp / "wf.yaml"), *connect(sshd, tmp, HOSTS), "--approve-all")


def test_fetched_through_sudo_once_then_again_after_a_change(
    sshd: SSHD, tmp_path: Path, secret_file: Path
) -> None:
    staged_before = set(glob.glob("/tmp/sysflow-fetch.*"))
    first = _run(sshd, tmp_path, secret_file)
    assert first.returncode == 0, first.stdout + first.stderr
    for host in HOSTS:
        assert (tmp_path / "fetched" / host / str(secret_file).lstrip("/")).read_text() == "token=one\n"
    assert "fetched " in logs(tmp_path, first, HOSTS[0], "shadow")
    assert set(glob.glob("/tmp/sysflow-fetch.*")) == staged_before  # nothing left on the hosts
    second = _run(sshd, tmp_path, secret_file)
    assert "  modules: nothing changed, 2 ok" in second.stdout, second.stdout
    secret_file.write_text("token=two\n")
    third = _run(sshd, tmp_path, secret_file)
    assert "  modules: 2 operations changed on 2 hosts, 0 ok" in third.stdout, third.stdout
    assert (tmp_path / "fetched" / HOSTS[1] / str(secret_file).lstrip("/")).read_text() == "token=two\n"


def test_a_missing_file_fails_naming_it_unless_allowed(sshd: SSHD, tmp_path: Path, secret_file: Path) -> None:
    missing = secret_file.parent / "nope"
    failed = _run(sshd, tmp_path, missing)
    assert failed.returncode == 1 and f"fetch: {missing} does not exist" in failed.stdout, failed.stdout
    allowed = _run(sshd, tmp_path, missing, strict=False)
    assert allowed.returncode == 0 and "  modules: nothing changed, 2 ok" in allowed.stdout, allowed.stdout
