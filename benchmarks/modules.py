"""Benchmark: the ``copy`` module over the test sshd, against Ansible's, and a large file at a bandwidth limit.

(a) ``fleet``: ``copy`` of a 1 MB file to 200 loopback hosts of the test sshd (``tests/fixtures/sshd.py``
    via ``benchmarks/_sshd.py``; host keys checked), 100 hosts at once, through the engine as
    ``sysflow run`` drives it: a first run (every host gets the file) and an unchanged second run
    (the host compares checksums: nothing is sent), ``--repeat`` times into fresh directories;
    then the same two runs with Ansible's ``copy`` module (``forks: 100``, host key checking on,
    gather_facts off, a fresh ControlMaster directory per run as sysflow's fresh connections).
    ``ansible_ratio_first`` / ``ansible_ratio_unchanged`` = Ansible wall / sysflow wall (medians);
    targets >= 5 and >= 10.
(b) ``large``: a 1 GB file to one host through a bandwidth pool (``unit: Mbit/s``, the task demanding
    the limit, 800 Mbit/s), after a warm-up copy of 1 MB: the controller's peak RSS growth over the
    run (``/proc/self/clear_refs`` resets the peak, then VmHWM - VmRSS before: what the file's size
    adds to a warm controller, its checksum included; target < 64 MB) and the SFTP transfer's achieved
    rate against the limit (the transfer timed alone: the checksums and the install on the host
    are not part of it).

    python benchmarks/modules.py [--quick] [--json FILE] [--parts fleet,large] [--repeat N] [--no-ansible]

``--quick``: 10 hosts and a 64 KB file, a 50 MB large file at 400 Mbit/s, one repetition (a check
that it works, not a measurement).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Run as a script, this directory is sys.path[0]; its other scripts (calendar.py) would shadow stdlib.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sysflow.engine.engine import Engine  # noqa: E402
from sysflow.model.inventory import Inventory  # noqa: E402
from sysflow.model.workflow import MaintenanceWorkflow  # noqa: E402

CONCURRENCY = 100  # sysflow max_parallel_servers = Ansible forks
HOSTS, HOSTS_QUICK = 200, 10
SIZE, SIZE_QUICK = 1_000_000, 64 * 1024
LARGE, LARGE_QUICK = 1_000_000_000, 50_000_000
LIMIT_MBPS, LIMIT_MBPS_QUICK = 800.0, 400.0
RSS_TARGET_MB = 64
TIMEOUT = 3600.0  # seconds per operation
MB = 1024 * 1024

Row = dict[str, Any]


def write_random(path: Path, size: int) -> Path:
    """``size`` incompressible bytes, written 1 MiB at a time."""
    with path.open("wb") as f:
        left = size
        while left > 0:
            f.write(os.urandom(min(MB, left)))
            left -= MB
    return path


def inventory_of(names: list[str]) -> Inventory:
    inventory = Inventory()
    inventory.add_group("fleet", names)
    return inventory


def engine_for(server: Any, names: list[str]) -> Engine:
    """The engine as ``sysflow run`` builds it: names through an OpenSSH client config, keys checked."""
    from sysflow.actors.auth import SSHAuth

    return Engine(
        inventory_of(names),
        SSHAuth.from_keyfile(server.client_key),
        ssh_config=server.workdir / "bench_ssh_config",
        known_hosts=server.known_hosts,
    )


def copy_workflow(src: Path, dest: str, *, limit_mbps: float | None = None) -> MaintenanceWorkflow:
    wf = MaintenanceWorkflow("modules_bench")
    resources = {"uplink": limit_mbps} if limit_mbps is not None else {}
    wf.add_task(
        "push", copy={"src": str(src), "dest": dest}, targets=["*"], timeout=TIMEOUT, resources=resources
    )
    parallelism: dict[str, Any] = {"max_parallel_servers": CONCURRENCY}
    if limit_mbps is not None:
        parallelism["pools"] = [{"name": "uplink", "capacity": limit_mbps, "unit": "Mbit/s"}]
    wf.set_parallelization(parallelism)
    return wf


# -- (a) the fleet ------------------------------------------------------------------------------------


async def sysflow_copy(server: Any, names: list[str], src: Path, size: int, where: Path, run: str) -> Row:
    wf = copy_workflow(src, f"{where}/{{{{ host.name }}}}.bin")
    engine = engine_for(server, names)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    result = await engine.run(wf)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    records = list(result.ops.values())
    return {
        "part": "fleet",
        "tool": "sysflow",
        "run": run,
        "hosts": len(names),
        "bytes": size,
        "failed_hosts": len(names) - len(result.successful_servers),
        "changed": sum(1 for r in records if r.changed is True),
        "ok": sum(1 for r in records if r.changed is False),
        "wall_s": round(wall, 3),
        "cpu_s_client": round(cpu, 3),
    }


def _ansible_files(server: Any, names: list[str], src: Path, where: Path, work: Path) -> tuple[Path, Path]:
    (work / "inventory.ini").write_text(
        "[fleet]\n"
        + "".join(f"{n} ansible_host={server.address_of(n)} ansible_port={server.port}\n" for n in names)
        + f"[fleet:vars]\nansible_user={server.username}\nansible_ssh_private_key_file={server.client_key}\n"
        + f"ansible_python_interpreter={sys.executable}\n"
    )
    playbook = work / "playbook.yml"
    playbook.write_text(
        "- hosts: fleet\n  gather_facts: false\n  tasks:\n"
        f"    - name: push\n      copy:\n        src: {src}\n"
        f'        dest: "{where}/{{{{ inventory_hostname }}}}.bin"\n'
    )
    return playbook, work / "inventory.ini"


async def ansible_copy(
    server: Any, names: list[str], src: Path, size: int, where: Path, run: str, work: Path
) -> Row:
    """``ansible-playbook`` of the copy task, cold: its own ControlMaster directory per run."""
    cfg = work / f"ansible-{run}.cfg"
    cfg.write_text(
        f"[defaults]\nforks = {CONCURRENCY}\nhost_key_checking = True\nretry_files_enabled = False\n"
        f"local_tmp = {work / 'tmp'}\ninventory = {work / 'inventory.ini'}\n"
        "[ssh_connection]\n"
        f"ssh_args = -o ControlMaster=auto -o ControlPersist=30s -o UserKnownHostsFile={server.known_hosts} "
        "-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes\n"
        f"control_path_dir = {work / ('cp-' + run)}\npipelining = True\n"
    )
    env = {**os.environ, "ANSIBLE_CONFIG": str(cfg), "ANSIBLE_HOME": str(work / "home")}
    playbook, _ = _ansible_files(server, names, src, where, work)
    wall0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        "ansible-playbook",
        str(playbook),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await proc.communicate()
    wall = time.perf_counter() - wall0
    recap = [ln for ln in out.decode().splitlines() if " : ok=" in ln]

    def count(key: str) -> int:
        return sum(int(m.group(1)) for ln in recap if (m := re.search(rf"\b{key}=(\d+)", ln)))

    return {
        "part": "fleet",
        "tool": "ansible",
        "run": run,
        "hosts": len(names),
        "bytes": size,
        "failed_hosts": len(names) - sum(1 for ln in recap if "failed=0" in ln and "unreachable=0" in ln),
        "changed": count("changed"),
        "ok": count("ok") - count("changed"),
        "wall_s": round(wall, 3),
    }


def fresh_dir(work: Path, name: str) -> Path:
    path = work / name
    path.mkdir()
    path.chmod(0o755)
    return path


async def run_fleet(server: Any, work: Path, hosts: int, size: int, repeat: int, ansible: bool) -> list[Row]:
    from tests.fixtures.sshd import host_names

    names = host_names(hosts)
    src = write_random(work / "payload.bin", size)
    rows: list[Row] = []
    for r in range(repeat):
        where = fresh_dir(work, f"sysflow-{r}")
        for run in ("first", "unchanged"):
            rows.append(await sysflow_copy(server, names, src, size, where, run))
            print_row(rows[-1])
        shutil.rmtree(where)
    if ansible:
        if shutil.which("ansible-playbook") is None:
            rows.append(
                {"part": "fleet", "tool": "ansible", "hosts": hosts, "error": "ansible-playbook not found"}
            )
            print_row(rows[-1])
            return rows
        where = fresh_dir(work, "ansible")
        for run in ("first", "unchanged"):
            rows.append(await ansible_copy(server, names, src, size, where, run, work))
            print_row(rows[-1])
        shutil.rmtree(where)
    return rows


# -- (b) one large file at a bandwidth limit ------------------------------------------------------------


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak_rss() -> bool:
    """Set this process's peak RSS (VmHWM) back to its current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


@contextlib.contextmanager
def timed_transfers(log: list[tuple[int, float]]) -> Iterator[None]:
    """Record (bytes, seconds) of each SFTP transfer the SSH transport makes."""
    import sysflow.actors.ssh as ssh

    real = ssh.put_file

    async def timed(*args: Any, **kw: Any) -> int:
        began = time.perf_counter()
        sent = await real(*args, **kw)
        log.append((sent, time.perf_counter() - began))
        return sent

    ssh.put_file = timed  # type: ignore[assignment]
    try:
        yield
    finally:
        ssh.put_file = real


async def run_large(server: Any, work: Path, size: int, limit_mbps: float) -> Row:
    """The large copy, after the same copy of a 1 MB file (imports, first connection and run
    machinery are not what is measured: the growth a file's size adds)."""
    where = fresh_dir(work, "large")
    name = "h0001"
    warm = write_random(work / "warm.bin", MB)
    await engine_for(server, [name]).run(copy_workflow(warm, f"{where}/warm.bin", limit_mbps=limit_mbps))
    src = write_random(work / "large.bin", size)
    transfers: list[tuple[int, float]] = []
    exact = reset_peak_rss()
    rss0 = _status_kb("VmRSS") if exact else _status_kb("VmHWM")
    wall0 = time.perf_counter()
    with timed_transfers(transfers):
        wf = copy_workflow(src, f"{where}/{name}.bin", limit_mbps=limit_mbps)
        result = await engine_for(server, [name]).run(wf)
    wall = time.perf_counter() - wall0
    peak = _status_kb("VmHWM")
    growth_mb = max(0, peak - rss0) / 1024
    ok = name in result.successful_servers and (where / f"{name}.bin").stat().st_size == size
    sent, seconds = transfers[-1] if transfers else (0, 0.0)
    achieved = sent * 8 / seconds / 1e6 if seconds else 0.0
    shutil.rmtree(where)
    src.unlink()
    return {
        "part": "large",
        "tool": "sysflow",
        "hosts": 1,
        "bytes": size,
        "failed_hosts": 0 if ok else 1,
        "limit_mbps": limit_mbps,
        "transfer_s": round(seconds, 3),
        "achieved_mbps": round(achieved, 1),
        "rate_of_limit": round(achieved / limit_mbps, 3),
        "wall_s": round(wall, 3),
        "rss_before_mb": round(rss0 / 1024, 1),
        "peak_rss_growth_mb": round(growth_mb, 1),
        "peak_rss_mb": round(peak / 1024, 1),
        "peak_reset": exact,
    }


async def run_parts(args: argparse.Namespace, parts: set[str], work: Path) -> list[Row]:
    from benchmarks._sshd import sshd_for_benchmark
    from tests.fixtures.sshd import host_names

    hosts = args.hosts or (HOSTS_QUICK if args.quick else HOSTS)
    rows: list[Row] = []
    try:
        with sshd_for_benchmark(work / "sshd") as server:
            server.write_client_config(server.workdir / "bench_ssh_config", host_names(hosts))
            if "fleet" in parts:
                size = args.size or (SIZE_QUICK if args.quick else SIZE)
                repeat = args.repeat or (1 if args.quick else 3)
                rows += await run_fleet(server, work, hosts, size, repeat, not args.no_ansible)
            if "large" in parts:
                size = args.large_size or (LARGE_QUICK if args.quick else LARGE)
                limit = args.limit_mbps or (LIMIT_MBPS_QUICK if args.quick else LIMIT_MBPS)
                rows.append(await run_large(server, work, size, limit))
                print_row(rows[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


# -- report ---------------------------------------------------------------------------------------------


def summary(rows: list[Row]) -> Row:
    def median(tool: str, run: str) -> float | None:
        walls = [r["wall_s"] for r in rows if r.get("tool") == tool and r.get("run") == run and "wall_s" in r]
        return round(statistics.median(walls), 3) if walls else None

    def ratio(run: str) -> float | None:
        ours, theirs = median("sysflow", run), median("ansible", run)
        return round(theirs / ours, 2) if ours and theirs else None

    large = next((r for r in rows if r["part"] == "large"), None)
    return {
        "part": "summary",
        "sysflow_first_s": median("sysflow", "first"),
        "sysflow_unchanged_s": median("sysflow", "unchanged"),
        "ansible_first_s": median("ansible", "first"),
        "ansible_unchanged_s": median("ansible", "unchanged"),
        "ansible_ratio_first": ratio("first"),
        "ansible_ratio_unchanged": ratio("unchanged"),
        "large_peak_rss_growth_mb": large["peak_rss_growth_mb"] if large else None,
        "large_achieved_mbps": large["achieved_mbps"] if large else None,
        "large_limit_mbps": large["limit_mbps"] if large else None,
        "targets": {
            "ansible_ratio_first": ">= 5",
            "ansible_ratio_unchanged": ">= 10",
            "large_peak_rss_growth_mb": f"< {RSS_TARGET_MB}",
            "large_achieved_mbps": "<= limit, near it",
        },
    }


def print_row(row: Row) -> None:
    if row["part"] == "summary":
        print("summary: " + ", ".join(f"{k}={v}" for k, v in row.items() if k not in ("part", "targets")))
        return
    if "error" in row:
        print(f"{row['part']:>5} {row['tool']:>8} {row['hosts']:>5}  {row['error']}")
        return
    if row["part"] == "large":
        print(
            f"large  sysflow {row['bytes'] / 1e6:>8.0f} MB to 1 host at {row['limit_mbps']:g} Mbit/s: "
            f"transfer {row['transfer_s']:.2f} s = {row['achieved_mbps']:.1f} Mbit/s "
            f"({row['rate_of_limit']:.0%} of the limit), {row['wall_s']:.2f} s wall, "
            f"peak RSS +{row['peak_rss_growth_mb']:.1f} MB (from {row['rss_before_mb']:.0f} MB)"
            f"{'' if row['failed_hosts'] == 0 else '  FAILED'}",
            flush=True,
        )
        return
    print(
        f"fleet {row['tool']:>8} {row['run']:>9} {row['hosts']:>5} hosts {row['bytes']:>9} B "
        f"{row['changed']:>4} changed {row['ok']:>4} ok {row['failed_hosts']:>4} failed {row['wall_s']:>8.2f} s wall",
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 hosts, 64 KB, a 50 MB large file, once")
    parser.add_argument("--json", type=Path, help="write the rows here")
    parser.add_argument("--parts", default="fleet,large", help="fleet, large or both")
    parser.add_argument("--repeat", type=int, default=None, help="sysflow repetitions (default 3)")
    parser.add_argument("--hosts", type=int, default=None, help=f"fleet size (default {HOSTS})")
    parser.add_argument("--size", type=int, default=None, help=f"fleet file bytes (default {SIZE})")
    parser.add_argument("--large-size", type=int, default=None, help=f"large file bytes (default {LARGE})")
    parser.add_argument(
        "--limit-mbps", type=float, default=None, help=f"bandwidth pool (default {LIMIT_MBPS:g})"
    )
    parser.add_argument("--no-ansible", action="store_true")
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    work = Path(tempfile.mkdtemp(prefix="sysflow-modules-bench-", dir="/tmp"))
    work.chmod(0o755)  # the hosts' login reads the payload; root-owned directories like /etc
    rows = asyncio.run(run_parts(args, parts, work))
    rows.append(summary(rows))
    print_row(rows[-1])
    if args.json:
        args.json.write_text(json.dumps({"benchmark": "modules", "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
