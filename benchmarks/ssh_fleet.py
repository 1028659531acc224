"""SSH fleet benchmark: run ``true`` on N loopback hosts, concurrency 100, tool against tool.

    python benchmarks/ssh_fleet.py --json out.json [--hosts 100,500,1000] [--quick] [--tools ...]

It starts its own sshd (the test fixture's helpers, through ``benchmarks/_sshd.py``) on the loopback
aliases 127.77.0.1-16 and runs, side by side in one run, each tool in a fresh child process:

* ``asyncssh``: a ~30-line connect-run-close loop with a semaphore, the floor for a Python SSH client;
* ``sysflow-local``: LocalBackend in-process (one HostPool, SSHTransport), connections closed at the end;
* ``sysflow-local-p2``: LocalBackend(processes=2), the shard split over two worker processes;
* ``sysflow-ray``: RayBackend on a fresh local ``ray.init()`` (two shards, two actors); Ray's start-up
  is not timed (a cluster is already up in production), its processes' CPU is counted;
* ``ansible-raw`` / ``ansible-command``: ``ansible all -m raw|command -a true -f 100``, host key
  checking on against its own known_hosts, its own inventory, config and temp dirs;
* ``pyinfra``: ``pyinfra INVENTORY exec --parallel 100 -y -- true``, strict host key checking;
* ``... pooled`` rows: a second ``true`` over connections that are already open.

Rows: ``{"tool","hosts","concurrency","wall_s","client_cpu_s","peak_rss_mb","failures"}``.
``client_cpu_s`` is user+system CPU of the tool's process and all its descendants (reaped children
through ``RUSAGE_CHILDREN``, live ones such as Ray's from ``/proc``) over the timed part; sshd is
excluded. ``peak_rss_mb`` is the tool process's peak RSS plus the largest reaped child's, plus the
current RSS of live descendants (Ray). On loopback sshd shares the two cores and dominates wall time,
so the table also prints client CPU per host and each tool's wall ratio to raw asyncssh.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _sshd import SSHD, load_sshd, save_sshd, sshd_for_benchmark

from tests.fixtures.sshd import host_names

CONCURRENCY = 100
TOOLS = (
    "asyncssh",
    "sysflow-local",
    "sysflow-local-p2",
    "sysflow-ray",
    "pyinfra",
    "ansible-raw",
    "ansible-command",
)
RUNNER_TIMEOUT = 900.0  # seconds one tool may take for one fleet size
_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")

Row = dict[str, Any]


# -- measuring ------------------------------------------------------------------------------------


def _proc_table() -> dict[int, tuple[int, float, int]]:
    """pid -> (ppid, cpu seconds incl. reaped children, rss bytes) for every process."""
    table: dict[int, tuple[int, float, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            tail = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            ppid, ut, st, cut, cst, rss = int(tail[1]), *map(int, tail[11:15]), int(tail[21])
            table[int(entry)] = (ppid, (ut + st + cut + cst) / _TICK, rss * _PAGE)
    return table


def _live_descendants() -> tuple[float, int]:
    """CPU seconds and RSS bytes of this process's live descendants."""
    table = _proc_table()
    kids: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        kids.setdefault(ppid, []).append(pid)
    cpu, rss, stack = 0.0, 0, list(kids.get(os.getpid(), []))
    while stack:
        pid = stack.pop()
        cpu += table[pid][1]
        rss += table[pid][2]
        stack.extend(kids.get(pid, []))
    return cpu, rss


def _cpu_now() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime + _live_descendants()[0]


def _peak_rss_mb() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return (me.ru_maxrss + kids.ru_maxrss) / 1024 + _live_descendants()[1] / 2**20


async def _timed(tool: str, hosts: int, work: Callable[[], Awaitable[int]]) -> Row:
    """Run ``work`` (returning its failure count) and measure it."""
    cpu0, t0 = _cpu_now(), time.perf_counter()
    failures = await work()
    wall, cpu = time.perf_counter() - t0, _cpu_now() - cpu0
    return {
        "tool": tool,
        "hosts": hosts,
        "concurrency": CONCURRENCY,
        "wall_s": round(wall, 3),
        "client_cpu_s": round(cpu, 3),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "failures": failures,
    }


# -- the tools (each runs in a fresh child process) --------------------------------------------------


async def run_asyncssh(server: SSHD, names: list[str]) -> list[Row]:
    """The floor: connect, run, close, at most CONCURRENCY at once; then a pooled second command."""
    import asyncssh

    known = asyncssh.read_known_hosts(str(server.known_hosts))
    key = asyncssh.read_private_key(str(server.client_key))
    sem = asyncio.Semaphore(CONCURRENCY)

    async def connect(name: str) -> Any:
        return await asyncssh.connect(
            server.address_of(name),
            port=server.port,
            username="root",
            client_keys=[key],
            known_hosts=known,
            config=None,
        )

    async def once(name: str) -> bool:
        async with sem:
            try:
                async with await connect(name) as conn:
                    return (await conn.run("true")).exit_status == 0
            except (OSError, asyncssh.Error):
                return False

    async def fresh() -> int:
        return sum(not ok for ok in await asyncio.gather(*(once(n) for n in names)))

    rows = [await _timed("asyncssh", len(names), fresh)]

    async def opened(name: str) -> Any:
        async with sem:
            return await connect(name)

    conns = await asyncio.gather(*(opened(n) for n in names))

    async def again(conn: Any) -> bool:
        async with sem:
            return (await conn.run("true")).exit_status == 0

    async def pooled() -> int:
        return sum(not ok for ok in await asyncio.gather(*(again(c) for c in conns)))

    rows.append(await _timed("asyncssh pooled", len(names), pooled))
    for conn in conns:
        conn.close()
    await asyncio.gather(*(c.wait_closed() for c in conns))
    return rows


class TransportFactory:
    """Builds the SSHTransport inside the pool's process: picklable (paths and numbers only)."""

    def __init__(self, server: SSHD, names: list[str]) -> None:
        self.server, self.names = server, names

    def __call__(self) -> Any:
        from sysflow.actors.auth import SSHAuth
        from sysflow.actors.ssh import SSHTransport

        return SSHTransport(
            self.server.settings(self.names),
            SSHAuth.from_keyfile(self.server.client_key),
            known_hosts=self.server.known_hosts,
        )


def _shards(server: SSHD, names: list[str], count: int) -> list[Any]:
    from sysflow.actors.backends import ShardSpec

    parts = [names[i::count] for i in range(count)]
    return [
        ShardSpec(f"s{i}", tuple(p), TransportFactory(server, p), max_in_flight=CONCURRENCY // count)
        for i, p in enumerate(parts)
    ]


def _requests(names: list[str], task: str) -> list[Any]:
    from sysflow.actors.ops import OpRequest

    return [OpRequest(op_id=f"{task}@{n}", host=n, task=task, command="true", timeout=120) for n in names]


async def _sysflow_rows(tool: str, backend: Any, names: list[str]) -> list[Row]:
    """Fresh connections (first command, plus closing them at stop) and a pooled second command."""
    results: dict[str, list[Any]] = {}

    async def gather(task: str) -> int:
        results[task] = await backend.gather(_requests(names, task))
        return sum(not r.ok for r in results[task])

    fresh = await _timed(tool, len(names), functools.partial(gather, "first"))
    held = sum(x.connections_open for x in (await backend.load()).values())
    pooled = await _timed(f"{tool} pooled", len(names), functools.partial(gather, "second"))
    pooled["connections_open"] = held  # connections held open at once after the first command

    async def stop() -> int:
        await backend.stop()
        return 0

    closing = await _timed(tool, len(names), stop)
    fresh["wall_s"] = round(fresh["wall_s"] + closing["wall_s"], 3)
    fresh["client_cpu_s"] = round(fresh["client_cpu_s"] + closing["client_cpu_s"], 3)
    fresh["peak_rss_mb"] = closing["peak_rss_mb"]
    return [fresh, pooled]


async def run_sysflow_local(server: SSHD, names: list[str], processes: int = 0) -> list[Row]:
    from sysflow.actors.backends import LocalBackend

    backend = LocalBackend(processes=processes)
    await backend.start(_shards(server, names, 1))
    tool = "sysflow-local" if not processes else f"sysflow-local-p{processes}"
    return await _sysflow_rows(tool, backend, names)


async def run_sysflow_ray(server: SSHD, names: list[str]) -> list[Row]:
    import ray

    from sysflow.actors.ray_backend import RayBackend

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        object_store_memory=100 * 2**20,
    )
    try:
        backend = RayBackend()
        await backend.start(_shards(server, names, 2))
        return await _sysflow_rows("sysflow-ray", backend, names)
    finally:
        ray.shutdown()


async def run_ansible(server: SSHD, names: list[str], module: str) -> list[Row]:
    work = Path(tempfile.mkdtemp(prefix="ansible-bench-"))
    try:
        inventory = work / "inventory.ini"
        inventory.write_text(
            "[fleet]\n"
            + "".join(f"{n} ansible_host={server.address_of(n)} ansible_port={server.port}\n" for n in names)
            + f"[fleet:vars]\nansible_user=root\nansible_ssh_private_key_file={server.client_key}\n"
            "ansible_python_interpreter=/usr/bin/python3\n"
        )
        known = work / "known_hosts"
        shutil.copyfile(server.known_hosts, known)
        (work / "ansible.cfg").write_text(
            "[defaults]\nhost_key_checking = True\ngathering = explicit\nretry_files_enabled = False\n"
            f"local_tmp = {work / 'tmp'}\n"
            "[ssh_connection]\n"
            f"ssh_args = -o ControlMaster=no -o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes "
            "-o IdentitiesOnly=yes\n"
        )
        env = {**os.environ, "ANSIBLE_CONFIG": str(work / "ansible.cfg"), "ANSIBLE_HOME": str(work / "home")}
        argv = [
            "ansible",
            "all",
            "-i",
            str(inventory),
            "-m",
            module,
            "-a",
            "true",
            "-f",
            str(CONCURRENCY),
            "-o",
        ]

        async def once() -> int:
            proc = await asyncio.create_subprocess_exec(
                *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
            )
            out, _ = await proc.communicate()
            ok = sum(1 for line in out.decode().splitlines() if " | CHANGED" in line or " | SUCCESS" in line)
            return len(names) - ok

        return [await _timed(f"ansible-{module}", len(names), once)]
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def run_pyinfra(server: SSHD, names: list[str]) -> list[Row]:
    work = Path(tempfile.mkdtemp(prefix="pyinfra-bench-"))
    try:
        data = {
            "ssh_port": server.port,
            "ssh_user": "root",
            "ssh_key": str(server.client_key),
            "ssh_known_hosts_file": str(server.known_hosts),
            "ssh_strict_host_key_checking": "yes",
        }
        hosts = [(n, {"ssh_hostname": server.address_of(n), **data}) for n in names]
        inventory = work / "inventory.py"
        inventory.write_text(f"fleet = {hosts!r}\n")
        argv = ["pyinfra", str(inventory), "exec", "--parallel", str(CONCURRENCY), "-y", "--", "true"]

        async def once() -> int:
            proc = await asyncio.create_subprocess_exec(
                *argv, cwd=work, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
            )
            out, _ = await proc.communicate()
            text = out.decode(errors="replace")
            (Path(tempfile.gettempdir()) / "pyinfra-bench-last.log").write_text(text)
            return _pyinfra_failures(text, names, proc.returncode)

        return [await _timed("pyinfra", len(names), once)]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _pyinfra_failures(text: str, names: list[str], code: int | None) -> int:
    """pyinfra prints ``[host] Success`` per host in ``exec`` mode; count hosts without one."""
    ok = {n for n in names if f"[{n}] Success" in text or f"{n} Success" in text}
    if not ok and code == 0:
        return 0
    return len(names) - len(ok)


RUNNERS: dict[str, Callable[[SSHD, list[str]], Awaitable[list[Row]]]] = {
    "asyncssh": run_asyncssh,
    "sysflow-local": run_sysflow_local,
    "sysflow-local-p2": functools.partial(run_sysflow_local, processes=2),
    "sysflow-ray": run_sysflow_ray,
    "ansible-raw": functools.partial(run_ansible, module="raw"),
    "ansible-command": functools.partial(run_ansible, module="command"),
    "pyinfra": run_pyinfra,
}


# -- the driver --------------------------------------------------------------------------------------


def _run_child(tool: str, hosts: int, server_file: Path) -> list[Row]:
    argv = [sys.executable, __file__, "--runner", tool, "--hosts", str(hosts), "--server", str(server_file)]
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}  # keep Ray on 127.0.0.1
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=RUNNER_TIMEOUT, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        return [_failed_row(tool, hosts, f"timed out after {RUNNER_TIMEOUT}s")]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("[{")]
    if proc.returncode != 0 or not lines:
        return [
            _failed_row(
                tool, hosts, proc.stderr.strip().splitlines()[-3:] or f"no output, exit {proc.returncode}"
            )
        ]
    rows: list[Row] = json.loads(lines[-1])
    return rows


def _failed_row(tool: str, hosts: int, why: Any) -> Row:
    print(f"  {tool} at {hosts} hosts failed: {why}", file=sys.stderr)
    return {
        "tool": tool,
        "hosts": hosts,
        "concurrency": CONCURRENCY,
        "wall_s": None,
        "client_cpu_s": None,
        "peak_rss_mb": None,
        "failures": hosts,
        "error": str(why),
    }


def _print_table(rows: list[Row]) -> None:
    floor = {r["hosts"]: r["wall_s"] for r in rows if r["tool"] == "asyncssh" and r["wall_s"]}
    floor_cpu = {r["hosts"]: r["client_cpu_s"] for r in rows if r["tool"] == "asyncssh" and r["wall_s"]}
    pooled_floor = {r["hosts"]: r["wall_s"] for r in rows if r["tool"] == "asyncssh pooled" and r["wall_s"]}
    head = f"{'tool':<24}{'hosts':>6}{'wall s':>9}{'x raw':>8}{'cpu s':>8}{'cpu ms/host':>12}{'x raw':>7}{'rss MB':>8}{'fail':>6}"
    print(head)
    print("-" * len(head))
    for r in rows:
        if r["wall_s"] is None:
            print(f"{r['tool']:<24}{r['hosts']:>6}   failed: {r.get('error', '')}")
            continue
        base = pooled_floor if r["tool"].endswith("pooled") else floor
        ratio = r["wall_s"] / base[r["hosts"]] if base.get(r["hosts"]) else float("nan")
        per_host = 1000 * r["client_cpu_s"] / r["hosts"]
        cpu_ratio = (
            r["client_cpu_s"] / floor_cpu[r["hosts"]]
            if floor_cpu.get(r["hosts"]) and not r["tool"].endswith("pooled")
            else float("nan")
        )
        print(
            f"{r['tool']:<24}{r['hosts']:>6}{r['wall_s']:>9.2f}{ratio:>8.2f}{r['client_cpu_s']:>8.2f}"
            f"{per_host:>12.2f}{cpu_ratio:>7.2f}{r['peak_rss_mb']:>8.0f}{r['failures']:>6}"
        )
    print(
        "x raw: wall (and client CPU) over raw asyncssh at the same size; pooled rows over 'asyncssh pooled'."
    )


def _driver(args: argparse.Namespace) -> None:
    sizes = (
        [int(x) for x in args.hosts.split(",")] if args.hosts else ([50] if args.quick else [100, 500, 1000])
    )
    tools = args.tools.split(",") if args.tools else list(TOOLS)
    unknown = set(tools) - set(RUNNERS)
    if unknown:
        raise SystemExit(f"unknown tools: {', '.join(sorted(unknown))}")
    work = Path(tempfile.mkdtemp(prefix="ssh-fleet-"))
    rows: list[Row] = []
    try:
        with sshd_for_benchmark(work / "sshd") as server:
            server_file = save_sshd(server, work / "server.json")
            for hosts in sizes:
                for tool in tools:
                    print(f"... {tool} on {hosts} hosts", file=sys.stderr, flush=True)
                    rows += _run_child(tool, hosts, server_file)
                    time.sleep(args.pause)  # let TIME_WAIT and sshd's children settle between tools
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _print_table(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


def _runner(args: argparse.Namespace) -> None:
    server = load_sshd(Path(args.server))
    names = host_names(int(args.hosts))
    rows = asyncio.run(RUNNERS[args.runner](server, names))
    print(json.dumps(rows))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", help="write the rows to this file")
    p.add_argument("--hosts", help="comma-separated fleet sizes (default 100,500,1000; --quick: 50)")
    p.add_argument("--quick", action="store_true", help="one small fleet, for a smoke run")
    p.add_argument("--tools", help=f"comma-separated subset of {','.join(TOOLS)}")
    p.add_argument("--pause", type=float, default=2.0, help="seconds between tools (default 2)")
    p.add_argument("--runner", help=argparse.SUPPRESS)
    p.add_argument("--server", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.runner:
        _runner(args)
    else:
        _driver(args)


if __name__ == "__main__":
    main()
