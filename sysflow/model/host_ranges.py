"""Host names in inventory files: Ansible's host ranges (``web[01:20]``) and ``host:port``.

Ranges keep the zero padding (``web[01:20]``), take letters (``db-[a:f]``) and strides
(``[1:10:2]``), several in one name. Where Ansible expands a descending range (``web[05:01]``) to
nothing, :func:`expand_host_range` refuses it: a silently dropped host is worse than a loud error.
"""

from __future__ import annotations

import re
import string

__all__ = ["MAX_RANGE_HOSTS", "RangeError", "expand_host_range", "split_port"]

_BRACKETED = re.compile(r"^\[([0-9A-Fa-f:.]+(?:%\w+)?)\](?::(\d+))?$")
_RANGES = re.compile(r"\[[^\]]*\]")
_DIGITS = re.compile(r"[0-9]+")


MAX_RANGE_HOSTS = 100_000  # hosts one inventory line may expand to (a typo must not eat the machine)


class RangeError(ValueError):
    """A host range that cannot be expanded."""


def expand_host_range(pattern: str) -> list[str]:
    """Expand Ansible host ranges: ``web[01:03]`` -> web01, web02, web03; ``db-[a:c]``; ``[1:9:2]``.

    Raises :class:`RangeError` for malformed or descending ranges, non-positive strides and names
    that would expand to more than :data:`MAX_RANGE_HOSTS` hosts (counted before expanding).
    """
    if "[" not in pattern:
        return [pattern]
    total = _count(pattern)
    if total > MAX_RANGE_HOSTS:
        raise RangeError(f"{pattern!r} expands to {total:,} hosts, more than {MAX_RANGE_HOSTS:,}")
    return _expand(pattern)


def _count(pattern: str) -> int:
    """How many names ``pattern`` expands to (validating each range on the way)."""
    total = 1
    for body in _RANGES.findall(pattern):
        total *= _range_size(body[1:-1], pattern)
    return total


def _range_size(body: str, pattern: str) -> int:
    bounds = body.split(":")
    if len(bounds) not in (2, 3) or not bounds[1]:
        return 1  # malformed: _range_items names the problem when expanding
    beg, end = bounds[0] or "0", bounds[1]
    step = _range_step(bounds[2] if len(bounds) == 3 else "1", body, pattern)
    if _DIGITS.fullmatch(beg) and _DIGITS.fullmatch(end):
        return max(0, (int(end) - int(beg)) // step + 1)
    return 1  # letters: at most 52


def _expand(pattern: str) -> list[str]:
    if "[" not in pattern:
        return [pattern]
    head, sep, rest = pattern.partition("[")
    body, sep, tail = rest.partition("]")
    if not sep:
        raise RangeError(f"unclosed host range in {pattern!r}")
    return [name for item in _range_items(body, pattern) for name in _expand(head + item + tail)]


def _range_items(body: str, pattern: str) -> list[str]:
    bounds = body.split(":")
    if len(bounds) not in (2, 3):
        raise RangeError(f"host range [{body}] in {pattern!r} must be begin:end or begin:end:step")
    beg, end = bounds[0] or "0", bounds[1]
    step = _range_step(bounds[2] if len(bounds) == 3 else "1", body, pattern)
    if not end:
        raise RangeError(f"host range [{body}] in {pattern!r} must specify an end value")
    if beg in string.ascii_letters and end in string.ascii_letters and len(beg) == len(end) == 1:
        return _letter_range(beg, end, step, body, pattern)
    return _number_range(beg, end, step, body, pattern)


def _range_step(text: str, body: str, pattern: str) -> int:
    if not _DIGITS.fullmatch(text) or int(text) < 1:
        raise RangeError(f"host range [{body}] in {pattern!r} has a bad step {text!r} (a positive integer)")
    return int(text)


def _letter_range(beg: str, end: str, step: int, body: str, pattern: str) -> list[str]:
    i_beg, i_end = string.ascii_letters.index(beg), string.ascii_letters.index(end)
    if i_beg > i_end:
        raise RangeError(f"host range [{body}] in {pattern!r} must have begin <= end")
    return list(string.ascii_letters[i_beg : i_end + 1 : step])


def _number_range(beg: str, end: str, step: int, body: str, pattern: str) -> list[str]:
    if not (_DIGITS.fullmatch(beg) and _DIGITS.fullmatch(end)):
        raise RangeError(f"host range [{body}] in {pattern!r} must be numbers or single letters")
    width = len(beg) if beg[0] == "0" and len(beg) > 1 else 0
    if width and width != len(end):
        raise RangeError(f"host range [{body}] in {pattern!r} must have begin and end of equal width")
    if int(beg) > int(end):
        raise RangeError(f"host range [{body}] in {pattern!r} must have begin <= end")
    return [str(i).zfill(width) for i in range(int(beg), int(end) + 1, step)]


def split_port(pattern: str) -> tuple[str, int | None]:
    """Split ``host:port`` (or ``[v6addr]:port``) as Ansible's ``parse_address`` would.

    Colons inside ``[...]`` ranges do not count; an address with two or more colons is IPv6 and
    has no port; a non-numeric suffix is left as part of the name.
    """
    m = _BRACKETED.match(pattern)
    if m and m.group(1).count(":") >= 2:
        return m.group(1), int(m.group(2)) if m.group(2) else None
    outside = _RANGES.sub("", pattern)
    if outside.count(":") != 1:
        return pattern, None
    head, _, port = pattern.rpartition(":")
    return (head, int(port)) if _DIGITS.fullmatch(port) and head else (pattern, None)
