"""``--become``, ``--become-user`` and ``--ask-become-pass``: the CLI side of privilege escalation.

Why here: ``run``, ``resume`` (and ``exec``) share them. The flag sets the workflow's default (a
task's own ``become:`` and the host's ``ansible_become`` still win, see :mod:`sysflow.model.become`);
the prompted password is a :class:`~sysflow.actors.auth.Secret` kept in memory only, and a host's
``ansible_become_password`` / ``ansible_become_pass`` takes precedence over it for that host.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sysflow.model.become import BECOME_PASSWORD_VARS

if TYPE_CHECKING:
    from sysflow.actors.auth import Secret, SSHAuth
    from sysflow.model.inventory import Inventory
    from sysflow.model.workflow import MaintenanceWorkflow

__all__ = ["ask_become_password", "host_become_lookup", "with_become_flags", "with_become_passwords"]


def with_become_flags(
    workflow: MaintenanceWorkflow, become: bool, become_user: str | None
) -> MaintenanceWorkflow:
    """``workflow`` with ``--become`` / ``--become-user`` as its defaults (a copy; unchanged without)."""
    update: dict[str, Any] = {}
    if become or become_user:
        update["become"] = True
    if become_user:
        update["become_user"] = become_user
    return workflow.model_copy(update=update) if update else workflow


def ask_become_password(ask: bool) -> Secret | None:
    """The become password typed at a hidden prompt (read from stdin when it is not a terminal)."""
    if not ask:
        return None
    import sys

    import typer

    from sysflow.actors.auth import Secret

    if not sys.stdin.isatty():  # piped: one line, no echo to hide (getpass would warn)
        typer.echo("BECOME password: ", err=True, nl=False)
        return Secret(sys.stdin.readline().rstrip("\r\n"))
    value: str = typer.prompt("BECOME password", hide_input=True, err=True)
    return Secret(value)


def host_become_lookup(inventory_of: Callable[[], Inventory]) -> Callable[[str], str | None]:
    """A host's ``ansible_become_password`` (or ``_pass``), read from the inventory at connect time
    (``inventory_of``: on resume the engine's inventory is the stored one, secrets restored)."""

    def lookup(host: str) -> str | None:
        inv = inventory_of()
        if host not in inv.hosts:
            return None
        variables = inv.host_vars(host)
        for name in BECOME_PASSWORD_VARS:
            value = variables.get(name)
            if isinstance(value, str | int) and not isinstance(value, bool):
                return str(value)
        return None

    return lookup


def with_become_passwords(
    auth: SSHAuth, prompted: Secret | None, inventory_of: Callable[[], Inventory]
) -> SSHAuth:
    """``auth`` with the prompted password (all hosts) under each host's inventory password."""
    if prompted is not None:
        auth = auth.with_become(prompted.reveal)
    return auth.with_host_become(host_become_lookup(inventory_of))
