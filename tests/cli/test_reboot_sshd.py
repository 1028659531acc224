"""``reboot`` over the real sshd, against a scripted host: the boot id is a file, and the reboot
command (run through sudo) schedules a new id 2 s later and ends this very SSH login (it kills its
own session's sshd process, found up its parent chain; nothing else). The protocol records the old
id, sees the connection drop, reconnects, keeps waiting while the old id still answers, and reports
the new one. Refused without become (the script needs root), and a host that never goes down fails
at the module's timeout naming the host and how long."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_modules_sshd import logs, run_workflow
from tests.fixtures.sshd import SSHD

pytestmark = pytest.mark.ssh

HOST = "h0081"

SCRIPT = """\
#!/bin/sh
# A scripted reboot: a new boot id in 2 s, and this SSH login's session ends now.
[ "$(id -u)" = 0 ] || {{ echo "reboot: must be root (use become)" >&2; exit 1; }}
dir={dir}
setsid sh -c "sleep 2; cat /proc/sys/kernel/random/uuid > $dir/boot_id.new && mv $dir/boot_id.new $dir/boot_id" \\
  </dev/null >/dev/null 2>&1 &
{act}
"""

KILL_SESSION = """\
p=$$
while [ "$p" -gt 1 ]; do
  case "$(cat /proc/$p/comm)" in sshd|sshd-session) kill "$p"; exit 0;; esac
  p=$(awk '/^PPid:/ {print $2}' /proc/$p/status)
done
echo "no sshd session above $$" >&2
exit 1"""

WORKFLOW = """\
name: reboot
{become}
tasks:
  - id: reboot
    reboot:
      boot_id_path: {dir}/boot_id
      reboot_command: {dir}/reboot.sh
      timeout: {timeout}
      interval: 0.5s
      max_interval: 1s
  - id: after
    depends_on: [reboot]
    run: cat {dir}/boot_id
"""


@pytest.fixture
def host_dir() -> Iterator[Path]:
    """Root's directory of the scripted host: its boot id (readable by the login) and reboot script."""
    path = Path(tempfile.mkdtemp(prefix="sysflow-boot-", dir="/tmp"))
    path.chmod(0o755)
    (path / "boot_id").write_text("0ld0b007-0000-4000-8000-000000000001\n")
    (path / "boot_id").chmod(0o644)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def _run(
    sshd: SSHD, tmp: Path, where: Path, *, act: str = KILL_SESSION, become: bool = True, timeout: str = "60s"
):  # type: ignore[no-untyped-def]
    script = where / "reboot.sh"
    script.write_text(SCRIPT.format(dir=where, act=act))
    script.chmod(0o755)
    wf = WORKFLOW.format(become="become: true" if become else "", dir=where, timeout=timeout)
    return run_workflow(sshd, tmp, wf, [HOST])


def test_the_old_boot_id_goes_down_and_a_new_one_answers(sshd: SSHD, tmp_path: Path, host_dir: Path) -> None:
    done = _run(sshd, tmp_path, host_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    new = (host_dir / "boot_id").read_text().strip()
    assert new != "0ld0b007-0000-4000-8000-000000000001"
    shown = logs(tmp_path, done, HOST, "reboot")
    assert f"rebooted: boot id 0ld0b007-0000-4000-8000-000000000001 -> {new}" in shown, shown
    assert "went down after 0." in shown  # the session died under the reboot command
    back = float(shown.split("answered again after ")[1].split(" s")[0])
    assert back >= 2.0  # the old id answered the first polls: not "rebooted" until the new one
    assert new in logs(tmp_path, done, HOST, "after")  # the next task ran on the new boot


def test_without_become_the_reboot_command_is_refused_and_nothing_is_awaited(
    sshd: SSHD, tmp_path: Path, host_dir: Path
) -> None:
    done = _run(sshd, tmp_path, host_dir, become=False)
    assert done.returncode != 0
    shown = logs(tmp_path, done, HOST, "reboot")
    assert "reboot: h0081: the reboot command was refused (exit 1), not rebooted" in shown, shown
    assert "must be root (use become)" in shown
    assert (host_dir / "boot_id").read_text() == "0ld0b007-0000-4000-8000-000000000001\n"


def test_a_host_that_never_goes_down_fails_at_the_timeout(sshd: SSHD, tmp_path: Path, host_dir: Path) -> None:
    done = _run(sshd, tmp_path, host_dir, act="exit 0", timeout="1s")  # the id changes 2 s later: too late
    assert done.returncode != 0
    shown = done.stdout + logs(tmp_path, done, HOST, "reboot")
    assert "h0081: reboot: did not come back with a new boot id within 1 s of the reboot command" in shown, (
        shown
    )
    assert "it never went down; last: it still answers with the old boot id" in shown
