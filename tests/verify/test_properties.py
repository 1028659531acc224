"""Properties of the version orderings (hypothesis): antisymmetry, reflexivity, transitivity."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sysflow.model.versions import compare_debian, compare_rpm, rpmvercmp

_RPM_CHARS = st.sampled_from(list("0123456789abcz.~^_+-"))
_rpm_versions = st.text(_RPM_CHARS, min_size=0, max_size=10)
_deb_versions = st.tuples(
    st.sampled_from(["", "1:", "2:"]),
    st.text("0123456789", min_size=1, max_size=2),
    st.text("0123456789abz.+~", max_size=5),
    st.sampled_from(["", "-1", "-1~deb12u1", "-2+b1", "-0ubuntu1", "-1.el9"]),
).map("".join)


@settings(max_examples=150, deadline=None)
@given(_rpm_versions, _rpm_versions)
def test_rpmvercmp_is_antisymmetric(a: str, b: str) -> None:
    assert rpmvercmp(a, b) == -rpmvercmp(b, a)
    assert rpmvercmp(a, a) == 0


@settings(max_examples=150, deadline=None)
@given(_rpm_versions, _rpm_versions, _rpm_versions)
def test_compare_rpm_is_transitive(a: str, b: str, c: str) -> None:
    ordered = sorted([a, b, c], key=_rpm_key)
    assert compare_rpm(ordered[0], ordered[1]) <= 0
    assert compare_rpm(ordered[1], ordered[2]) <= 0
    assert compare_rpm(ordered[0], ordered[2]) <= 0


@settings(max_examples=100, deadline=None)
@given(_deb_versions, _deb_versions)
def test_debian_is_antisymmetric(a: str, b: str) -> None:
    assert compare_debian(a, b) == -compare_debian(b, a)


def _rpm_key(v: str) -> object:
    import functools

    return functools.cmp_to_key(compare_rpm)(v)
