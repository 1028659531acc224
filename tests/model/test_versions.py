"""Version ordering against known comparison tables (dpkg's and rpm's own test cases)."""

from __future__ import annotations

import pytest

from sysflow.model.versions import (
    VersionScheme,
    compare_debian,
    compare_rpm,
    compare_versions,
    detect_scheme,
    rpmvercmp,
    split_evr,
)

# rpm's tests/rpmvercmp.at (RPMVERCMP(a, b, result)), including ~ and ^.
RPMVERCMP_TABLE = [
    ("1.0", "1.0", 0),
    ("1.0", "2.0", -1),
    ("2.0", "1.0", 1),
    ("2.0.1", "2.0.1", 0),
    ("2.0", "2.0.1", -1),
    ("2.0.1", "2.0", 1),
    ("2.0.1a", "2.0.1a", 0),
    ("2.0.1a", "2.0.1", 1),
    ("2.0.1", "2.0.1a", -1),
    ("5.5p1", "5.5p1", 0),
    ("5.5p1", "5.5p2", -1),
    ("5.5p2", "5.5p1", 1),
    ("5.5p10", "5.5p10", 0),
    ("5.5p1", "5.5p10", -1),
    ("5.5p10", "5.5p1", 1),
    ("10xyz", "10.1xyz", -1),
    ("10.1xyz", "10xyz", 1),
    ("xyz10", "xyz10", 0),
    ("xyz10", "xyz10.1", -1),
    ("xyz10.1", "xyz10", 1),
    ("xyz.4", "xyz.4", 0),
    ("xyz.4", "8", -1),
    ("8", "xyz.4", 1),
    ("xyz.4", "2", -1),
    ("2", "xyz.4", 1),
    ("5.5p2", "5.6p1", -1),
    ("5.6p1", "5.5p2", 1),
    ("5.6p1", "6.5p1", -1),
    ("6.5p1", "5.6p1", 1),
    ("6.0.rc1", "6.0", 1),
    ("6.0", "6.0.rc1", -1),
    ("10b2", "10a1", 1),
    ("10a2", "10b2", -1),
    ("1.0aa", "1.0aa", 0),
    ("1.0a", "1.0aa", -1),
    ("1.0aa", "1.0a", 1),
    ("10.0001", "10.0001", 0),
    ("10.0001", "10.1", 0),
    ("10.1", "10.0001", 0),
    ("10.0001", "10.0039", -1),
    ("10.0039", "10.0001", 1),
    ("4.999.9", "5.0", -1),
    ("5.0", "4.999.9", 1),
    ("20101121", "20101121", 0),
    ("20101121", "20101122", -1),
    ("20101122", "20101121", 1),
    ("2_0", "2_0", 0),
    ("2.0", "2_0", 0),
    ("2_0", "2.0", 0),
    ("a", "a", 0),
    ("a+", "a+", 0),
    ("a+", "a_", 0),
    ("a_", "a+", 0),
    ("+a", "+a", 0),
    ("+a", "_a", 0),
    ("_a", "+a", 0),
    ("+_", "+_", 0),
    ("_+", "+_", 0),
    ("_+", "_", 0),
    ("+", "_", 0),
    ("_", "+", 0),
    ("1.0~rc1", "1.0~rc1", 0),
    ("1.0~rc1", "1.0", -1),
    ("1.0", "1.0~rc1", 1),
    ("1.0~rc1", "1.0~rc2", -1),
    ("1.0~rc2", "1.0~rc1", 1),
    ("1.0~rc1~git123", "1.0~rc1~git123", 0),
    ("1.0~rc1~git123", "1.0~rc1", -1),
    ("1.0~rc1", "1.0~rc1~git123", 1),
    ("1.0^", "1.0^", 0),
    ("1.0^", "1.0", 1),
    ("1.0", "1.0^", -1),
    ("1.0^git1", "1.0^git1", 0),
    ("1.0^git1", "1.0", 1),
    ("1.0", "1.0^git1", -1),
    ("1.0^git1", "1.0^git2", -1),
    ("1.0^git2", "1.0^git1", 1),
    ("1.0^git1", "1.01", -1),
    ("1.01", "1.0^git1", 1),
    ("1.0^20160101", "1.0^20160101", 0),
    ("1.0^20160101", "1.0.1", -1),
    ("1.0.1", "1.0^20160101", 1),
    ("1.0^20160101^git1", "1.0^20160101^git1", 0),
    ("1.0^20160102", "1.0^20160101^git1", 1),
    ("1.0^20160101^git1", "1.0^20160102", -1),
    ("1.0~rc1^git1", "1.0~rc1^git1", 0),
    ("1.0~rc1^git1", "1.0~rc1", 1),
    ("1.0~rc1", "1.0~rc1^git1", -1),
    ("1.0^git1~pre", "1.0^git1~pre", 0),
    ("1.0^git1", "1.0^git1~pre", 1),
    ("1.0^git1~pre", "1.0^git1", -1),
]

# dpkg semantics (Debian Policy 5.6.12 and dpkg's t/dpkg_version.t): epochs, ~, revisions, letters
# before non-letters.
DEBIAN_TABLE = [
    ("1.0", "1.0", 0),
    ("1.0", "1.0-0", 0),
    ("1:1.0", "2.0", 1),
    ("0:1.0", "1.0", 0),
    ("1.0~rc1", "1.0", -1),
    ("1.0~~", "1.0~~a", -1),
    ("1.0~~a", "1.0~", -1),
    ("1.0~", "1.0", -1),
    ("1.0", "1.0a", -1),
    ("1.0a", "1.0+", -1),
    ("1.0-1", "1.0-2", -1),
    ("1.0-1", "1.0.1-1", -1),
    ("1.0-10", "1.0-9", 1),
    ("3.0.11-1~deb12u2", "3.0.11-1", -1),
    ("3.0.11-1~deb12u2", "3.0.13-1~deb12u1", -1),
    ("2.36-9+deb12u13", "2.36-9+deb12u14", -1),
    ("1:9.2p1-2+deb12u10", "9.9p1-1", 1),
    ("2025b-0+deb12u2", "2025a-0+deb12u1", 1),
    ("5.2.15-2+b8", "5.2.15-2+b10", -1),
    ("1.2.3-1ubuntu0.1", "1.2.3-1", 1),
]


@pytest.mark.parametrize(("a", "b", "expected"), RPMVERCMP_TABLE)
def test_rpmvercmp_table(a: str, b: str, expected: int) -> None:
    assert rpmvercmp(a, b) == expected


@pytest.mark.parametrize(("a", "b", "expected"), DEBIAN_TABLE)
def test_debian_table(a: str, b: str, expected: int) -> None:
    assert compare_debian(a, b) == expected
    assert compare_debian(b, a) == -expected


@pytest.mark.parametrize(
    ("evr", "parts"),
    [
        ("1:3.0.7-27.el9", ("1", "3.0.7", "27.el9")),
        ("3.0.7-27.el9", ("0", "3.0.7", "27.el9")),
        ("3.0.7", ("0", "3.0.7", None)),
        ("x:1.0-1", ("0", "x:1.0", "1")),
    ],
)
def test_split_evr(evr: str, parts: tuple[str, str, str | None]) -> None:
    assert split_evr(evr) == parts


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("1:1.0-1.el9", "2.0-1.el9", 1),  # epoch wins
        ("3.0.7-27.el9", "3.0.7-28.el9", -1),  # release decides
        ("3.0.7-27.el9", "3.0.7", 0),  # release compared only when both have one
        ("5.14.0-427.13.1.el9_4", "5.14.0-427.16.1.el9_4", -1),
        ("1.20.1-14.el9_2.1", "1.20.1-14.el9_2", 1),
        ("0:2.0-1", "2.0-1", 0),
    ],
)
def test_compare_rpm_evr(a: str, b: str, expected: int) -> None:
    assert compare_rpm(a, b) == expected


@pytest.mark.parametrize(
    ("versions", "scheme"),
    [
        (("3.0.7-27.el9",), VersionScheme.RPM),
        (("40-1.fc40",), VersionScheme.RPM),
        (("1.0^git1",), VersionScheme.RPM),
        (("3.0.11-1~deb12u2",), VersionScheme.DEBIAN),
        (("1.2-1ubuntu1", "1.2-1.el9"), VersionScheme.DEBIAN),
        (("1.2.3",), VersionScheme.DEBIAN),
    ],
)
def test_detect_scheme(versions: tuple[str, ...], scheme: VersionScheme) -> None:
    assert detect_scheme(*versions) is scheme


def test_compare_versions_by_scheme() -> None:
    # "1.0a" vs "1.0+": Debian puts letters first; rpm ignores "+" and so "1.0a" is newer.
    assert compare_versions("1.0a", "1.0+", "debian") == -1
    assert compare_versions("1.0a", "1.0+", VersionScheme.RPM) == 1
    assert compare_versions("3.0.7-27.el9", "3.0.7-28.el9") == -1
    assert compare_versions("3.0.11-1~deb12u2", "3.0.11-1", "auto") == -1
