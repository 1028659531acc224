"""Every workflow of the library, written by ``sysflow init`` and run end to end through
``python -m sysflow run`` on the real test sshd (the non-root login, sudo where a task needs root),
with assertions on the hosts' files.

The workflows run as shipped; only their variables (the inventory) point at harmless stand-ins where
loopback cannot give the real thing: a package manager that records its arguments, a reboot that
changes a boot id file and ends the SSH session, a load balancer script that logs, a reload script.
Two things a variable cannot reach are replaced in the workflow text, and said where: the reboot
module's ``reboot_command``/``boot_id_path`` (the protocol runs them as written) and, for the failing
deploy, the health check's retries (to fail fast). Nothing of sysflow itself is faked."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_modules_sshd import SYSFLOW, logs, sysflow
from tests.fixtures.sshd import SSHD

pytestmark = pytest.mark.ssh

REBOOT_LINES = (
    "      reboot_command: systemctl reboot || shutdown -r now\n"
    "      boot_id_path: /proc/sys/kernel/random/boot_id\n"
)

# A scripted reboot (root only): a new boot id in 1 s, the volatile reboot-required flags gone (as
# /run is after a boot), and this SSH login's session ends now (its own sshd process, nothing else).
REBOOT_SCRIPT = """\
#!/bin/sh
[ "$(id -u)" = 0 ] || {{ echo "reboot: must be root (use become)" >&2; exit 1; }}
dir={dir}
setsid sh -c "sleep 1; rm -f $dir/*/reboot-required; cat /proc/sys/kernel/random/uuid > $dir/boot_id.new && mv $dir/boot_id.new $dir/boot_id && cat $dir/boot_id >> $dir/boots.log" \\
  </dev/null >/dev/null 2>&1 &
p=$$
while [ "$p" -gt 1 ]; do
  case "$(cat /proc/$p/comm)" in sshd|sshd-session) kill "$p"; exit 0;; esac
  p=$(awk '/^PPid:/ {{print $2}}' /proc/$p/status)
done
exit 1
"""


@pytest.fixture
def hosts_dir() -> Iterator[Path]:
    """Root's directory standing in for the hosts' disks (the login reads it, sudo writes it)."""
    path = Path(tempfile.mkdtemp(prefix="sysflow-library-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def init(name: str, where: Path) -> str:
    """``sysflow init NAME DIR``: the workflow's text as written."""
    done = sysflow("init", name, str(where))
    assert done.returncode == 0, done.stdout + done.stderr
    return (where / f"{name}.yaml").read_text()


def script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def run(
    sshd: SSHD,
    tmp: Path,
    workflow: str,
    groups: dict[str, list[str]],
    host_vars: dict[str, dict[str, str]],
    **all_vars: str,
) -> subprocess.CompletedProcess[str]:
    """``sysflow run`` of ``workflow`` (text) in ``tmp`` over an inventory of ``groups``, with per-host
    and common variables and the sudo password; every gate approved."""
    lines = []
    for group, hosts in groups.items():
        lines.append(f"[{group}]")
        lines += [h + "".join(f" {k}={v}" for k, v in host_vars.get(h, {}).items()) for h in hosts]
    lines.append("[all:vars]")
    lines += [f"{k}={v}" for k, v in all_vars.items()]
    lines.append(f"ansible_become_password={sshd.become_password}")
    (tmp / "hosts.ini").write_text("\n".join(lines) + "\n")
    names = [h for hosts in groups.values() for h in hosts]
    config = sshd.write_client_config(tmp / "ssh_config", names, user=sshd.become_user)
    (tmp / "wf.yaml").write_text(workflow)
    return subprocess.run(
        [*SYSFLOW, "run", "wf.yaml", "-i", "hosts.ini", "--ssh-config", str(config),
         "--known-hosts", str(sshd.known_hosts), "--store", "state.db", "--approve-all"],
        capture_output=True, text=True, timeout=90, cwd=tmp,
    )  # fmt: skip


def scripted_reboot(workflow: str, where: Path) -> str:
    """The workflow with its reboot pointed at :data:`REBOOT_SCRIPT` and a boot id file in ``where``."""
    (where / "boot_id").write_text("0ld0b007-0000-4000-8000-000000000001\n")
    (where / "boot_id").chmod(0o644)
    reboot = script(where / "reboot.sh", REBOOT_SCRIPT.format(dir=where).removeprefix("#!/bin/sh\n"))
    assert REBOOT_LINES in workflow
    return workflow.replace(
        REBOOT_LINES,
        f"      reboot_command: {reboot}\n      boot_id_path: {where}/boot_id\n"
        "      interval: 0.5s\n      max_interval: 1s\n",
    )


def completed(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0 and ": completed" in done.stdout, done.stdout + done.stderr


# -- os-patching ------------------------------------------------------------------------------------

FAKE_APT = """\
echo "$*" >> {dir}/apt.log
case "$*" in *"confold upgrade") [ {needs_reboot} = yes ] && touch {dir}/reboot-required ;; esac
exit 0
"""


def test_os_patching_upgrades_reboots_only_where_required_and_verifies(
    sshd: SSHD, tmp_path: Path, hosts_dir: Path
) -> None:
    hosts = ["h0111", "h0112"]
    host_vars = {}
    for host, needs in zip(hosts, ("no", "yes"), strict=True):
        d = hosts_dir / host
        d.mkdir()
        apt = script(d / "apt-get", FAKE_APT.format(dir=d, needs_reboot=needs))
        host_vars[host] = {"package_manager": apt, "reboot_required_file": str(d / "reboot-required")}
    wf = scripted_reboot(init("os-patching", tmp_path), hosts_dir)
    done = run(sshd, tmp_path, wf, {"web": hosts}, host_vars)
    completed(done)
    for host in hosts:
        calls = (hosts_dir / host / "apt.log").read_text().splitlines()
        assert calls[0] == "-q update" and calls[1].endswith(" -o Dpkg::Options::=--force-confold upgrade")
        assert calls[2:] == ["-q check", "-s upgrade"], calls  # verified after the (skipped) reboot
        assert not (hosts_dir / host / "reboot-required").exists()
    assert len((hosts_dir / "boots.log").read_text().splitlines()) == 1  # one reboot: h0112's
    assert "not required" in logs(tmp_path, done, hosts[0], "reboot_needed")
    assert "rebooted: boot id 0ld0b007-0000-4000-8000-000000000001 -> " in logs(
        tmp_path, done, hosts[1], "reboot"
    )


# -- rolling-reboot ---------------------------------------------------------------------------------


def test_rolling_reboot_reboots_one_host_at_a_time_each_back_with_a_new_boot_id(
    sshd: SSHD, tmp_path: Path, hosts_dir: Path
) -> None:
    hosts = ["h0121", "h0122"]
    wf = scripted_reboot(init("rolling-reboot", tmp_path), hosts_dir)
    done = run(sshd, tmp_path, wf, {"web": hosts}, {}, health_check=f"test -s {hosts_dir}/boot_id")
    completed(done)
    boots = (hosts_dir / "boots.log").read_text().split()
    assert len(boots) == 2 and len(set(boots)) == 2  # two reboots, one after the other
    first = logs(tmp_path, done, hosts[0], "reboot")
    assert f"rebooted: boot id 0ld0b007-0000-4000-8000-000000000001 -> {boots[0]}" in first, first
    assert f"rebooted: boot id {boots[0]} -> {boots[1]}" in logs(tmp_path, done, hosts[1], "reboot")
    assert "kernel " in logs(tmp_path, done, hosts[1], "after")  # it ran after the reboot


# -- rolling-deploy ---------------------------------------------------------------------------------


def _repo(where: Path) -> dict[str, str]:
    """A bare repository with tags v1, v2 (healthy) and v3 (its health file says FAIL)."""
    work = where / "src"
    git = ["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    commits = {}
    for tag, health in (("v1", "OK"), ("v2", "OK"), ("v3", "FAIL")):
        (work / "health").write_text(health + "\n")
        (work / "VERSION").write_text(tag + "\n")
        subprocess.run([*git, "add", "."], check=True)
        subprocess.run([*git, "commit", "-q", "-m", tag], check=True)
        subprocess.run([*git, "tag", tag], check=True)
        commits[tag] = subprocess.run(
            [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
        ).stdout.strip()
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(where / "app.git")], check=True)
    return commits


def test_rolling_deploy_drains_each_host_on_the_load_balancer_and_a_failure_rolls_back(
    sshd: SSHD, tmp_path: Path, hosts_dir: Path
) -> None:
    web = ["h0131", "h0132", "h0133"]
    commits = _repo(hosts_dir)
    lbctl = script(hosts_dir / "lbctl", f'echo "$2 $1 $(date +%s.%N)" >> {hosts_dir}/lb.log\n')
    host_vars = {
        h: {"app_dir": f"{hosts_dir}/{h}/app", "health_url": f"file://{hosts_dir}/{h}/app/health"}
        for h in web
    }
    common = {
        "lb_command": lbctl, "drain_seconds": "0", "app_repo": f"file://{hosts_dir}/app.git",
        "restart_command": "true", "health_expect": "OK",
    }  # fmt: skip
    wf = init("rolling-deploy", tmp_path)
    groups = {"web": web, "lb": ["lb01"]}
    completed(run(sshd, tmp_path, wf, groups, host_vars, app_version="v1", **common))

    def head(h: str) -> str:
        return subprocess.run(
            ["git", "-c", "safe.directory=*", "-C", f"{hosts_dir}/{h}/app", "rev-parse", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip

    assert [head(h) for h in web] == [commits["v1"]] * 3
    lb = [line.split()[:2] for line in (hosts_dir / "lb.log").read_text().splitlines()]
    assert lb == [[h, a] for h in web for a in ("drain", "enable")]  # serial 1, 25 %: one host at a time

    (hosts_dir / "lb.log").unlink()
    failing = wf.replace("    retries: 5\n    retry_delay: 2s\n", "")  # fail at once, not after 5 tries
    assert failing != wf
    done = run(sshd, tmp_path, failing, groups, host_vars, app_version="v3", **common)
    assert done.returncode == 1 and "rolled_back" in done.stdout, done.stdout + done.stderr
    assert [head(h) for h in web] == [commits["v1"]] * 3  # the canary went back, the others never moved
    lb = [line.split()[:2] for line in (hosts_dir / "lb.log").read_text().splitlines()]
    assert lb == [[web[0], "drain"], [web[0], "enable"]]  # back in rotation by the rollback


# -- tls-rotation -----------------------------------------------------------------------------------


def _cert(where: Path, name: str, days: int) -> tuple[Path, Path]:
    key, crt = where / f"{name}.key", where / f"{name}.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-days", str(days), "-subj", f"/CN={name}.example.com", "-keyout", str(key), "-out", str(crt)],
        check=True, capture_output=True,
    )  # fmt: skip
    return crt, key


def _tls_hosts(hosts_dir: Path, hosts: list[str]) -> dict[str, dict[str, str]]:
    host_vars = {}
    for h in hosts:
        d = hosts_dir / h
        d.mkdir()
        crt, key = _cert(d, "server", 365)  # what the host serves today
        reload = script(d / "reload", f"echo reloaded >> {d}/reloads\n")
        host_vars[h] = {"tls_cert": str(crt), "tls_key": str(key), "reload_command": reload}
    return host_vars


def _new_pair(tmp: Path, days: int) -> tuple[str, str]:
    crt, key = _cert(tmp / "files", "new", days)
    shutil.copy(crt, tmp / "files" / "server.crt")
    subprocess.run(
        [
            "openssl",
            "pkey",
            "-in",
            str(key),
            "-outform",
            "DER",
            "-out",
            str(tmp / "files" / "server.key.der"),
        ],
        check=True,
    )
    return crt.read_text(), key.read_text()


def test_tls_rotation_installs_verifies_and_reloads_without_showing_the_key(
    sshd: SSHD, tmp_path: Path, hosts_dir: Path
) -> None:
    hosts = ["h0141", "h0142"]
    host_vars = _tls_hosts(hosts_dir, hosts)
    wf = init("tls-rotation", tmp_path)
    new_crt, new_key = _new_pair(tmp_path, 30)
    done = run(sshd, tmp_path, wf, {"web": hosts}, host_vars, min_valid_days="7")
    completed(done)
    for h in hosts:
        d = hosts_dir / h
        assert (d / "server.crt").read_text() == new_crt
        key = subprocess.run(
            ["openssl", "pkey", "-in", str(d / "server.key")], capture_output=True, text=True
        )
        assert (
            key.stdout
            == subprocess.run(["openssl", "pkey"], input=new_key, capture_output=True, text=True).stdout
        )
        assert oct((d / "server.key").stat().st_mode & 0o777) == "0o600"
        assert (d / "reloads").read_text() == "reloaded\n"
    shown = done.stdout + "".join(logs(tmp_path, done, hosts[0], t) for t in ("key_der", "key", "verify"))
    assert "PRIVATE KEY" not in shown and new_key.splitlines()[1] not in shown
    assert "certificate valid for 7 days or more, key matches" in shown


def test_tls_rotation_of_a_certificate_expiring_too_soon_restores_the_old_files(
    sshd: SSHD, tmp_path: Path, hosts_dir: Path
) -> None:
    hosts = ["h0143", "h0144"]
    host_vars = _tls_hosts(hosts_dir, hosts)
    before = {
        h: ((hosts_dir / h / "server.crt").read_text(), (hosts_dir / h / "server.key").read_text())
        for h in hosts
    }
    wf = init("tls-rotation", tmp_path)
    _new_pair(tmp_path, 2)  # valid two more days: less than min_valid_days
    done = run(sshd, tmp_path, wf, {"web": hosts}, host_vars, min_valid_days="7")
    assert done.returncode == 1 and "rolled_back" in done.stdout, done.stdout + done.stderr
    assert "expires within 7 days" in logs(tmp_path, done, hosts[0], "verify")
    for h in hosts:
        d = hosts_dir / h
        assert ((d / "server.crt").read_text(), (d / "server.key").read_text()) == before[h]
    assert (
        hosts_dir / hosts[0] / "reloads"
    ).read_text() == "reloaded\n"  # the rollback reloaded the old pair
    assert not (hosts_dir / hosts[1] / "reloads").exists()  # the canary stopped the rollout


# -- backup-restore ---------------------------------------------------------------------------------


def test_backup_restore_archives_copies_off_and_proves_the_restore_then_prunes(
    sshd: SSHD, tmp_path: Path, hosts_dir: Path
) -> None:
    hosts = ["h0151", "h0152"]
    host_vars = {}
    for h in hosts:
        data = hosts_dir / h / "data"
        (data / "conf.d").mkdir(parents=True)
        (data / "app.conf").write_text(f"name={h}\n")
        (data / "conf.d" / "limits.conf").write_text("max=10\n")
        host_vars[h] = {"backup_source": str(data), "backup_dir": f"{hosts_dir}/{h}/backups"}
    wf = init("backup-restore", tmp_path)
    offsite = hosts_dir / "offsite"
    first = run(sshd, tmp_path, wf, {"db": hosts}, host_vars, offsite_dir=str(offsite), keep="1")
    completed(first)
    for h in hosts:
        archives = sorted(p.name for p in (offsite / h).iterdir())
        assert len(archives) == 2 and archives[0].startswith(f"{h}-") and archives[1].endswith(".sha256")
        listed = subprocess.run(
            ["tar", "-tzf", str(offsite / h / archives[0])], capture_output=True, text=True
        )
        assert "data/conf.d/limits.conf" in listed.stdout
        assert not list((hosts_dir / h / "backups").glob("restore-test.*"))  # the scratch restore is gone
    shown = logs(tmp_path, first, hosts[0], "restore_test")
    assert "unpacks to 2 files identical to" in shown, shown
    subprocess.run(["sleep", "1"], check=True)  # a second archive, a second later
    completed(run(sshd, tmp_path, wf, {"db": hosts}, host_vars, offsite_dir=str(offsite), keep="1"))
    for h in hosts:  # keep=1: the older archive pruned, locally and off-site
        assert len(list((offsite / h).glob("*.tar.gz"))) == 1
        assert len(list((hosts_dir / h / "backups").glob("*.tar.gz"))) == 1
        assert re.fullmatch(
            rf"{h}-\d{{8}}T\d{{6}}Z\.tar\.gz\n", (hosts_dir / h / "backups" / "latest").read_text()
        )


# -- security-audit ---------------------------------------------------------------------------------


def test_security_audit_writes_a_report_per_host_on_the_controller_and_changes_nothing(
    sshd: SSHD, tmp_path: Path, hosts_dir: Path
) -> None:
    hosts = ["h0161", "h0162"]
    apt = script(
        hosts_dir / "apt-get",
        'case "$*" in "-s upgrade") echo "Inst openssl [3.0.1] (3.0.2 Debian)";; esac\n',
    )
    watched = [sshd.workdir / "sshd_config", Path("/etc/sudoers"), hosts_dir]
    before = [(p.stat().st_mtime_ns, p.stat().st_size) for p in watched]
    wf = init("security-audit", tmp_path)
    done = run(
        sshd, tmp_path, wf, {"web": hosts}, {},
        sshd_config=str(sshd.workdir / "sshd_config"), package_manager=apt, report_dir="reports",
    )  # fmt: skip
    completed(done)
    for h in hosts:
        report = (tmp_path / "reports" / f"{h}.txt").read_text()
        assert report.startswith(f"security audit of {h}, ")
        ports = report.split("== listening ports")[1].split("== sshd")[0]
        assert f":{sshd.port} " in ports and "sshd" in ports  # the test sshd's listening sockets
        assert (
            re.search(r"^permitrootlogin (without|prohibit)-password$", report, re.M)
            and "passwordauthentication no" in report
        )
        assert "1 pending updates" in report and "WARN updates: 1 packages to upgrade" in report
        assert f"rule: {sshd.become_user} " in report  # the login's sudoers drop-in
    assert [(p.stat().st_mtime_ns, p.stat().st_size) for p in watched] == before  # read, never written
