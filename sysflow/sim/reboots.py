"""The simulator's side of the ``reboot`` module: its first command and the boot id reads.

A simulated host has a boot id (:attr:`HostState.boot_id`, new at every boot) and asks for a reboot
when a new kernel is installed or ``/var/run/reboot-required`` exists. Two rules answer from that,
ahead of the default rules (the module's script also mentions ``cat``): ``reboot_probe`` is the
module's command (``::sysflow reboot BOOT_ID``, exit 75; or ok when ``only_if_required`` finds
nothing to do), ``boot_id`` a read of ``/proc/sys/kernel/random/boot_id``. The reboot itself is the
default ``reboot`` rule; how long a host stays down, whether it comes back and when its connection
drops are per host (``hosts: [{hosts: db3, reboot: {never: true}}]``, see ``RebootFault``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from sysflow.model.modules.base import OK_MARK
from sysflow.model.modules.reboot import BOOT_ID_PATH, REQUIRED_FILE
from sysflow.sim.profile import Fixed, Rule
from sysflow.sim.state import HostState
from sysflow.transport import REBOOT_MARK, REBOOT_NEEDED

__all__ = ["REBOOT_RULES", "boot_id", "reboot_probe"]

Answer = tuple[int, str, str]  # exit status, stdout, stderr

REBOOT_RULES: tuple[Rule, ...] = (
    Rule(
        name="reboot_probe",
        match=re.escape(f'echo "{REBOOT_MARK} $b"'),
        duration=Fixed(seconds=0.2),
        respond="reboot_probe",
    ),
    Rule(
        name="boot_id",
        match=r"^\s*cat\s+(?:--\s+)?'?" + re.escape(BOOT_ID_PATH),
        duration=Fixed(seconds=0.1),
        respond="boot_id",
    ),
)


def reboot_probe(state: HostState, host: str, command: str, groups: Mapping[str, str]) -> Answer:
    """The module's command: ok when only reboots that are required are asked and none is; else the mark."""
    if REQUIRED_FILE in command and not state.reboot_required:
        return 0, f"{OK_MARK}\nno reboot required\n", ""
    why = "reboot asked"
    if REQUIRED_FILE in command and state.reboot_required:
        why = f"{REQUIRED_FILE} exists" if REQUIRED_FILE in state.files else "a new kernel is installed"
    return REBOOT_NEEDED, f"{REBOOT_MARK} {state.boot_id}\n{why}\n", ""


def boot_id(state: HostState, host: str, command: str, groups: Mapping[str, str]) -> Answer:
    return 0, f"{state.boot_id}\n", ""
