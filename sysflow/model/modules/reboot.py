"""``reboot``: reboot the host and wait until it is back, proven by a new boot id.

The task's command only looks: with ``only_if_required`` it asks whether the host needs a reboot
(Debian's ``/var/run/reboot-required``, RHEL's ``needs-restarting -r``) and reports ok when it does
not; else it prints :data:`~sysflow.transport.REBOOT_MARK` with the host's boot id and exits
:data:`~sysflow.transport.REBOOT_NEEDED`. The host pool then runs the protocol of
:mod:`sysflow.actors.reboot`: issue ``reboot_command``, drop the connection, poll until a different
boot id answers, within ``timeout``. A host that still answers with the old boot id has not rebooted,
however long ago the command returned: "rebooted" is never reported before the host went down.
"""

from __future__ import annotations

import shlex

from pydantic import Field, field_validator

from sysflow.model.base import FrozenModel
from sysflow.model.durations import Duration
from sysflow.model.modules.base import OK_MARK, HostPath, ModuleActions, assign
from sysflow.transport import OP_STARTED_VAR, REBOOT_MARK, REBOOT_NEEDED, Reboot

__all__ = ["BOOT_ID_PATH", "DEFAULT_REBOOT_ESTIMATE", "REQUIRED_FILE", "RebootModule"]

BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"  # Linux: a new random UUID at every boot
REQUIRED_FILE = "/var/run/reboot-required"  # Debian/Ubuntu: written by packages that need a reboot
DEFAULT_REBOOT_ESTIMATE = 120.0  # seconds a reboot task is expected to take when no estimate is given

_REQUIRED = (  # sets why= when the host asks for a reboot, else reports ok and stops
    f"if [ -e {REQUIRED_FILE} ]; then why='{REQUIRED_FILE} exists'\n"
    "elif command -v needs-restarting >/dev/null 2>&1 && ! needs-restarting -r >/dev/null 2>&1; then\n"
    "  why='needs-restarting -r: a reboot is required'\n"
    f"else echo {shlex.quote(OK_MARK)}; echo 'no reboot required'; exit 0; fi\n"
)


_BOOTED_SINCE = (
    f'if [ -n "${{{OP_STARTED_VAR}:-}}" ]; then\n'
    "  bt=$(awk '$1 == \"btime\" {print $2}' /proc/stat 2>/dev/null)\n"
    f'  if [ -n "$bt" ] && [ "$bt" -gt "${OP_STARTED_VAR}" ]; then echo "booted since the reboot began"; exit 0; fi\n'
    "fi\n"
)


class RebootModule(FrozenModel):
    """Reboot, then wait for a new ``boot_id``; ``only_if_required`` skips hosts that need none."""

    only_if_required: bool = Field(
        False,
        description=f"Reboot only when the host asks for it ({REQUIRED_FILE}, or needs-restarting -r "
        "exits 1); else report ok.",
    )
    timeout: Duration = Field(
        600.0, gt=0, description="Fail when no new boot id answers this long after the reboot command."
    )
    reboot_command: str = Field(
        "systemctl reboot || shutdown -r now",
        min_length=1,
        description="What issues the reboot (needs root: use become).",
    )
    boot_id_path: HostPath = Field(BOOT_ID_PATH, description="The file holding the current boot's id.")
    probe_timeout: Duration = Field(
        10.0, gt=0, description="Seconds one reconnect and boot id read may take."
    )
    interval: Duration = Field(
        2.0, gt=0, description="Seconds before the first poll; doubles up to max_interval."
    )
    max_interval: Duration = Field(10.0, gt=0, description="Longest wait between two polls.")

    @field_validator("reboot_command", "boot_id_path")
    @classmethod
    def _literal(cls, value: str) -> str:
        if "{{" in value:
            raise ValueError("the reboot protocol runs it as written: it cannot be a template")
        return value

    def actions(self) -> ModuleActions:
        read = (
            'b=$(cat -- "$p") || { echo "reboot: cannot read the boot id from $p" >&2; exit 1; }\n'
            '[ -n "$b" ] || { echo "reboot: $p is empty" >&2; exit 1; }\n'
        )
        run = (
            assign(p=self.boot_id_path)
            + "why='reboot asked'\n"
            + (_REQUIRED if self.only_if_required else "")
            + read
            + f'echo "{REBOOT_MARK} $b"\necho "$why"\nexit {REBOOT_NEEDED}\n'
        )
        # check (exit 0: nothing to do): a host booted since the interrupted operation started (resume
        # gives that instant as OP_STARTED_VAR), or, with only_if_required, one that needs no reboot;
        # so a reboot interrupted by a controller crash is not done a second time.
        check = _BOOTED_SINCE + (
            _REQUIRED.replace(f"echo {shlex.quote(OK_MARK)}; echo 'no reboot required'; ", "")
            if self.only_if_required
            else ""
        )
        return ModuleActions(run=run, check=check + "exit 1\n")

    def spec(self) -> Reboot:
        """What the host pool runs once the command asks for the reboot."""
        return Reboot(
            boot_id_command=f"cat -- {shlex.quote(self.boot_id_path)}",
            command=self.reboot_command,
            timeout=self.timeout,
            probe_timeout=self.probe_timeout,
            interval=self.interval,
            max_interval=self.max_interval,
        )
