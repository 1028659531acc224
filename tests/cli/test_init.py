"""``sysflow init``: the library's list, writing a workflow and its example inventory, refusing to
overwrite, and every workflow valid against its example inventory (``sysflow validate``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sysflow.cli.init import ORDER, library
from tests.cli.test_modules_sshd import sysflow


def test_list_prints_every_workflow_with_its_description() -> None:
    done = sysflow("init", "--list")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines] == list(ORDER)
    assert lines[0].split(None, 1)[1].startswith("Refresh and upgrade packages (apt or dnf)")
    assert all(len(line.split(None, 1)[1]) > 20 for line in lines)


@pytest.mark.parametrize("name", ORDER)
def test_each_workflow_is_written_and_validates_against_its_example_inventory(
    name: str, tmp_path: Path
) -> None:
    done = sysflow("init", name, str(tmp_path / "wf"))
    assert done.returncode == 0, done.stdout + done.stderr
    wf = tmp_path / "wf" / f"{name}.yaml"
    assert wf.read_text() == library()[name].text and wf.read_text().startswith("# ")
    assert (tmp_path / "wf" / "inventory.ini").read_text() == library()[name].inventory
    assert "sysflow validate" in done.stdout and "--check" in done.stdout and "sysflow lab up" in done.stdout
    import subprocess
    import sys

    valid = subprocess.run(
        [sys.executable, "-m", "sysflow", "validate", wf.name, "-i", "inventory.ini"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path / "wf",
    )  # fmt: skip
    assert valid.returncode == 0, valid.stdout + valid.stderr
    assert f"{wf.name}: valid" in valid.stdout


def test_existing_files_are_kept_unless_force(tmp_path: Path) -> None:
    (tmp_path / "inventory.ini").write_text("[web]\nmine\n")
    (tmp_path / "security-audit.yaml").write_text("edited\n")
    refused = sysflow("init", "security-audit", str(tmp_path))
    assert refused.returncode == 1
    assert "security-audit.yaml: already there, not overwritten (--force overwrites)" in refused.stderr
    assert (tmp_path / "security-audit.yaml").read_text() == "edited\n"
    forced = sysflow("init", "security-audit", str(tmp_path), "--force")
    assert forced.returncode == 0, forced.stderr
    assert (tmp_path / "security-audit.yaml").read_text() == library()["security-audit"].text
    assert (tmp_path / "inventory.ini").read_text() == "[web]\nmine\n"  # an inventory is never replaced
    assert "kept " in forced.stdout and "sshd_config, package_manager, report_dir" in forced.stdout


def test_an_unknown_workflow_names_the_library(tmp_path: Path) -> None:
    done = sysflow("init", "os-patch", str(tmp_path))
    assert done.returncode == 1
    assert "no workflow 'os-patch' in the library; sysflow init --list shows: os-patching" in done.stderr
    assert list(tmp_path.iterdir()) == []
