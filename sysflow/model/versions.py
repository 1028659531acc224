"""Package version ordering: Debian (dpkg) and RPM (rpmvercmp), and picking one by a version's shape.

Debian ordering comes from python-debian (``debian.debian_support.version_compare``), the same
algorithm as ``dpkg --compare-versions``. RPM ordering is a faithful port of rpm's ``rpmvercmp()``
(``rpmio/rpmvercmp.c``, with ``~`` and ``^``) and ``rpmverCmp()`` for epoch:version-release.
Comparators and desired-state checks call :func:`compare_versions`; everything returns -1, 0 or 1.
"""

from __future__ import annotations

import re
from enum import StrEnum

__all__ = [
    "VersionScheme",
    "compare_debian",
    "compare_rpm",
    "compare_versions",
    "detect_scheme",
    "rpmvercmp",
    "split_evr",
]


class VersionScheme(StrEnum):
    """Which ordering a version follows; ``AUTO`` guesses from the version's shape."""

    DEBIAN = "debian"
    RPM = "rpm"
    AUTO = "auto"


_RPM_SHAPE = re.compile(r"\.(el|fc|amzn|mga|module_el|suse|sles|ol)\d|\^")
_DEBIAN_SHAPE = re.compile(r"deb\d|ubuntu|\+b\d|[~+]deb|build\d")


def _sign(n: int) -> int:
    return (n > 0) - (n < 0)


def compare_debian(a: str, b: str) -> int:
    """Order two Debian versions as dpkg does (epochs, ``~``, revisions)."""
    from debian.debian_support import version_compare

    return _sign(int(version_compare(a, b)))


def _is_alnum(c: str) -> bool:
    return c.isascii() and c.isalnum()


def _skip_separators(s: str, i: int) -> int:
    while i < len(s) and not _is_alnum(s[i]) and s[i] not in "~^":
        i += 1
    return i


def _segment_end(s: str, i: int, numeric: bool) -> int:
    test = str.isdigit if numeric else str.isalpha
    while i < len(s) and s[i].isascii() and test(s[i]):
        i += 1
    return i


def _compare_segment(x: str, y: str, numeric: bool) -> int:
    if numeric:
        x, y = x.lstrip("0"), y.lstrip("0")
        if len(x) != len(y):
            return _sign(len(x) - len(y))
    return (x > y) - (x < y)


def _special(one: str, two: str) -> int | None:
    """``~`` sorts before everything, ``^`` after the end but before anything else; None: neither."""
    if one == "~" or two == "~":
        if one != "~":
            return 1
        return -1 if two != "~" else 0
    if one == "^" or two == "^":
        if not one:
            return -1
        if not two:
            return 1
        if one != "^":
            return 1
        return -1 if two != "^" else 0
    return None


def rpmvercmp(a: str, b: str) -> int:
    """rpm's ``rpmvercmp()``: compare two version (or release) strings segment by segment."""
    if a == b:
        return 0
    i = j = 0
    while i < len(a) or j < len(b):
        i, j = _skip_separators(a, i), _skip_separators(b, j)
        special = _special(a[i : i + 1], b[j : j + 1])
        if special is not None:
            if special:
                return special
            i, j = i + 1, j + 1
            continue
        if i >= len(a) or j >= len(b):
            break
        numeric = a[i].isdigit()
        ei, ej = _segment_end(a, i, numeric), _segment_end(b, j, numeric)
        if ej == j:  # segments of different kinds: a number is newer than letters
            return 1 if numeric else -1
        rc = _compare_segment(a[i:ei], b[j:ej], numeric)
        if rc:
            return rc
        i, j = ei, ej
    if i >= len(a) and j >= len(b):
        return 0
    return -1 if i >= len(a) else 1


def split_evr(evr: str) -> tuple[str, str, str | None]:
    """Split ``[epoch:]version[-release]`` into (epoch, version, release); epoch defaults to ``0``."""
    epoch, sep, rest = evr.partition(":")
    if not sep or not epoch.isdigit():
        epoch, rest = "0", evr
    version, dash, release = rest.rpartition("-")
    if not dash:
        return epoch, rest, None
    return epoch, version, release


def compare_rpm(a: str, b: str) -> int:
    """rpm's ``rpmverCmp()``: epoch, then version, then release when both sides have one."""
    e1, v1, r1 = split_evr(a)
    e2, v2, r2 = split_evr(b)
    rc = rpmvercmp(e1, e2) or rpmvercmp(v1, v2)
    if rc == 0 and r1 is not None and r2 is not None:
        rc = rpmvercmp(r1, r2)
    return rc


def detect_scheme(*versions: str) -> VersionScheme:
    """Guess the ordering from the versions' shapes: ``.el9``/``.fc40``/``^`` mean RPM, else Debian."""
    if any(_DEBIAN_SHAPE.search(v) for v in versions):
        return VersionScheme.DEBIAN
    if any(_RPM_SHAPE.search(v) for v in versions):
        return VersionScheme.RPM
    return VersionScheme.DEBIAN


def compare_versions(a: str, b: str, scheme: VersionScheme | str = VersionScheme.AUTO) -> int:
    """Compare two versions under ``scheme`` (``auto`` picks by shape); -1, 0 or 1."""
    chosen = VersionScheme(scheme)
    if chosen is VersionScheme.AUTO:
        chosen = detect_scheme(a, b)
    return compare_rpm(a, b) if chosen is VersionScheme.RPM else compare_debian(a, b)
