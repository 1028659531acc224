"""Shared pydantic configuration for what users write."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from sysflow.errors import Problem

__all__ = ["FrozenModel", "UserModel", "problems_from_validation"]


class UserModel(BaseModel):
    """A mutable model of user input: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)


class FrozenModel(BaseModel):
    """An immutable model of user input: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


_TYPE_TAGS = frozenset({"bool", "int", "str", "float", "none", "list[int]", "list[str]", "dict[str,float]"})


def _error_path(loc: Iterable[int | str], prefix: str = "") -> str:
    path = prefix
    for part in loc:
        if isinstance(part, str) and (part in _TYPE_TAGS or part.startswith(("function-", "tagged-union["))):
            continue  # a union branch or validator wrapper, not a key the user wrote
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path = f"{path}.{part}" if path else str(part)
    return path


def problems_from_validation(exc: ValidationError, prefix: str = "") -> list[Problem]:
    """Pydantic errors as Problems located by field path (``tasks[3].timeout``).

    The several errors of one union field (``approval: maybe``) become one problem.
    """
    by_path: dict[str, list[str]] = {}
    for err in exc.errors():
        messages = by_path.setdefault(_error_path(err["loc"], prefix), [])
        if _message(err) not in messages:
            messages.append(_message(err))
    return [Problem(" or ".join(msgs), path) for path, msgs in by_path.items()]


def _message(err: Mapping[str, Any]) -> str:
    msg = str(err["msg"])
    if err["type"] == "extra_forbidden":
        return f"unknown key {err['loc'][-1]!r}"
    if err["type"] == "missing":
        return f"missing required key {err['loc'][-1]!r}"
    return msg.removeprefix("Value error, ")
