"""dnf 4's ``dnf updateinfo info`` on RHEL 9 (recorded): publication dates, types, severities and
CVE ids per advisory; the scan joins them to ``updateinfo list`` rows so approve-after-days has a
date on dnf 4 and the CVEs reach the report and ``sysflow patch report --cve``. The scan script
itself runs under sh with ``dnf``/``rpm`` replaying the recorded RHEL 9 outputs (this machine
has neither)."""

from __future__ import annotations

import shutil
import stat
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from sysflow.cli import app
from sysflow.patch.baseline import Baseline, BaselineRule, PatchState, evaluate
from sysflow.patch.dnf import parse_updateinfo_info
from sysflow.patch.records import Classification, Family, HostScan, Severity
from sysflow.patch.report import compliance_report
from sysflow.patch.scan import SCAN_MARKER, read_scan, scan_script
from sysflow.patch.store import ScanStore

DATA = Path(__file__).parent / "data"
ISSUED = date(2024, 4, 30)  # RHSA-2024:2394 and RHSA-2024:2264 ("Updated: 2024-04-30 ...")
INSTALLED = {"kernel": "5.14.0-362.24.1.el9_3", "openssl": "1:3.0.7-25.el9", "tzdata": "2023c-1.el9"}


def read(name: str) -> str:
    return (DATA / name).read_text()


def test_rhel9_updateinfo_info() -> None:
    info = parse_updateinfo_info(read("rhel9/dnf-updateinfo-info.txt"))
    assert list(info) == ["RHSA-2024:2394", "RHSA-2024:2264", "RHBA-2024:2441", "RHEA-2024:2300"]
    kernel = info["RHSA-2024:2394"]
    assert kernel.title == "Important: kernel security, bug fix, and enhancement update"
    assert (kernel.classification, kernel.severity, kernel.issued) == (
        Classification.SECURITY, Severity.IMPORTANT, ISSUED,
    )  # fmt: skip
    assert kernel.cves == ("CVE-2023-3567", "CVE-2023-6546", "CVE-2023-6931")  # not the Bugs lines' text
    assert info["RHSA-2024:2264"].cves == ("CVE-2023-5678", "CVE-2024-0727")
    assert info["RHBA-2024:2441"].classification is Classification.BUGFIX
    assert info["RHBA-2024:2441"].issued == date(2024, 5, 1) and not info["RHBA-2024:2441"].cves
    assert info["RHEA-2024:2300"].severity is Severity.NONE


def test_yum_style_issued_wins_over_updated() -> None:
    text = (
        "===============================================================================\n"
        "  Important: bind security update\n"
        "===============================================================================\n"
        "  Update ID : RHSA-2024:1782\n    Release : 0\n       Type : security\n     Status : final\n"
        "     Issued : 2024-04-10 08:00:00\n    Updated : 2024-04-12 09:30:00\n"
        "       CVEs : CVE-2023-4408\n            : CVE-2023-50387\nDescription : BIND: a DNS server.\n"
        "   Severity : Important\n"
    )
    (bind,) = parse_updateinfo_info(text).values()
    assert bind.issued == date(2024, 4, 10) and bind.cves == ("CVE-2023-4408", "CVE-2023-50387")
    assert parse_updateinfo_info("") == {} and parse_updateinfo_info("no advisories\n") == {}


def rhel9_output(info: str) -> str:
    installed = [f"{n} 0:{v}" if ":" not in v else f"{n} {v}" for n, v in INSTALLED.items()]
    return "\n".join([
        SCAN_MARKER, "### family redhat", "### installed", *installed,
        "### check-update", read("rhel9/dnf-check-update.txt"),
        "### updateinfo", read("rhel9/dnf-updateinfo-list.txt"),
        "### updateinfo-info", info, "### updateinfo-cve", "### reboot", "### end",
    ])  # fmt: skip


SEC_7D = Baseline(
    name="rhel-sec-7d",
    family=Family.REDHAT,
    rules=[BaselineRule(classification=[Classification.SECURITY], approve_after_days=7)],
)


def test_dnf4_dates_drive_approve_after_days() -> None:
    scan = read_scan(
        "r9", rhel9_output(read("rhel9/dnf-updateinfo-info.txt")), datetime(2024, 5, 3, tzinfo=UTC)
    )
    updates = {u.name: u for u in scan.updates}
    assert updates["kernel"].published == ISSUED and updates["openssl"].published == ISSUED
    assert updates["tzdata"].published == date(2024, 5, 1)
    assert updates["kernel"].cves == ("CVE-2023-3567", "CVE-2023-6546", "CVE-2023-6931")
    three = evaluate(SEC_7D, scan, ISSUED + timedelta(days=3))
    assert not three.missing_approved and three.state is PatchState.COMPLIANT
    assert {"kernel", "openssl"} <= {u.name for u in three.missing_not_approved}
    ten = evaluate(SEC_7D, scan, ISSUED + timedelta(days=10))
    assert ten.pins == ["kernel=5.14.0-427.16.1.el9_4", "openssl=1:3.0.7-27.el9"]
    assert [u.name for u in ten.missing_not_approved] == ["tzdata"]  # a bugfix: no rule approves it
    undated = read_scan("r9", rhel9_output(""), datetime(2024, 5, 3, tzinfo=UTC))
    assert not evaluate(SEC_7D, undated, ISSUED + timedelta(days=10)).missing_approved  # no date: not yet


def test_cves_reach_the_report_and_patch_report_cve(tmp_path: Path) -> None:
    scan = read_scan(
        "r9", rhel9_output(read("rhel9/dnf-updateinfo-info.txt")), datetime(2024, 5, 3, tzinfo=UTC)
    )
    patched = HostScan(
        "r8", Family.REDHAT, datetime(2024, 5, 3, tzinfo=UTC), {"kernel": "5.14.0-427.16.1.el9_4"}
    )
    store = tmp_path / "patch.db"
    ScanStore(store).add([scan, patched], "run1")
    report = compliance_report(SEC_7D, [scan, patched], date(2024, 5, 13))
    assert report.lacking("CVE-2024-0727") == ["r9"] and report.lacking("CVE-2023-6931") == ["r9"]
    (baseline := tmp_path / "b.yaml").write_text(
        "name: rhel-sec-7d\nfamily: redhat\nrules:\n  - {classification: [security], approve_after_days: 7}\n"
    )
    args = ["patch", "report", "-B", str(baseline), "--patch-store", str(store), "--as-of", "2024-05-13"]
    out = CliRunner().invoke(app, [*args, "--cve", "CVE-2024-0727"])
    assert out.exit_code == 0, out.output
    assert "CVE-2024-0727: 1 host(s) lacked a fix on 2024-05-13: r9" in out.output
    assert "| r9 | non_compliant | kernel=5.14.0-427.16.1.el9_4, openssl=1:3.0.7-27.el9 | - |" in out.output
    none = CliRunner().invoke(app, [*args, "--cve", "CVE-2099-0001"])
    assert "CVE-2099-0001: 0 host(s) lacked a fix on 2024-05-13: -" in none.output


def _replayer(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_scan_script_on_a_dnf4_host(tmp_path: Path) -> None:
    """The real script under sh, ``dnf`` and ``rpm`` answering with RHEL 9's recorded outputs
    (dnf 4 refuses ``--json``); the script's compact ``updateinfo info`` keeps what the scan
    reads, and asks rpm only about the offered and listed packages."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "awk", "sort", "grep", "sed", "cat"):
        found = shutil.which(tool)
        assert found is not None
        (bin_dir / tool).symlink_to(found)
    rpm_rows = "\n".join(f"{n}) echo '{n} {v if ':' in v else '0:' + v}' ;;" for n, v in INSTALLED.items())
    _replayer(bin_dir, "rpm", f'shift 3\nfor n; do echo "$n" >> {tmp_path}/asked\ncase $n in\n{rpm_rows}\n'
              '*) echo "package $n is not installed" ;;\nesac\ndone\n')  # fmt: skip
    _replayer(
        bin_dir, "dnf",
        f'case "$*" in\n"-q check-update") cat {DATA}/rhel9/dnf-check-update.txt; exit 100 ;;\n'
        '*--json*) echo "No such command: --json" >&2; exit 2 ;;\n*--with-cve*) exit 0 ;;\n'
        f'"-q updateinfo list") cat {DATA}/rhel9/dnf-updateinfo-list.txt ;;\n'
        f'"-q updateinfo info") cat {DATA}/rhel9/dnf-updateinfo-info.txt ;;\nesac\n',
    )  # fmt: skip
    _replayer(bin_dir, "needs-restarting", "exit 1\n")
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path)}
    out = subprocess.run(
        [str(bin_dir / "sh"), "-c", scan_script(["telnet"])],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert "Description" not in out.stdout and "Bugs" not in out.stdout  # compact: only what is read
    asked = set((tmp_path / "asked").read_text().split())
    assert asked == {"kernel", "kernel-core", "openssl", "openssl-libs", "tzdata", "vim-minimal", "telnet"}
    scan = read_scan("r9", out.stdout, datetime(2024, 5, 3, tzinfo=UTC), ["telnet"])
    assert not scan.error and scan.reboot_required and "telnet" not in scan.installed
    updates = {u.name: u for u in scan.updates}
    assert updates["openssl"].published == ISSUED and updates["openssl"].cves == (
        "CVE-2023-5678",
        "CVE-2024-0727",
    )
    assert evaluate(SEC_7D, scan, ISSUED + timedelta(days=10)).pins == [
        "kernel=5.14.0-427.16.1.el9_4", "openssl=1:3.0.7-27.el9",
    ]  # fmt: skip
