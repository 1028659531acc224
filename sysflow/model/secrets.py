"""Secret inventory variables: which they are, their redaction for storage and their restoring.

A variable is secret when its name says so (``*_password``, ``*_pass``, ``*_token``, ``*_key``,
``secret_*``, ...: :func:`sysflow.model.templates.is_secret_name`), when a workflow lists it under
``secrets:``, or when the inventory declares it under a ``secrets:`` mapping at any level (host,
group, ``all``, ``group_vars/``, ``host_vars/``)::

    web:
      hosts:
        web1:
          secrets: {db_password: "..."}    # host variable db_password, marked secret
      vars:
        secrets: {api_secret_value: "..."}  # group variable, marked secret

The entries of a ``secrets:`` mapping are ordinary variables of that level (``{{ vars.db_password
}}``): :meth:`Inventory.host_vars` lifts them out of the mapping (they win over a plain variable of
the same name at the same level). A secret is never stored: :func:`redacted_json` (what the run store
keeps) replaces each secret value by the reference ``{"$secret": "<name>"}``, and
:func:`restore_secrets` puts the values back on resume (from the caller, or from the environment
variable ``SYSFLOW_SECRET_<NAME>``), naming every variable it cannot find. :func:`secret_problems`
refuses secrets shorter than :data:`~sysflow.model.templates.MIN_SECRET_LENGTH` characters, naming
the variable and where it is set, never the value.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from sysflow.errors import InventoryError, Problem
from sysflow.model.groups import ALL, UNGROUPED
from sysflow.model.templates import MIN_SECRET_LENGTH, is_secret_name, secret_value

if TYPE_CHECKING:
    from sysflow.model.inventory import Inventory

__all__ = [
    "SECRETS_KEY",
    "SECRET_ENV_PREFIX",
    "SECRET_MARKER",
    "SecretLookup",
    "env_secret_lookup",
    "has_secrets",
    "redacted_json",
    "restore_secrets",
    "secret_names",
    "secret_problems",
    "unresolved_secrets",
]

SECRETS_KEY = "secrets"  # a variables mapping under this key declares secret variables
SECRET_MARKER = "$secret"  # the stored reference of a secret value: {"$secret": "<variable name>"}
SECRET_ENV_PREFIX = "SYSFLOW_SECRET_"  # resume reads a missing secret NAME from SYSFLOW_SECRET_<NAME>

SecretLookup = Callable[[str], "str | None"]
"""Where a redacted secret's value comes back from on resume: variable name -> value (None: unknown)."""


def var_layers(inventory: Inventory) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every variables mapping of the inventory with where it is set (for messages)."""
    yield f"group {ALL}", inventory.vars
    yield f"group {UNGROUPED}", inventory.ungrouped_vars
    for g, group in inventory.groups.items():
        yield f"group {g}", group.vars
    for g, values in inventory.group_vars_dir.items():
        yield f"group_vars/{g}", values
    for h, host in inventory.hosts.items():
        yield f"host {h}", host.vars
    for h, values in inventory.host_vars_dir.items():
        yield f"host_vars/{h}", values


def secret_names(inventory: Inventory) -> set[str]:
    """Names the inventory declares secret under a ``secrets:`` mapping, at any level."""
    names: set[str] = set()
    for _, values in var_layers(inventory):
        declared = values.get(SECRETS_KEY)
        if isinstance(declared, Mapping):
            names.update(str(k) for k in declared)
    return names


def _secrets_of(values: Mapping[str, Any], declared: Collection[str]) -> Iterator[tuple[str, Any]]:
    """(name, value) of the secret variables of one mapping (``secrets:`` entries included)."""
    for key, value in values.items():
        if key == SECRETS_KEY and isinstance(value, Mapping):
            yield from ((str(k), v) for k, v in value.items())
        elif is_secret_name(str(key), declared):
            yield str(key), value


def has_secrets(inventory: Inventory, declared: Collection[str] = ()) -> bool:
    """Whether any variable holds a secret value (by its name, ``declared`` or a ``secrets:`` map)."""
    names = set(declared) | secret_names(inventory)
    return any(
        secret_value(value) is not None
        for _, values in var_layers(inventory)
        for _, value in _secrets_of(values, names)
    )


def secret_problems(inventory: Inventory, declared: Collection[str] = ()) -> list[Problem]:
    """Secrets that cannot be masked safely: shorter than ``MIN_SECRET_LENGTH`` characters.

    ``declared`` adds names (a workflow's ``secrets:``). Each problem names the variable and
    where it is set (``host web1``, ``group web``, ``group_vars/all``), never the value. A
    ``secrets`` variable that is not a mapping is a problem too.
    """
    names = set(declared) | secret_names(inventory)
    problems: list[Problem] = []
    for where, values in var_layers(inventory):
        declared_here = values.get(SECRETS_KEY)
        if declared_here is not None and not isinstance(declared_here, Mapping):
            problems.append(Problem(f"{SECRETS_KEY!r} must map secret variable names to values", where))
        for name, value in _secrets_of(values, names):
            text = secret_value(value)
            if text is not None and len(text) < MIN_SECRET_LENGTH:
                problems.append(
                    Problem(
                        f"secret variable {name!r} is shorter than {MIN_SECRET_LENGTH} characters "
                        "(too short to mask in outputs; use a longer secret, or rename the variable "
                        "if it is not secret)",
                        where,
                    )
                )
    return problems


def redacted_json(inventory: Inventory, declared: Collection[str] = ()) -> str:
    """The inventory as JSON with every secret value replaced by ``{"$secret": "<name>"}``.

    What the run store keeps: the inventory itself is not changed. ``declared`` adds names (a
    workflow's ``secrets:``) to those marked by their name or a ``secrets:`` mapping.
    """
    names = set(declared) | secret_names(inventory)
    data = inventory.model_dump(mode="json")
    data["vars"] = _redact_layer(data["vars"], names)
    data["ungrouped_vars"] = _redact_layer(data["ungrouped_vars"], names)
    for group in data["groups"].values():
        group["vars"] = _redact_layer(group["vars"], names)
    for host in data["hosts"].values():
        host["vars"] = _redact_layer(host["vars"], names)
    for key in ("group_vars_dir", "host_vars_dir"):
        data[key] = {k: _redact_layer(v, names) for k, v in data[key].items()}
    return json.dumps(data, separators=(",", ":"))


def unresolved_secrets(inventory: Inventory) -> list[tuple[str, str]]:
    """(variable, where) of every secret reference still standing in for a value."""
    found: list[tuple[str, str]] = []
    for where, values in var_layers(inventory):
        found.extend((name, where) for name, _ in _references(values))
    return found


def restore_secrets(inventory: Inventory, lookup: SecretLookup | None = None) -> None:
    """Put secret values back in place of their references (in place), e.g. on resume.

    ``lookup`` maps a variable name to its value (default: :func:`env_secret_lookup`). Raises
    :class:`InventoryError` naming every variable (and where it is set) that has no value, so
    nothing runs with a reference in place of a secret.
    """
    lookup = lookup or env_secret_lookup
    problems: list[Problem] = []
    for where, values in var_layers(inventory):
        for name, holder in _references(values):
            value = lookup(name)
            if value is None:
                env = _env_name(name)
                problems.append(
                    Problem(
                        f"secret variable {name!r} is not stored with the run; pass the inventory "
                        f"again or set {env}",
                        where,
                    )
                )
            else:
                holder[name] = value
    if problems:
        raise InventoryError(problems)


def env_secret_lookup(name: str) -> str | None:
    """A secret variable's value from the environment: ``SYSFLOW_SECRET_<NAME>`` (upper case,
    other characters than letters and digits as ``_``); None when unset."""
    return os.environ.get(_env_name(name))


def _env_name(name: str) -> str:
    return SECRET_ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def _marker(name: str) -> dict[str, str]:
    return {SECRET_MARKER: name}


def _is_marker(value: Any) -> bool:
    return isinstance(value, Mapping) and len(value) == 1 and isinstance(value.get(SECRET_MARKER), str)


def _redact_layer(values: dict[str, Any], names: Collection[str]) -> dict[str, Any]:
    """One variables mapping with its secret values replaced by references (None and empty kept)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key == SECRETS_KEY and isinstance(value, Mapping):
            out[key] = {k: _marker(k) if secret_value(v) is not None else v for k, v in value.items()}
        elif is_secret_name(key, names) and secret_value(value) is not None:
            out[key] = _marker(key)
        else:
            out[key] = value
    return out


def _references(values: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(variable, the mapping that holds it) for each secret reference of one variables mapping."""
    for key, value in list(values.items()):
        if key == SECRETS_KEY and isinstance(value, dict):
            yield from ((str(k), value) for k, v in list(value.items()) if _is_marker(v))
        elif _is_marker(value):
            yield key, values
