"""End to end on this machine through the real sshd (login sfmaint, sudo): a file:// apt repository
built here with dpkg-deb (two packages of this session's own, two versions each, suites
``sftest`` and ``sftest-security``). The scan reports the missing approved version, install puts
exactly that version on, the rejected version is not installed, the report shows the host
compliant afterwards, and ``report --as-of`` answers from the stored scans. Everything installed
(packages, the source list, its package lists) is removed at the end."""

from __future__ import annotations

import gzip
import hashlib
import json
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.cli.test_modules_sshd import connect, sysflow
from tests.fixtures.sshd import SSHD

pytestmark = pytest.mark.ssh

HOST = "h0231"
LISTS = Path("/var/lib/apt/lists")


@dataclass(frozen=True)
class Repo:
    root: Path
    a: str  # security update 1.1-1 approved; 2.0-1 (plain suite) not
    b: str  # 1.1-1 in the security suite but rejected by the baseline
    source: Path


def _deb(where: Path, name: str, version: str) -> Path:
    root = where / "build" / f"{name}-{version}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: all\nPriority: optional\nSection: admin\n"
        "Maintainer: sysflow tests <root@localhost>\nDescription: sysflow patch test\n"
    )
    deb = where / "pool" / f"{name}_{version}_all.deb"
    deb.parent.mkdir(exist_ok=True)
    subprocess.run(
        ["dpkg-deb", "--build", "--root-owner-group", str(root), str(deb)], check=True, capture_output=True
    )
    return deb


def _suite(repo: Path, suite: str, debs: list[Path], label: str) -> None:
    binary = repo / "dists" / suite / "main" / "binary-all"
    binary.mkdir(parents=True)
    scan = subprocess.run(
        ["dpkg-scanpackages", "--multiversion", "pool", "/dev/null"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    wanted = {d.name for d in debs}
    stanzas = [s for s in scan.split("\n\n") if any(f"pool/{w}" in s for w in wanted)]
    packages = ("\n\n".join(stanzas).strip() + "\n").encode()
    (binary / "Packages").write_bytes(packages)
    (binary / "Packages.gz").write_bytes(gzip.compress(packages))
    date = (datetime.now(UTC) - timedelta(days=10)).strftime("%a, %d %b %Y %H:%M:%S UTC")
    files = {"main/binary-all/Packages": packages, "main/binary-all/Packages.gz": gzip.compress(packages)}
    sums = "".join(f" {hashlib.sha256(d).hexdigest()} {len(d)} {p}\n" for p, d in files.items())
    (repo / "dists" / suite / "Release").write_text(
        f"Origin: sysflow\nLabel: {label}\nSuite: {suite}\nCodename: {suite}\nDate: {date}\n"
        f"Architectures: all\nComponents: main\nSHA256:\n{sums}"
    )


def _apt_update(source: Path) -> None:
    subprocess.run(
        ["apt-get", "update", "-q", "-o", f"Dir::Etc::sourcelist={source}", "-o", "Dir::Etc::sourceparts=-",
         "-o", "APT::Get::List-Cleanup=0"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip


def _installed(name: str) -> str:
    query = ["dpkg-query", "-W", "-f=${db:Status-Status} ${Version}", name]
    return subprocess.run(query, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def repo() -> Iterator[Repo]:
    tag = secrets.token_hex(3)
    a, b = f"sysflow-pa-{tag}", f"sysflow-pb-{tag}"
    root = Path(tempfile.mkdtemp(prefix="sysflow-aptrepo-", dir="/tmp"))
    root.chmod(0o755)
    source = Path(f"/etc/apt/sources.list.d/sysflow-patch-{tag}.list")
    try:
        debs = {
            (n, v): _deb(root, n, v)
            for n in (a, b)
            for v in ("1.0-1", "1.1-1", "2.0-1")
            if not (n == b and v == "2.0-1")
        }
        _suite(root, "sftest", [debs[(a, "1.0-1")], debs[(a, "2.0-1")], debs[(b, "1.0-1")]], "sysflow")
        _suite(root, "sftest-security", [debs[(a, "1.1-1")], debs[(b, "1.1-1")]], "sysflow-Security")
        for p in root.rglob("*"):
            p.chmod(0o755 if p.is_dir() else 0o644)
        source.write_text(
            f"deb [trusted=yes] file:{root} sftest main\ndeb [trusted=yes] file:{root} sftest-security main\n"
        )
        _apt_update(source)
        subprocess.run(
            ["dpkg", "-i", str(debs[(a, "1.0-1")]), str(debs[(b, "1.0-1")])], check=True, capture_output=True
        )
        yield Repo(root, a, b, source)
    finally:
        subprocess.run(["dpkg", "-P", a, b], capture_output=True, timeout=120)
        source.unlink(missing_ok=True)
        for f in LISTS.glob(f"*{root.name.replace('_', '%5f')}*"):  # apt escapes _ in list names
            f.unlink()
        shutil.rmtree(root)


def test_scan_install_report_on_a_local_repository(sshd: SSHD, tmp_path: Path, repo: Repo) -> None:
    baseline = tmp_path / "baseline.yaml"
    baseline.write_text(
        "name: security-after-7-days\nfamily: debian\nrules:\n  - classification: [security]\n"
        f"    approve_after_days: 7\nrejected: [{repo.b}=1.1-1]\nreboot: never\n"
    )
    opts = [
        *connect(sshd, tmp_path, [HOST]),
        "--baseline",
        str(baseline),
        "--patch-store",
        str(tmp_path / "p.db"),
    ]

    scanned = sysflow("patch", "scan", HOST, *opts, "--format", "json")
    assert scanned.returncode == 1, scanned.stdout + scanned.stderr  # not compliant yet
    host = json.loads(scanned.stdout)["hosts"][0]
    assert host["state"] == "non_compliant"
    missing = {u["name"]: u for u in host["missing_approved"]}
    assert missing[repo.a]["version"] == "1.1-1" and missing[repo.a]["classification"] == "security"
    assert missing[repo.a]["installed"] == "1.0-1" and repo.b not in missing
    not_approved = {u["name"]: u["version"] for u in host["missing_not_approved"]}
    assert not_approved[repo.b] == "1.1-1"  # in the security suite, but rejected
    assert _installed(repo.a) == "installed 1.0-1"  # a scan changes nothing

    installed = sysflow("patch", "install", HOST, *opts, "--format", "json")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert _installed(repo.a) == "installed 1.1-1"  # the approved version, not the newest 2.0-1
    assert _installed(repo.b) == "installed 1.0-1"  # the rejected version was not installed
    after = json.loads(installed.stdout)
    assert after["summary"]["compliant"] == 1 and after["hosts"][0]["state"] == "compliant"

    today = datetime.now(UTC).date()
    report = sysflow("patch", "report", "--baseline", str(baseline), "--patch-store", str(tmp_path / "p.db"),
                     "--as-of", today.isoformat())  # fmt: skip
    assert report.returncode == 0, report.stderr
    assert "compliant: 1; non-compliant: 0" in report.stdout
    yesterday = sysflow("patch", "report", "--baseline", str(baseline), "--patch-store", str(tmp_path / "p.db"),
                        "--as-of", (today - timedelta(days=1)).isoformat())  # fmt: skip
    assert "hosts: 0" in yesterday.stdout  # no scan was known then
