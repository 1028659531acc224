"""``-v`` / ``-vv`` on ``run`` and ``exec``: each host's output printed as it arrives, one line per
output line (``web01 stderr | ...``), with ``-vv`` each command as it starts (``web01 $ ...``).

Secret values of the inventory (declared by the workflow or secret by name) and the become password
are masked before anything is printed: the transport hands over what the host really printed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sysflow.cli.views import printable
from sysflow.model.templates import SecretMasker, is_secret_name, secret_value

if TYPE_CHECKING:
    from sysflow.actors.auth import Secret
    from sysflow.model.inventory import Inventory
    from sysflow.model.workflow import MaintenanceWorkflow
    from sysflow.transport import OutputTap

__all__ = ["output_printer", "run_masker"]


def run_masker(
    workflow: MaintenanceWorkflow, inventory: Inventory, become_password: Secret | None = None
) -> SecretMasker:
    """Every secret value the run may print: secret variables of the inventory's hosts, the become
    password given with ``-K``."""
    masker = SecretMasker()
    declared = frozenset(workflow.secrets)
    for host in inventory:
        for name, value in host.effective_vars().items():
            text = secret_value(value) if is_secret_name(str(name), declared) else None
            if text is not None:
                masker.add(text)
    if become_password is not None:
        masker.add(become_password.reveal())
    return masker


def output_printer(level: int, masker: SecretMasker, echo: Callable[[str], None]) -> OutputTap | None:
    """The tap for ``-v`` (output lines) and ``-vv`` (commands too); None without ``-v``."""
    if level <= 0:
        return None

    def tap(host: str, kind: str, text: str) -> None:
        if kind == "command" and level < 2:
            return
        mark = "$" if kind == "command" else f"{kind} |"
        shown = printable(masker.mask(text)).rstrip("\n")  # escapes made visible, CR as a new line
        for line in shown.split("\n"):
            echo(f"{host} {mark} {line}")

    return tap
