"""Ansible's ``serial``, exactly: which values a rolling rollout accepts and the batches they cut.

A spec is what an Ansible play's ``serial`` may be: one value (``5``, ``"10%"``) or a list of them
(``[1, "10%", "50%"]``, the last value repeating). Each value means what ansible-core makes of it
(``pct_to_int`` and ``PlaybookExecutor._get_serialized_batches``):

* a whole number is a batch size; ``0`` or a negative number puts all the remaining hosts in one
  batch (so ``-1`` alone is one batch of everything, and ``[1, 0]`` is one host, then the rest);
* ``"N%"`` is N percent of *all* the targeted hosts, computed as ``int((N / 100.0) * hosts)``: the
  same float product, truncated, so ``"29%"`` of 100 hosts is 28 as it is in Ansible; a result of 0
  becomes 1 (``"0%"`` and ``"1%"`` of 10 hosts are batches of 1), one above 100% takes every host,
  and a negative one that truncates below 0 takes all the remaining hosts;
* strings are read the way Ansible reads them (``"5"`` is 5, ``" 10%"`` is ``"10%"``) and kept in a
  canonical form: an ``int`` or ``"N%"``;
* an empty list is one batch of all the hosts.

What Ansible fails on when it reaches it sysflow refuses at validation (``null``, non-numeric
strings, fractional percentages like ``"12.5%"``), and so, deliberately, are Jinja templates (a
workflow has no play variables to fill them in; Ansible would render them), booleans (Ansible reads
``true`` as 1 and ``false`` as every host) and fractional numbers (Ansible silently truncates ``2.5``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

__all__ = ["SerialValue", "serial_batch_size", "serial_batches", "serial_value"]

SerialValue = int | str
"""One canonical batch size: a whole number (any sign) or a percentage ``"N%"`` (N whole, any sign)."""

_H = TypeVar("_H")
_HINT = "give a count like 5 (0 or -1: all remaining hosts) or a percentage like '10%'"


def serial_value(value: Any) -> SerialValue:
    """One batch size as Ansible reads it, canonical; ``ValueError`` for what sysflow refuses."""
    if isinstance(value, bool):
        raise ValueError(f"not a serial batch size: {value!r} ({_HINT}; booleans are refused)")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise ValueError(f"not a serial batch size: {value!r} ({_HINT}; Ansible would truncate a fraction)")
    if isinstance(value, str):
        percent = value.endswith("%")
        try:  # Ansible: int(value.replace("%", "")) for a percentage, else int(value)
            number = int(value.replace("%", "") if percent else value)
        except ValueError:
            raise ValueError(f"not a serial batch size: {value!r} ({_HINT})") from None
        return f"{number}%" if percent else number
    raise ValueError(f"not a serial batch size: {value!r} ({_HINT})")


def serial_batch_size(value: SerialValue, total: int) -> int:
    """Ansible's ``pct_to_int(value, total)``: hosts in the batch; 0 or less means all remaining."""
    if isinstance(value, int):
        return value
    # Clamping changes no result Ansible computes (at 100% or more every host fits one batch; at
    # -100% or less the product is below -1 whenever there are hosts) and avoids float overflow.
    percent = max(-100, min(100, int(value[:-1])))
    return int((percent / 100.0) * total) or 1


def serial_batches(hosts: Sequence[_H], serial: Sequence[SerialValue]) -> list[list[_H]]:
    """``hosts`` cut into batches like ``_get_serialized_batches``: the last size repeats."""
    sizes = list(serial) or [-1]
    total = len(hosts)
    batches: list[list[_H]] = []
    start = 0
    while start < total:
        size = serial_batch_size(sizes[min(len(batches), len(sizes) - 1)], total)
        if size <= 0:
            batches.append(list(hosts[start:]))
            break
        batches.append(list(hosts[start : start + size]))
        start += size
    return batches
