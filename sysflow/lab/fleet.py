"""A throwaway local OpenSSH fleet (``sysflow lab up/down``): real sshd processes on loopback aliases.

Why: users can try ``sysflow run`` over real SSH without a fleet. Everything lives in one directory
(keys, sshd_config, known_hosts, ssh_config, inventory.ini, state.json); ``down`` stops exactly the
PIDs in state.json, checking each one's start time so a recycled PID is never signalled. sshd takes
at most 16 ``ListenAddress`` lines, so every 16 hosts get their own sshd process.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from sysflow.engine.owners import process_start
from sysflow.errors import SysflowError

__all__ = ["LabBusy", "LabError", "LabHost", "LabUp", "lab_down", "lab_hosts", "lab_up", "running_pids"]

SSHD_BINARY = Path("/usr/sbin/sshd")
SSH_KEYGEN = "/usr/bin/ssh-keygen"
PRIVSEP_DIR = Path("/run/sshd")  # compiled into Debian's sshd; must exist
ALIASES_PER_SSHD = 16  # sshd accepts at most 16 ListenAddress lines
MAX_HOSTS = 250
ALIAS_PREFIX = "127.77.1."  # the test fixture uses 127.77.0.x; the lab keeps to its own aliases
START_TIMEOUT = 10.0  # seconds for every alias to accept connections
STOP_TIMEOUT = 5.0  # seconds for sshd to exit after SIGTERM before SIGKILL
STATE_FILE = "state.json"
DATACENTERS = ("ams", "fra")

_CONFIG = """\
Port {port}
{listen}
HostKey {dir}/host_key
PidFile {pid_file}
AuthorizedKeysFile {dir}/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
LogLevel ERROR
MaxStartups 200:30:400
MaxSessions 64
Subsystem sftp internal-sftp
PrintMotd no
PrintLastLog no
SetEnv HOME={dir}/home PATH=/usr/local/bin:/usr/bin:/bin SYSFLOW_LAB_DIR={dir}
"""


class LabError(SysflowError):
    """The lab cannot start or stop (sshd missing, a port taken, an alias not answering)."""


class LabBusy(LabError):
    """A lab is already up in that directory."""


@dataclass(frozen=True, slots=True)
class LabHost:
    """One lab host: its inventory name, group, datacenter and loopback alias."""

    name: str
    group: str
    datacenter: str
    address: str


@dataclass(frozen=True, slots=True)
class LabUp:
    """What ``lab_up`` started and wrote."""

    directory: Path
    hosts: tuple[LabHost, ...]
    port: int
    user: str
    pids: tuple[int, ...]
    files: tuple[Path, ...]


def lab_hosts(count: int) -> tuple[LabHost, ...]:
    """Half web, a quarter db, the rest cache (as examples/inventory.ini), alternating datacenters."""
    if not 1 <= count <= MAX_HOSTS:
        raise LabError(f"--hosts must be 1 to {MAX_HOSTS}, not {count}")
    web = max(1, count // 2)
    db = (count - web) // 2 if count > 2 else count - web
    groups = [("web", web), ("db", db), ("cache", count - web - db)]
    hosts: list[LabHost] = []
    for prefix, n in groups:
        for i in range(1, n + 1):
            dc = DATACENTERS[0] if i <= (n + 1) // 2 else DATACENTERS[1]
            address = f"{ALIAS_PREFIX}{len(hosts) + 1}"
            hosts.append(LabHost(f"{prefix}{i:02d}", f"{prefix}_servers", dc, address))
    return tuple(hosts)


def running_pids(directory: Path) -> list[int]:
    """The lab's sshd PIDs that still run as the very processes started (start time checked)."""
    try:
        state = json.loads((directory / STATE_FILE).read_text())
    except (OSError, ValueError):
        return []
    procs = state.get("processes", []) if isinstance(state, dict) else []
    return [int(p["pid"]) for p in procs if process_start(int(p["pid"])) == str(p["start_time"])]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _keygen(path: Path, comment: str) -> None:
    for old in (path, path.with_name(path.name + ".pub")):
        old.unlink(missing_ok=True)
    cmd = [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)]
    subprocess.run(cmd, check=True, capture_output=True)
    path.chmod(0o600)


def _make_home(home: Path) -> None:
    home.mkdir(exist_ok=True)
    for name in ("bashrc", "profile"):
        src = Path("/usr/share/base-files") / f"dot.{name}"
        dst = home / f".{name}"
        if src.exists():
            shutil.copyfile(src, dst)
        else:
            dst.write_text("")


def _inventory(hosts: tuple[LabHost, ...], directory: Path, fail: str | None) -> str:
    lines = ["# sysflow lab fleet: every host is a loopback alias of this machine (sysflow lab up)."]
    for group in dict.fromkeys(h.group for h in hosts):
        lines.append(f"\n[{group}]")
        for h in (h for h in hosts if h.group == group):
            flag = " lab_fail=yes" if h.name == fail else ""
            lines.append(f"{h.name} datacenter={h.datacenter}{flag}")
    lines += ["\n[all:vars]", f"lab_dir={directory}", "lab_fail=no", ""]
    return "\n".join(lines)


def _ssh_config(hosts: tuple[LabHost, ...], directory: Path, port: int, user: str) -> str:
    return "\n".join(
        f"Host {h.name}\n  HostName {h.address}\n  Port {port}\n  User {user}\n"
        f"  IdentityFile {directory}/client_key\n  UserKnownHostsFile {directory}/known_hosts\n"
        f"  StrictHostKeyChecking yes\n"
        for h in hosts
    )


def _write_files(
    directory: Path, hosts: tuple[LabHost, ...], port: int, user: str, fail: str | None
) -> list[Path]:
    _keygen(directory / "host_key", "sysflow-lab-host")
    _keygen(directory / "client_key", "sysflow-lab")
    (directory / "authorized_keys").write_text((directory / "client_key.pub").read_text())
    host_key = " ".join((directory / "host_key.pub").read_text().split()[:2])
    known = "".join(f"[{h.address}]:{port} {host_key}\n" for h in hosts)
    (directory / "known_hosts").write_text(known)
    (directory / "ssh_config").write_text(_ssh_config(hosts, directory, port, user))
    (directory / "inventory.ini").write_text(_inventory(hosts, directory, fail))
    _make_home(directory / "home")
    names = ("client_key", "known_hosts", "ssh_config", "inventory.ini")
    return [directory / n for n in names]


def _shard_configs(directory: Path, hosts: tuple[LabHost, ...], port: int) -> list[Path]:
    configs = []
    for k in range(0, len(hosts), ALIASES_PER_SSHD):
        shard = hosts[k : k + ALIASES_PER_SSHD]
        index = k // ALIASES_PER_SSHD
        listen = "\n".join(f"ListenAddress {h.address}:{port}" for h in shard)
        pid_file = directory / f"sshd-{index}.pid"
        pid_file.unlink(missing_ok=True)
        config = directory / f"sshd_config-{index}" if index else directory / "sshd_config"
        config.write_text(_CONFIG.format(port=port, listen=listen, dir=directory, pid_file=pid_file))
        configs.append(config)
    return configs


def _read_pid(pid_file: Path, deadline: float) -> int:
    while time.monotonic() < deadline:
        try:
            return int(pid_file.read_text().strip())
        except (OSError, ValueError):
            time.sleep(0.05)
    raise LabError(f"sshd wrote no PID file {pid_file} within {START_TIMEOUT:.0f}s")


def _start_sshd(config: Path, log: Path) -> None:
    """Start one sshd as a daemon (it forks and writes its PidFile); errors name the config."""
    check = subprocess.run([str(SSHD_BINARY), "-t", "-f", str(config)], capture_output=True, text=True)
    if check.returncode:
        raise LabError(f"sshd rejects {config}: {check.stderr.strip()}")
    started = subprocess.run(
        [str(SSHD_BINARY), "-f", str(config), "-E", str(log)],
        capture_output=True, text=True, timeout=START_TIMEOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    if started.returncode:
        detail = started.stderr.strip() or log.read_text(errors="replace").strip()[-300:]
        raise LabError(f"sshd did not start ({config.name}): {detail}")


def _wait_listening(hosts: tuple[LabHost, ...], port: int, deadline: float) -> None:
    pending = [h.address for h in hosts]
    while pending and time.monotonic() < deadline:
        try:
            with socket.create_connection((pending[0], port), timeout=1.0):
                pending.pop(0)
        except OSError:
            time.sleep(0.05)
    if pending:
        raise LabError(f"sshd does not accept connections on {pending[0]}:{port}")


def _login_user() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


def lab_up(directory: Path, count: int, port: int = 0, fail: str | None = None) -> LabUp:
    """Write the lab's files into ``directory`` and start its sshd processes (bounded wait)."""
    directory = directory.resolve()
    if running_pids(directory):
        raise LabBusy(f"a lab is already up in {directory} (sysflow lab down --dir {directory})")
    if not SSHD_BINARY.exists():
        raise LabError(f"{SSHD_BINARY} is missing: install openssh-server")
    hosts = lab_hosts(count)
    if fail is not None and fail not in {h.name for h in hosts}:
        raise LabError(f"--fail {fail}: no such lab host (hosts: {', '.join(h.name for h in hosts)})")
    if os.geteuid() == 0:
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    port = port or _free_port()
    user = _login_user()
    files = _write_files(directory, hosts, port, user, fail)
    configs = _shard_configs(directory, hosts, port)
    deadline = time.monotonic() + START_TIMEOUT
    procs: list[dict[str, object]] = []
    try:
        for index, config in enumerate(configs):
            _start_sshd(config, directory / f"sshd-{index}.log")
            pid = _read_pid(directory / f"sshd-{index}.pid", deadline)
            procs.append({"pid": pid, "start_time": process_start(pid), "config": str(config)})
            _save_state(directory, port, user, procs)
        _wait_listening(hosts, port, deadline)
    except BaseException:
        _stop_pids(directory)
        raise
    pids = tuple(int(str(p["pid"])) for p in procs)
    return LabUp(directory, hosts, port, user, pids, (*files, directory / STATE_FILE))


def _save_state(directory: Path, port: int, user: str, procs: list[dict[str, object]]) -> None:
    state = {"port": port, "user": user, "processes": procs}
    (directory / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")


def _stop_one(pid: int) -> None:
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline and process_start(pid) is not None:
        time.sleep(0.05)
    if process_start(pid) is not None:
        os.kill(pid, signal.SIGKILL)


def _stop_pids(directory: Path) -> list[int]:
    stopped = []
    for pid in running_pids(directory):
        try:
            _stop_one(pid)
        except ProcessLookupError:
            continue
        stopped.append(pid)
    return stopped


def lab_down(directory: Path) -> list[int]:
    """Stop the lab's own sshd processes (start time verified) and remove its runtime files."""
    directory = directory.resolve()
    stopped = _stop_pids(directory)
    for path in [directory / STATE_FILE, *directory.glob("sshd-*.pid")]:
        path.unlink(missing_ok=True)
    return stopped
