"""Privilege escalation ("become"), Ansible's way: who a task's command runs as, and how.

Where it is set, most specific first: a task's ``become`` / ``become_user`` / ``become_method``;
the host's inventory variables ``ansible_become``, ``ansible_become_user``,
``ansible_become_method``; the workflow's own ``become`` / ``become_user`` / ``become_method``
(play-level defaults; ``sysflow run --become`` turns the workflow default on). The password is
``ansible_become_password`` (or ``ansible_become_pass``) of the host, else ``--ask-become-pass``:
a secret, fed to ``sudo -S`` on stdin, never in argv, env, the run store or any record.

Only ``sudo`` runs: ``su`` and ``doas`` read a password from a terminal only, and sysflow runs
commands without one, so they are refused where the workflow or inventory is checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "BECOME_PASSWORD_VARS",
    "BECOME_VARS",
    "BecomeMethod",
    "BecomeSetting",
    "become_method_problem",
    "become_var_problem",
    "resolve_become",
]

BecomeMethod = Literal["sudo", "su", "doas"]
SUPPORTED_METHODS = frozenset({"sudo"})
DEFAULT_BECOME_USER = "root"
BECOME_PASSWORD_VARS = ("ansible_become_password", "ansible_become_pass")
BECOME_VARS = frozenset(
    {"ansible_become", "ansible_become_user", "ansible_become_method", *BECOME_PASSWORD_VARS}
)
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


@dataclass(frozen=True, slots=True)
class BecomeSetting:
    """One level's become fields (None: not set at this level)."""

    become: bool | None = None
    user: str | None = None
    method: str | None = None


def become_method_problem(method: str | None) -> str | None:
    """Why ``method`` cannot be used (None if it can, or is unset)."""
    if method is None or method in SUPPORTED_METHODS:
        return None
    if method in ("su", "doas"):
        return (
            f"become_method {method} is not supported: {method} reads the password from a terminal "
            "and sysflow runs commands without one; use sudo"
        )
    return f"become_method {method!r} is unknown (sysflow runs sudo)"


def _flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return True if text in _TRUE else False if text in _FALSE else None


def become_var_problem(key: str, value: Any) -> str | None:
    """Why ``value`` cannot be the inventory variable ``key`` (an ``ansible_become*``); None if it can."""
    if value is None or key not in BECOME_VARS:
        return None
    if key == "ansible_become":
        return None if _flag(value) is not None else f"ansible_become {value!r} is not a boolean"
    if key == "ansible_become_method":
        return become_method_problem(str(value))
    if not isinstance(value, str | int) or isinstance(value, bool) or not str(value):
        return f"{key} must be a non-empty string"
    if key == "ansible_become_user" and any(c.isspace() for c in str(value)):
        return f"ansible_become_user {value!r} holds whitespace (a user name has none)"
    return None


def host_setting(host_vars: Mapping[str, Any]) -> BecomeSetting:
    """The become fields a host's merged inventory variables set."""
    flag = host_vars.get("ansible_become")
    user = host_vars.get("ansible_become_user")
    method = host_vars.get("ansible_become_method")
    return BecomeSetting(
        None if flag is None else _flag(flag),
        None if user is None else str(user),
        None if method is None else str(method),
    )


def resolve_become(*levels: BecomeSetting) -> str | None:
    """The user a command runs as through sudo (None: as the login user), from ``levels`` most
    specific first: the first level that sets a field decides it."""
    become = next((lv.become for lv in levels if lv.become is not None), False)
    if not become:
        return None
    return next((lv.user for lv in levels if lv.user is not None), DEFAULT_BECOME_USER)
