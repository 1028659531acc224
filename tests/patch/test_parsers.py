"""Parsers on recorded output: Debian 12 (this machine's own apt), Ubuntu 24.04, Rocky 9 and RHEL 9
(dnf 4), Fedora 41 (dnf 5's table and JSON); the scan read from the managers' sections; versions
ordered by the project's Debian and RPM comparators."""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import cmp_to_key
from pathlib import Path

from sysflow.model.versions import compare_debian, compare_rpm
from sysflow.patch.apt import (
    parse_apt_cache_policy,
    parse_apt_cache_show,
    parse_apt_get_simulate,
    parse_apt_list_upgradable,
    parse_release,
)
from sysflow.patch.dnf import (
    parse_check_update,
    parse_needs_restarting,
    parse_rpm_installed,
    parse_updateinfo_json,
    parse_updateinfo_list,
    split_nevra,
)
from sysflow.patch.records import Classification, Family, HostScan, Severity
from sysflow.patch.scan import SCAN_MARKER, read_scan, sections

DATA = Path(__file__).parent / "data"
AT = datetime(2026, 12, 5, tzinfo=UTC)


def read(name: str) -> str:
    return (DATA / name).read_text()


def test_debian12_apt_list_and_simulate_agree() -> None:
    listed = {c.name: c for c in parse_apt_list_upgradable(read("debian12/apt-list-upgradable.txt"))}
    simulated = {c.name: c for c in parse_apt_get_simulate(read("debian12/apt-get-s-upgrade.txt"))}
    assert len(listed) == 91 and set(listed) == set(simulated)
    assert listed["bash"].version == simulated["bash"].version == "5.2.15-2+b13"
    assert listed["bash"].installed == "5.2.15-2+b8" and listed["bash"].suites == ("oldstable",)
    for c in listed.values():
        assert c.installed is not None and compare_debian(c.version, c.installed) > 0, c
        assert not c.security


def test_debian_security_origin_marks_the_update() -> None:
    found = {c.name: c for c in parse_apt_get_simulate(read("debian12/security-upgrade.txt"))}
    assert found["openssl"].security and found["openssl"].suites == ("stable-security",)
    assert not found["tzdata"].security and found["tzdata"].suites == ("stable", "stable-updates")


def test_debian12_policy() -> None:
    policy = parse_apt_cache_policy(read("debian12/apt-cache-policy.txt"))
    assert set(policy) == {"openssl", "curl", "libssl3", "bash"}
    openssl = policy["openssl"]
    assert openssl.installed == "3.0.19-1~deb12u2" and openssl.candidate == "3.0.20-1~deb12u2"
    assert [v.version for v in openssl.versions] == ["3.0.20-1~deb12u2", "3.0.19-1~deb12u2"]
    assert openssl.versions[0].suites == ("bookworm",) and openssl.versions[1].suites == ()
    assert openssl.versions[0].pin == 500


def test_ubuntu2404_security_pocket_and_epochs() -> None:
    listed = {c.name: c for c in parse_apt_list_upgradable(read("ubuntu2404/apt-list-upgradable.txt"))}
    assert listed["openssl"].security and listed["openssl"].suites == ("noble-updates", "noble-security")
    assert not listed["python3-update-manager"].security
    simulated = {c.name: c for c in parse_apt_get_simulate(read("ubuntu2404/apt-get-s-upgrade.txt"))}
    assert {n for n, c in simulated.items() if c.security} == {"libssl3t64", "openssl"}
    policy = parse_apt_cache_policy(read("ubuntu2404/apt-cache-policy.txt"))
    versions = [v.version for v in policy["python3-update-manager"].versions]
    assert sorted(versions, key=cmp_to_key(compare_debian)) == ["1:24.04.4", "1:24.04.6", "1:24.04.9"]
    assert policy["openssl"].versions[0].suites == ("noble-updates", "noble-security")


def test_show_and_release_fields() -> None:
    show = parse_apt_cache_show(
        "Package: a\nVersion: 1.0\nPriority: optional\nSection: net\n\nPackage: a\nVersion: 2.0\nPriority: important\n"
    )
    assert show[("a", "2.0")]["Priority"] == "important" and show[("a", "1.0")]["Section"] == "net"
    info = parse_release(
        "-----BEGIN PGP SIGNED MESSAGE-----\nOrigin: Debian\nLabel: Debian-Security\nSuite: stable-security\nCodename: bookworm-security\nDate: Sat, 05 Dec 2026 10:00:00 UTC\n"
    )
    assert (info.suite, info.codename, info.label, info.published) == (
        "stable-security", "bookworm-security", "Debian-Security", date(2026, 12, 5),
    )  # fmt: skip
    assert parse_release("Suite: x\nDate: not a date\n").published is None


def test_rocky9_check_update_and_advisories() -> None:
    offered = {o.name: o for o in parse_check_update(read("rocky9/dnf-check-update.txt"))}
    assert set(offered) == {"kernel", "kernel-core", "openssl", "openssl-libs", "tzdata", "vim-minimal"}
    assert offered["openssl"].version == "1:3.0.7-27.el9" and offered["openssl"].repo == "baseos"
    advisories = parse_updateinfo_list(read("rocky9/dnf-updateinfo-list.txt"))
    security = [a for a in advisories if a.classification is Classification.SECURITY]
    assert {a.name for a in security} == {"kernel", "kernel-core", "openssl", "openssl-libs"}
    important = [a.name for a in security if a.severity is Severity.IMPORTANT]
    assert important == ["kernel", "kernel-core"]  # the severity filter
    kinds = {a.name: a.classification for a in advisories}
    assert kinds["tzdata"] is Classification.BUGFIX and kinds["vim-minimal"] is Classification.ENHANCEMENT
    assert advisories[2].advisory == "RLSA-2024:2264" and advisories[2].version == "1:3.0.7-27.el9"
    cves = parse_updateinfo_list(read("rocky9/dnf-updateinfo-list-with-cve.txt"))
    assert [c.cves for c in cves if c.name == "kernel"] == [("CVE-2023-6546",), ("CVE-2023-6931",)]


def test_rhel9_same_format_and_needs_restarting() -> None:
    advisories = parse_updateinfo_list(read("rhel9/dnf-updateinfo-list.txt"))
    assert advisories[0].advisory == "RHSA-2024:2394" and len(advisories) == 6
    assert parse_needs_restarting(read("rhel9/needs-restarting-r.txt"))
    assert not parse_needs_restarting("Reboot should not be necessary.\n")
    assert parse_needs_restarting("", status=1) and not parse_needs_restarting("", status=0)


def test_fedora41_dnf5_table_and_json() -> None:
    table = {a.name: a for a in parse_updateinfo_list(read("fedora41/dnf-updateinfo-list.txt"))}
    assert table["curl"].severity is Severity.IMPORTANT and table["curl"].issued == date(2025, 3, 20)
    assert table["vim-minimal"].version == "2:9.1.1227-1.fc41"
    assert table["python3-incremental"].classification is Classification.OTHER
    js = {a.name: a for a in parse_updateinfo_json(read("fedora41/dnf-updateinfo-list.json"))}
    assert js["curl"].classification is Classification.SECURITY and js["curl"].issued == date(2025, 3, 20)
    assert js["vim-minimal"].issued == date(2025, 3, 23)  # epoch seconds (dnf 5.3 and later)
    assert parse_updateinfo_json("") == []


def test_rpm_order_and_nevra() -> None:
    assert split_nevra("vim-data-2:9.1.1227-1.fc41.noarch") == ("vim-data", "2:9.1.1227-1.fc41", "noarch")
    assert compare_rpm("1:3.0.7-27.el9", "3.0.9-1.el9") > 0  # the epoch wins
    assert compare_rpm("5.14.0-427.16.1.el9_4", "5.14.0-362.24.1.el9_3") > 0
    assert parse_rpm_installed("openssl 1:3.0.7-25.el9\nbash 0:5.1.8-9.el9\n\n") == {
        "openssl": "1:3.0.7-25.el9", "bash": "5.1.8-9.el9",
    }  # fmt: skip


def _redhat_output() -> str:
    return "\n".join([
        SCAN_MARKER, "### family redhat", "### installed",
        "kernel 0:5.14.0-362.24.1.el9_3", "openssl 1:3.0.7-25.el9", "tzdata 0:2024a-1.el9", "bash 0:5.1.8-9.el9",
        "### check-update", read("rocky9/dnf-check-update.txt"),
        "### updateinfo", read("rocky9/dnf-updateinfo-list.txt"),
        "### updateinfo-cve", read("rocky9/dnf-updateinfo-list-with-cve.txt"),
        "### reboot", "required", "### end",
    ])  # fmt: skip


def test_scan_of_a_rocky9_host() -> None:
    scan = read_scan("r1", _redhat_output(), AT, ["bash"])
    assert scan.family is Family.REDHAT and scan.reboot_required
    updates = {u.name: u for u in scan.updates}
    assert set(updates) == {"kernel", "openssl"}  # installed ones with something newer; tzdata is current
    assert updates["kernel"].cves == ("CVE-2023-6546", "CVE-2023-6931")
    assert updates["kernel"].severity is Severity.IMPORTANT and updates["kernel"].advisory == "RLSA-2024:2394"
    assert updates["openssl"].installed == "1:3.0.7-25.el9" and updates["openssl"].origin == "baseos"
    assert scan.installed == {
        "kernel": "5.14.0-362.24.1.el9_3",
        "openssl": "1:3.0.7-25.el9",
        "bash": "5.1.8-9.el9",
    }
    assert HostScan.from_dict(scan.to_dict()) == scan


def test_scan_of_a_debian12_host_from_recordings() -> None:
    text = "\n".join([
        SCAN_MARKER, "### family debian",
        "### upgradable", read("debian12/apt-list-upgradable.txt"),
        "### policy", read("debian12/apt-cache-policy.txt"),
        "### show", "Package: openssl\nVersion: 3.0.20-1~deb12u2\nPriority: optional\nSection: utils\n",
        "### releases", "Suite: oldstable\nCodename: bookworm\nLabel: Debian\nDate: Sat, 15 Nov 2026 09:00:00 UTC\n",
        "### reboot", "### end",
    ])  # fmt: skip
    scan = read_scan("d1", text, AT)
    updates = {u.name: u for u in scan.updates}
    assert len(updates) == 91 and not scan.reboot_required
    assert updates["openssl"].version == "3.0.20-1~deb12u2" and updates["openssl"].section == "utils"
    assert updates["openssl"].published == date(2026, 11, 15)
    assert updates["bash"].origin == "bookworm"  # policy names the codename
    assert updates["appstream"].origin == "oldstable"  # apt list, the suite
    assert scan.installed["openssl"] == "3.0.19-1~deb12u2"


def test_a_failed_scan_is_not_an_empty_one() -> None:
    scan = read_scan("x", "bash: apt-get: command not found\n", AT)
    assert scan.error and not scan.updates
    assert read_scan("x", f"{SCAN_MARKER}\n### family debian\n...", AT).error.startswith(
        "scan output cut short"
    )
    assert sections("### a 1\nx\n### b\ny") == {"a": "1\nx", "b": "y"}
