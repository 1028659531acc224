"""Drift: majority, golden host, ties, failed probes, and a host against its previous snapshot."""

from __future__ import annotations

from datetime import UTC, datetime

from sysflow.testing import ReplayTransport
from sysflow.verify import parsers as p
from sysflow.verify.drift import Difference, DriftReport, detect_drift, drift_since
from sysflow.verify.probes import Snapshot, capture_many, dpkg_packages, kernel

from .fakes import spec_text

WHEN = datetime(2026, 1, 4, tzinfo=UTC)


async def test_one_host_of_ten_with_another_package_version_is_the_outlier() -> None:
    recorded = spec_text("dpkg_query_debian12.txt")
    odd = recorded.replace("openssl 3.0.19-1~deb12u2", "openssl 3.0.17-1~deb12u1")
    hosts = [f"web{i:02d}" for i in range(10)]
    transport = ReplayTransport({"dpkg-query": recorded}, host_replies={"web07": {"dpkg-query": odd}})
    snaps = await capture_many(transport, hosts, [dpkg_packages(), kernel()])
    report = detect_drift(snaps, probes=["packages"])
    assert report.outliers == ("web07",)
    assert report.differences == (
        Difference("web07", "packages", "openssl", "3.0.17-1~deb12u1", "3.0.19-1~deb12u2"),
    )
    assert report.differences[0].item == "packages[openssl]"
    assert "+3.0.17-1~deb12u1" in report.differences[0].diff
    assert report.reference == "majority"
    assert report.drifted
    assert report.by_host() == {"web07": list(report.differences)}


def _snaps(
    values: dict[str, dict[str, p.Value]], errors: dict[str, dict[str, str]] | None = None
) -> dict[str, Snapshot]:
    errs = errors or {}
    return {h: Snapshot(h, WHEN, v, errs.get(h, {})) for h, v in values.items()}


def test_golden_host_and_absent_keys() -> None:
    snaps = _snaps(
        {
            "gold": {"packages": {"a": "1", "b": "1"}, "kernel": "6.1"},
            "h1": {"packages": {"a": "1", "b": "1"}, "kernel": "6.1"},
            "h2": {"packages": {"a": "2"}, "kernel": "6.1"},
            "h3": {"packages": {"a": "2"}, "kernel": "6.5"},
        }
    )
    report = detect_drift(snaps, golden="gold")
    assert report.reference == "gold"
    assert report.outliers == ("h2", "h3")
    items = {(d.host, d.item): (d.value, d.reference) for d in report.differences}
    assert items == {
        ("h2", "packages[a]"): ("2", "1"),
        ("h2", "packages[b]"): (None, "1"),
        ("h3", "packages[a]"): ("2", "1"),
        ("h3", "packages[b]"): (None, "1"),
        ("h3", "kernel"): ("6.5", "6.1"),
    }
    assert detect_drift(snaps, golden="missing").differences == ()


def test_ties_are_ambiguous_and_failed_probes_unknown() -> None:
    snaps = _snaps(
        {"a": {"kernel": "6.1", "mode": {"x": "644"}}, "b": {"kernel": "6.5", "mode": "oops"}, "c": {}},
        errors={"c": {"kernel": "exit 1"}},
    )
    report = detect_drift(snaps)
    assert report.ambiguous == ("kernel", "mode[x]")
    assert report.outliers == ()
    assert not report.drifted
    assert report.unknown == {"c": ("kernel", "mode")}
    assert DriftReport("majority", ()).outliers == ()


def test_uniform_group_has_no_drift() -> None:
    snaps = _snaps({h: {"kernel": "6.1"} for h in ("a", "b", "c")})
    assert detect_drift(snaps).to_dict() == {
        "reference": "majority",
        "hosts": ["a", "b", "c"],
        "outliers": [],
        "differences": [],
        "ambiguous": [],
        "unknown": {},
    }


def test_host_against_its_previous_snapshot() -> None:
    before = Snapshot(
        "web1", WHEN, {"packages": {"openssl": "3.0.11", "bash": "5.2"}, "kernel": "6.1", "old": 1}
    )
    after = Snapshot(
        "web1", WHEN, {"packages": {"openssl": "3.0.13", "bash": "5.2"}, "kernel": "6.1", "new": 2}
    )
    report = drift_since(before, after)
    assert report.reference == "previous"
    assert report.outliers == ("web1",)
    assert [(d.item, d.reference, d.value) for d in report.differences] == [
        ("packages[openssl]", "3.0.11", "3.0.13")
    ]
    assert report.unknown == {"web1": ("old",), "previous": ("new",)}
    assert not drift_since(before, before, probes=["packages"]).drifted
