"""Durations as users write them (``90s``, ``5m``, ``2h``, ``1h30m``, ``PT2H``, plain seconds)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

__all__ = ["Duration", "format_duration", "parse_duration"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_COMPOUND = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*)+$", re.IGNORECASE)
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)", re.IGNORECASE)
_ISO = re.compile(
    r"^P(?:(?P<w>\d+(?:\.\d+)?)W)?(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$",
    re.IGNORECASE,
)


def parse_duration(value: Any) -> float:
    """Seconds from ``90s`` / ``5m`` / ``2h`` / ``1h30m`` / ISO 8601 ``PT1H30M`` / a number.

    Raises ``ValueError`` naming the value when it is not a non-negative duration.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, str):
        seconds = _parse_text(value.strip())
    else:
        raise ValueError(f"not a duration: {value!r}")
    if seconds < 0 or seconds != seconds:
        raise ValueError(f"a duration must be non-negative: {value!r}")
    return seconds


def _parse_text(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    if _COMPOUND.match(text):
        return sum(float(n) * _UNITS[u.lower()] for n, u in _PART.findall(text))
    m = _ISO.match(text)
    if m and text.upper() not in ("P", "PT") and not text.upper().endswith("T"):
        parts = {k: float(v) for k, v in m.groupdict().items() if v}
        return (
            parts.get("w", 0) * 604800
            + parts.get("d", 0) * 86400
            + parts.get("h", 0) * 3600
            + parts.get("m", 0) * 60
            + parts.get("s", 0)
        )
    raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 5m, 2h, 1h30m or ISO 8601 PT2H)")


def format_duration(seconds: float) -> str:
    """The shortest exact text for ``seconds`` that :func:`parse_duration` reads back."""
    if seconds == int(seconds):
        s = int(seconds)
        for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
            if s and s % size == 0:
                return f"{s // size}{unit}"
        return f"{s}s"
    return f"{seconds:g}s"


Duration = Annotated[
    float,
    BeforeValidator(parse_duration, json_schema_input_type=float | str),
    PlainSerializer(format_duration, return_type=str),
]
"""Seconds as a float in Python; accepts and writes human durations in files."""
