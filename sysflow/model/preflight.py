"""The workflow's ``preflight:`` section: what every target host needs before the first wave.

Only free disk for now (``preflight: {disk: {path: /var, min_free: 1GiB}}``); connect, login,
host key and sudo (when the workflow uses become) are always checked. Sizes are bytes or a number
with B, KiB, MiB, GiB, TiB (or KB, MB, GB, TB, powers of 1000).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator, Field

from sysflow.model.base import FrozenModel

__all__ = ["DiskCheck", "PreflightConfig", "parse_size"]

_UNITS = {
    "": 1, "b": 1,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
    "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
}  # fmt: skip
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(value: object) -> int:
    """``1GiB`` -> 1073741824; an int is bytes. ValueError names what is accepted."""
    if isinstance(value, bool):
        raise ValueError("a size is bytes or a number with a unit, e.g. 1GiB or 500MB")
    if isinstance(value, int):
        return value
    found = _SIZE.match(str(value))
    unit = found.group(2).lower() if found else None
    if found is None or unit not in _UNITS:
        raise ValueError(
            f"{value!r} is not a size: use bytes or a number with B, KiB, MiB, GiB, TiB, KB, MB, GB, TB"
        )
    return int(float(found.group(1)) * _UNITS[unit])


Size = Annotated[int, BeforeValidator(parse_size), Field(ge=0)]


class DiskCheck(FrozenModel):
    """At least ``min_free`` free on the file system holding ``path``, on every target host."""

    path: str = Field(pattern=r"^/", description="An absolute path on the host (its file system is checked).")
    min_free: Size = Field(description="Bytes that must be free, e.g. 1GiB or 500MB.")


class PreflightConfig(FrozenModel):
    """What the pre-flight checks on every target host beyond connect, login and sudo."""

    disk: DiskCheck | None = Field(None, description="Free disk space every host needs.")
