"""Benchmark: the engine's throughput on the simulator, and a real rolling run against raw asyncssh and Ansible.

(a) ``sim``: the full engine (compile, calendar, admission, waves, gates, records, events) drives a
    simulated fleet of 10,000 hosts × 5 tasks on a virtual-time loop, rolling ``serial: [1, "10%",
    "100%"]`` with 200 hosts at once. Reported: wall and CPU seconds of ``engine.run`` and operations
    per wall second (``sim_ops_per_s``; target ≥ 10,000) and per CPU second.
(b) ``ssh``: the same 5-task workflow rolling in waves (1 host, 10 %, the rest), 100 hosts at once,
    on 500 loopback hosts of the test sshd (``tests/fixtures/sshd.py`` via ``benchmarks/_sshd.py``;
    host names resolved through an OpenSSH client config, host keys checked), side by side in one
    run with
    * ``asyncssh``: raw asyncssh, one connection per host running the 5 commands, 100 hosts at
      once, the same waves with a barrier between them (the floor);
    * ``ansible``: the equivalent playbook (``serial: [1, "10%", "100%"]``, ``forks: 100``, the
      ``raw`` module, host key checking on, gather_facts off).
    sysflow and raw asyncssh alternate ``--repeat`` times; medians are compared.
    ``ssh_ratio_to_raw`` = sysflow wall / asyncssh wall (target ≤ 1.15);
    ``ansible_ratio`` = Ansible wall / sysflow wall (target ≥ 10).
    With ``--backends`` the same run also goes through ``LocalBackend(processes=2)`` and a local
    2-node Ray cluster (127.0.0.1, one ``segment:`` resource per node), each beside raw asyncssh.

    python benchmarks/engine_scale.py [--quick] [--json FILE] [--parts sim,ssh] [--profile]

``--quick``: 1,000 simulated hosts, 100 real hosts, one repetition.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import itertools
import json
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
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

SIM_CHAIN = (
    ("backup", "tar -czf /backup/etc.tar.gz /etc"),
    ("update_repos", "apt-get update"),
    ("upgrade_packages", "apt-get -y upgrade"),
    ("restart_services", "systemctl restart nginx"),
    ("verify_web", "curl -s http://localhost/health | grep -q OK"),
)
# The same steps on the test sshd, harmless: nothing is installed or restarted on this machine.
SSH_CHAIN = (
    ("backup", "tar -czf /dev/null /etc/hostname"),
    ("update_repos", "echo update"),
    ("upgrade_packages", "echo upgrade"),
    ("restart_services", "echo restart"),
    ("verify_web", "echo OK | grep -q OK"),
)
SERIAL: list[int | str] = [1, "10%", "100%"]
SIM_CONCURRENCY = 200
SSH_CONCURRENCY = 100  # sysflow max_parallel_servers = asyncssh semaphore = Ansible forks
SIM_HOSTS, SIM_HOSTS_QUICK = 10_000, 1_000
SSH_HOSTS, SSH_HOSTS_QUICK = 500, 100
TIMEOUT = 1800.0  # seconds per command

Row = dict[str, Any]


def workflow(chain: Sequence[tuple[str, str]], concurrency: int) -> MaintenanceWorkflow:
    """The brief's 5-task chain, rolling (1 host, 10 %, the rest), ``concurrency`` hosts at once."""
    wf = MaintenanceWorkflow("engine_scale")
    previous: str | None = None
    for task, command in chain:
        wf.add_task(task, command, targets=["*"], depends_on=[previous] if previous else [], timeout=TIMEOUT)
        previous = task
    wf.set_progressive_execution({"strategy": "rolling", "serial": SERIAL})
    wf.set_parallelization({"max_parallel_servers": concurrency})
    return wf


def waves_of(names: Sequence[str]) -> list[list[str]]:
    """The rolling batches ``[1, 10 %, the rest]`` as the benchmark's other tools run them."""
    first, tenth = 1, max(1, len(names) // 10)
    return [list(names[:first]), list(names[first : first + tenth]), list(names[first + tenth :])]


# -- (a) the simulator ---------------------------------------------------------------------------


def sim_inventory(hosts: int) -> Inventory:
    """``hosts`` hosts in 20 groups across two datacenters (as benchmarks/sim_scale.py)."""
    inventory = Inventory()
    groups = 20
    for g in range(groups):
        names = [f"g{g:02d}-h{i:05d}" for i in range(g, hosts, groups)]
        inventory.add_group(f"group{g:02d}", names, vars={"datacenter": "ams" if g % 2 else "fra"})
    return inventory


async def _sim_run(hosts: int, seed: int) -> Row:
    from sysflow.sim.fleet import SimFleet
    from sysflow.sim.loop import current_virtual_clock
    from sysflow.sim.profile import SimProfile
    from sysflow.sim.transport import SimTransport

    inventory = sim_inventory(hosts)
    clock = current_virtual_clock()
    fleet = SimFleet(inventory, SimProfile(), seed, start=clock.start)
    transport = SimTransport(fleet, clock, record=False)
    engine = Engine(inventory, transport=transport, clock=clock)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    result = await engine.run(workflow(SIM_CHAIN, SIM_CONCURRENCY))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    ops = sum(1 for r in result.ops.values() if r.start is not None)
    return {
        "part": "sim",
        "tool": "sysflow-engine",
        "hosts": hosts,
        "operations": ops,
        "status": result.status.value,
        "failed_hosts": len(result.failed_servers),
        "simulated_h": round((result.ended - result.started).total_seconds() / 3600, 3),
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "sim_ops_per_s": round(ops / wall),
        "ops_per_cpu_s": round(ops / cpu),
    }


def run_sim(hosts: int, seed: int, profile: bool) -> Row:
    from sysflow.sim.loop import run_virtual

    if not profile:
        return run_virtual(_sim_run(hosts, seed))
    prof = cProfile.Profile()
    row: Row = prof.runcall(run_virtual, _sim_run(hosts, seed))
    pstats.Stats(prof).sort_stats(os.environ.get("SF_PROFILE_SORT", "tottime")).print_stats(
        int(os.environ.get("SF_PROFILE_TOP", "25"))
    )
    return row


# -- (b) the test sshd ---------------------------------------------------------------------------


async def _timed(tool: str, hosts: int, work: Callable[[], Awaitable[int]]) -> Row:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    failed = await work()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {
        "part": "ssh",
        "tool": tool,
        "hosts": hosts,
        "operations": hosts * len(SSH_CHAIN),
        "failed_hosts": failed,
        "wall_s": round(wall, 3),
        "cpu_s_client": round(cpu, 3),
    }


def ssh_inventory(server: Any, names: list[str]) -> Inventory:
    """The fleet with Ansible-style connection variables (what the Ansible run is given too)."""
    inventory = Inventory()
    for name in names:
        inventory.add_host(
            name,
            segment="seg-a" if int(name[1:]) % 2 else "seg-b",  # two network segments, one per Ray node
            ansible_host=server.address_of(name),
            ansible_port=server.port,
            ansible_user=server.username,
            ansible_ssh_private_key_file=str(server.client_key),
        )
    inventory.add_group("fleet", names)
    return inventory


async def run_sysflow(
    server: Any, names: list[str], config: Path | None, backend: str = "local", address: str | None = None
) -> Row:
    """The engine over SSH; with ``config``, names resolve through that OpenSSH client config
    (one parse per host: see ``--ssh-config``), else through the inventory's variables (and an
    empty client config, so no ``~/.ssh/config`` is read). ``backend``: ``local`` (the engine's
    in-process HostPools), ``local=2`` (two worker processes) or ``ray`` (the cluster at ``address``),
    as ``sysflow run --backend`` builds them; the fleet is split into two network segments."""
    from sysflow.actors.auth import SSHAuth
    from sysflow.cli.backend import BackendChoice, SSHShardFactory, runner_for

    inventory = Inventory()
    inventory.add_group("fleet", names)
    if config is None:
        inventory = ssh_inventory(server, names)
    empty = server.workdir / "empty_ssh_config"
    runner = None
    if backend != "local":
        choice = BackendChoice("ray", address=address) if backend == "ray" else BackendChoice("local", 2)
        factory = SSHShardFactory(inventory, config or empty, server.client_key, server.known_hosts)
        runner = runner_for(choice, inventory, names, factory)
        await runner.start()
    engine = Engine(
        inventory,
        SSHAuth.from_keyfile(server.client_key),
        ssh_config=config if config is not None else empty,
        known_hosts=server.known_hosts,
        runner=runner,
    )

    async def work() -> int:
        result = await engine.run(workflow(SSH_CHAIN, SSH_CONCURRENCY))
        return len(names) - len(result.successful_servers)

    tool = "sysflow" if config is None else "sysflow+ssh_config"
    try:
        return await _timed(tool if backend == "local" else f"sysflow-{backend}", len(names), work)
    finally:
        if runner is not None:
            await runner.stop()


async def run_asyncssh(server: Any, names: list[str]) -> Row:
    """The floor: per wave, one connection per host running the chain, 100 hosts at once."""
    import asyncssh

    known = asyncssh.read_known_hosts(str(server.known_hosts))
    key = asyncssh.read_private_key(str(server.client_key))
    sem = asyncio.Semaphore(SSH_CONCURRENCY)

    async def host(name: str) -> bool:
        async with sem:
            try:
                async with asyncssh.connect(
                    server.address_of(name),
                    port=server.port,
                    username=server.username,
                    client_keys=[key],
                    known_hosts=known,
                    config=None,
                ) as conn:
                    for _task, command in SSH_CHAIN:
                        if (await conn.run(command, timeout=TIMEOUT)).exit_status != 0:
                            return False
                    return True
            except (OSError, asyncssh.Error):
                return False

    async def work() -> int:
        failed = 0
        for wave in waves_of(names):
            failed += sum(not ok for ok in await asyncio.gather(*(host(n) for n in wave)))
        return failed

    return await _timed("asyncssh", len(names), work)


def _ansible_files(server: Any, names: list[str], work: Path) -> tuple[Path, dict[str, str]]:
    (work / "inventory.ini").write_text(
        "[fleet]\n"
        + "".join(f"{n} ansible_host={server.address_of(n)} ansible_port={server.port}\n" for n in names)
        + f"[fleet:vars]\nansible_user={server.username}\nansible_ssh_private_key_file={server.client_key}\n"
    )
    tasks = "".join(f"    - name: {task}\n      raw: {json.dumps(cmd)}\n" for task, cmd in SSH_CHAIN)
    playbook = work / "playbook.yml"
    playbook.write_text(
        f"- hosts: fleet\n  gather_facts: false\n  serial: {json.dumps(SERIAL)}\n  tasks:\n{tasks}"
    )
    (work / "ansible.cfg").write_text(
        f"[defaults]\nforks = {SSH_CONCURRENCY}\nhost_key_checking = True\nretry_files_enabled = False\n"
        f"local_tmp = {work / 'tmp'}\ninventory = {work / 'inventory.ini'}\n"
        "[ssh_connection]\n"
        f"ssh_args = -o ControlMaster=auto -o ControlPersist=30s -o UserKnownHostsFile={server.known_hosts} "
        "-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes\n"
        f"control_path_dir = {work / 'cp'}\n"
    )
    env = {**os.environ, "ANSIBLE_CONFIG": str(work / "ansible.cfg"), "ANSIBLE_HOME": str(work / "home")}
    return playbook, env


async def run_ansible(server: Any, names: list[str]) -> Row:
    if shutil.which("ansible-playbook") is None:
        return {"part": "ssh", "tool": "ansible", "hosts": len(names), "error": "ansible-playbook not found"}
    work = Path(tempfile.mkdtemp(prefix="sysflow-ansible-"))
    try:
        playbook, env = _ansible_files(server, names, work)

        async def once() -> int:
            proc = await asyncio.create_subprocess_exec(
                "ansible-playbook",
                str(playbook),
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
            out, _ = await proc.communicate()
            recap = [ln for ln in out.decode().splitlines() if " : ok=" in ln]
            return len(names) - sum(1 for ln in recap if "failed=0" in ln and "unreachable=0" in ln)

        return await _timed("ansible", len(names), once)
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def run_backends(server: Any, names: list[str], repeat: int) -> list[Row]:
    """The same run through two worker processes and through a local 2-node Ray cluster (127.0.0.1),
    each node offering one segment; each leg next to a raw asyncssh run, medians compared."""
    from tests.fixtures.ray_cluster import ray_cluster

    rows: list[Row] = []
    for _ in range(repeat):
        rows.append(await run_asyncssh(server, names))
        print_row(rows[-1])
        rows.append(await run_sysflow(server, names, None, "local=2"))
        print_row(rows[-1])
    with ray_cluster([{"segment:seg-a": 1}, {"segment:seg-b": 1}]) as cluster:
        for _ in range(repeat):
            rows.append(await run_asyncssh(server, names))
            print_row(rows[-1])
            rows.append(await run_sysflow(server, names, None, "ray", cluster.address))
            print_row(rows[-1])
    return rows


async def run_ssh(
    hosts: int, repeat: int, ansible: bool, with_config: bool, backends: bool = False
) -> list[Row]:
    from benchmarks._sshd import sshd_for_benchmark
    from tests.fixtures.sshd import host_names

    names = host_names(hosts)
    work = Path(tempfile.mkdtemp(prefix="sysflow-engine-scale-"))
    rows: list[Row] = []
    try:
        with sshd_for_benchmark(work / "sshd") as server:
            (server.workdir / "empty_ssh_config").write_text("")
            config = server.write_client_config(work / "ssh_config", names)
            for _ in range(repeat):
                rows.append(await run_asyncssh(server, names))
                print_row(rows[-1])
                rows.append(await run_sysflow(server, names, None))
                print_row(rows[-1])
            if with_config:
                rows.append(await run_sysflow(server, names, config))
                print_row(rows[-1])
            if backends:
                rows += await run_backends(server, names, repeat)
            if ansible:
                rows.append(await run_ansible(server, names))
                print_row(rows[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


# -- report --------------------------------------------------------------------------------------


def summary(rows: list[Row]) -> Row:
    def median(tool: str) -> float | None:
        walls = [r["wall_s"] for r in rows if r.get("tool") == tool and "wall_s" in r]
        return statistics.median(walls) if walls else None

    sim = next((r for r in rows if r["part"] == "sim"), None)

    def paired(tool: str) -> float | None:
        """Median of tool wall / the raw asyncssh run just before it (pairs share machine load)."""
        ratios = [
            b["wall_s"] / a["wall_s"]
            for a, b in itertools.pairwise(rows)
            if a.get("tool") == "asyncssh" and b.get("tool") == tool and a.get("wall_s") and "wall_s" in b
        ]
        return round(statistics.median(ratios), 3) if ratios else None

    sysflow, raw, ansible = median("sysflow"), median("asyncssh"), median("ansible")
    return {
        "part": "summary",
        "sim_ops_per_s": sim["sim_ops_per_s"] if sim else None,
        "sim_ops_per_cpu_s": sim["ops_per_cpu_s"] if sim else None,
        "ssh_local2_ratio_to_raw": paired("sysflow-local=2"),
        "ssh_ray2_ratio_to_raw": paired("sysflow-ray"),
        "ssh_sysflow_wall_s": sysflow,
        "ssh_asyncssh_wall_s": raw,
        "ssh_ansible_wall_s": ansible,
        "ssh_ratio_to_raw": paired("sysflow"),
        "ansible_ratio": round(ansible / sysflow, 2) if sysflow and ansible else None,
        "targets": {"sim_ops_per_s": ">= 10000", "ssh_ratio_to_raw": "<= 1.15", "ansible_ratio": ">= 10"},
    }


def print_row(row: Row) -> None:
    if row["part"] == "summary":
        print("summary: " + ", ".join(f"{k}={v}" for k, v in row.items() if k not in ("part", "targets")))
        return
    if "error" in row:
        print(f"{row['part']:>4} {row['tool']:>15} {row['hosts']:>6}  {row['error']}")
        return
    extra = f"{row['sim_ops_per_s']:>8} ops/s" if "sim_ops_per_s" in row else ""
    print(
        f"{row['part']:>4} {row['tool']:>15} {row['hosts']:>6} hosts {row['operations']:>7} ops "
        f"{row['failed_hosts']:>4} failed {row['wall_s']:>8.2f} s wall {extra}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 simulated and 100 real hosts, once")
    parser.add_argument("--json", type=Path, help="write the rows here")
    parser.add_argument("--parts", default="sim,ssh", help="sim, ssh or both")
    parser.add_argument("--repeat", type=int, default=None, help="sysflow/asyncssh repetitions (default 3)")
    parser.add_argument("--no-ansible", action="store_true")
    parser.add_argument(
        "--ssh-config",
        action="store_true",
        help="also run sysflow resolving names through an OpenSSH client config of every host",
    )
    parser.add_argument(
        "--backends", action="store_true", help="also run through LocalBackend(processes=2) and 2-node Ray"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="cProfile the simulated run (top 25)")
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    rows: list[Row] = []
    if "sim" in parts:
        rows.append(run_sim(SIM_HOSTS_QUICK if args.quick else SIM_HOSTS, args.seed, args.profile))
        print_row(rows[-1])
    if "ssh" in parts:
        repeat = args.repeat or (1 if args.quick else 3)
        hosts = SSH_HOSTS_QUICK if args.quick else SSH_HOSTS
        rows += asyncio.run(run_ssh(hosts, repeat, not args.no_ansible, args.ssh_config, args.backends))
    rows.append(summary(rows))
    print_row(rows[-1])
    if args.json:
        args.json.write_text(json.dumps({"benchmark": "engine_scale", "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
