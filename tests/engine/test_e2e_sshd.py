"""End to end on real OpenSSH: the brief's Python example against 21 loopback hosts of the test sshd.

The example runs as the brief writes it (``sysflow.Engine(inventory, auth).execute(workflow)``,
backup → update → upgrade → restart → verify, four waves, a window per group, 10 / 5 / 2 s
parallelism, ``auto_rollback``), with commands that leave evidence on disk instead of patching the
machine. Host names resolve only through an OpenSSH client config file; host keys are checked
against known_hosts; the key comes from ``SSHAuth.from_keyfile``.

Every host of the test sshd is the same machine, so a command learns which host it runs as from
``$SSH_CONNECTION`` (server address and port): each inventory host gets its own (loopback alias,
port) pair (the session sshd serves 16 aliases; a second sshd started by the same helper serves
16 more on another port), and each command appends ``<task> <epoch-ns>`` to ``<root>/<alias>_<port>/log``.
Per-host order and the wave barriers are then read back from the files (the spacing of host
starts from the engine's admission events: remote timestamps also carry each connect's latency).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sysflow.actors.auth import SSHAuth
from sysflow.engine.engine import Engine
from sysflow.engine.events import EventKind, RecordingObserver
from sysflow.engine.result import HostOutcome, RunResult
from sysflow.engine.states import RunStatus
from sysflow.model.inventory import Inventory
from sysflow.model.workflow import MaintenanceWorkflow
from tests.fixtures.sshd import SSHD, running_sshd

pytestmark = [pytest.mark.ssh, pytest.mark.slow]

WEB = [f"web{i:02d}.example.com" for i in range(1, 12)]
DB = [f"db{i:02d}.example.com" for i in range(1, 6)]
CACHE = [f"cache{i:02d}.example.com" for i in range(1, 6)]
HOSTS = WEB + DB + CACHE  # 21 hosts
WAVES = [WEB[:1], WEB[1:], DB, CACHE]
WEB_CHAIN = ["backup", "update_repos", "upgrade_packages", "restart_services", "verify_web"]
OTHER_CHAIN = WEB_CHAIN[:3]
OLD, NEW = "3.0.11-1~deb12u2", "3.0.15-1~deb12u1"


@dataclass(frozen=True)
class Fleet:
    """Where each host really is, and the client files that say so."""

    ssh_config: Path
    known_hosts: Path
    key: Path
    dirs: dict[str, str]  # host -> "<alias>_<port>", the directory its commands write to


@pytest.fixture(scope="module")
def second_sshd(sshd: SSHD, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHD]:
    """16 more destinations: the same helper on another port, trusting the session's client key."""
    with running_sshd(tmp_path_factory.mktemp("sshd2")) as server:
        authorized = server.workdir / "authorized_keys"
        pub = Path(f"{sshd.client_key}.pub").read_text()
        authorized.write_text(authorized.read_text() + pub)
        yield server


@pytest.fixture(scope="module")
def fleet(sshd: SSHD, second_sshd: SSHD, tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    work = tmp_path_factory.mktemp("e2e-client")
    known = work / "known_hosts"
    known.write_text(sshd.known_hosts.read_text() + second_sshd.known_hosts.read_text())
    blocks, dirs = [], {}
    for i, host in enumerate(HOSTS):
        server = (sshd, second_sshd)[i // len(sshd.aliases)]
        alias = server.aliases[i % len(server.aliases)]
        dirs[host] = f"{alias}_{server.port}"
        blocks.append(
            f"Host {host}\n  HostName {alias}\n  Port {server.port}\n  User {server.username}\n"
            f"  IdentityFile {sshd.client_key}\n  UserKnownHostsFile {known}\n"
            "  StrictHostKeyChecking yes\n"
        )
    config = work / "ssh_config"
    config.write_text("\n".join(blocks))
    return Fleet(config, known, sshd.client_key, dirs)


def _here(root: Path) -> str:
    """Shell: the directory of the host this command runs on (from the server address and port)."""
    return f"D={root}/$(echo $SSH_CONNECTION | cut -d' ' -f3,4 | tr ' ' _)"


def _log(root: Path, task: str, then: str = "") -> str:
    stamp = f'mkdir -p $D && echo "{task} $(date +%s%N)" >> $D/log'
    return f"{_here(root)}; {stamp}" + (f" && {then}" if then else "")


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def brief_example(root: Path) -> tuple[Inventory, MaintenanceWorkflow]:
    """The brief's example, its commands writing evidence under ``root`` instead of patching."""
    inventory = Inventory()
    inventory.add_group("web_servers", WEB)
    inventory.add_group("db_servers", DB)
    inventory.add_group("cache_servers", CACHE)
    dpkg = f"ii  openssl  {NEW}  amd64  Secure Sockets Layer toolkit"
    workflow = MaintenanceWorkflow("os_patching")
    workflow.add_task(
        "backup",
        _log(root, "backup", "tar -czf $D/$(hostname)-$(date +%Y%m%d).tar.gz -C $D log"),
        targets=["*"],
    )
    workflow.add_task("update_repos", _log(root, "update_repos"), targets=["*"])
    workflow.add_task(
        "upgrade_packages",
        _log(root, "upgrade_packages", f"echo '{dpkg}' > $D/dpkg"),
        targets=["*"],
        depends_on=["update_repos"],
        rollback=_log(root, "rollback", "rm -f $D/dpkg"),
    )
    workflow.add_task(
        "restart_services",
        _log(root, "restart_services", "echo OK > $D/health"),
        targets=["web_servers"],
        depends_on=["upgrade_packages"],
    )
    workflow.add_task(
        "verify_web",
        _log(root, "verify_web", "test ! -e $D/broken && grep -q 'OK' $D/health"),
        targets=["web_servers"],
        depends_on=["restart_services"],
    )
    workflow.set_progressive_execution(
        {
            "groups": [WEB[:1], WEB[1:], ["db_servers"], ["cache_servers"]],
            "verification_tasks": ["verify_web"],
            "auto_rollback": True,
        }
    )
    installed = f"{_here(root)}; cat $D/dpkg 2>/dev/null || echo 'ii  openssl  {OLD}  amd64  Secure Sockets Layer toolkit'"
    workflow.add_verification(
        "verify_package_versions",
        {
            "before_tasks": ["backup"],
            "after_tasks": ["upgrade_packages"],
            "commands": {"package_versions": installed},
            "comparisons": {
                "package_versions": {
                    "type": "regex_match",
                    "pattern": r"ii\s+openssl\s+(\S+)",
                    "expected_change": "version_increase",
                }
            },
        },
    )
    now = datetime.now(UTC).replace(microsecond=0)
    workflow.set_maintenance_window(
        {
            "web_servers": f"{_iso(now - timedelta(hours=1))}/{_iso(now + timedelta(hours=2))}",
            "db_servers": f"{_iso(now - timedelta(minutes=5))}/{_iso(now + timedelta(hours=3))}",
            "cache_servers": f"{_iso(now - timedelta(hours=2))}/{_iso(now + timedelta(hours=1))}",
        }
    )
    workflow.set_parallelization(
        {"max_parallel_servers": 10, "max_parallel_per_group": 5, "delay_between_servers": "2s"}
    )
    return inventory, workflow


def _execute(fleet: Fleet, root: Path) -> tuple[RunResult, RecordingObserver]:
    inventory, workflow = brief_example(root)
    auth = SSHAuth.from_keyfile(fleet.key)
    events = RecordingObserver()
    engine = Engine(
        inventory, auth, ssh_config=fleet.ssh_config, known_hosts=fleet.known_hosts, observers=[events]
    )
    return engine.execute(workflow), events


def _lines(root: Path, fleet: Fleet, host: str) -> list[tuple[str, int]]:
    log = root / fleet.dirs[host] / "log"
    if not log.exists():
        return []
    return [(task, int(ns)) for task, ns in (line.split() for line in log.read_text().splitlines())]


def test_the_brief_runs_end_to_end_on_real_sshd(fleet: Fleet, tmp_path: Path) -> None:
    result, events = _execute(fleet, tmp_path)

    assert result.status is RunStatus.COMPLETED, result.reason
    assert sorted(result.successful_servers) == sorted(HOSTS)
    assert result.failed_servers == []
    report = result.verification_results
    assert report.outcome.value == "pass"
    assert sorted(h.host for h in report.hosts) == sorted(HOSTS)
    assert all(h.outcome.value == "pass" and h.verdicts for h in report.hosts)
    assert [g["passed"] for g in result.gates] == [True] * 4
    lines = {h: _lines(tmp_path, fleet, h) for h in HOSTS}
    # per-host order is the DAG's, each task ran once, on its own host
    for host in HOSTS:
        assert [t for t, _ in lines[host]] == (WEB_CHAIN if host in WEB else OTHER_CHAIN), host
        assert (tmp_path / fleet.dirs[host] / "dpkg").read_text().split()[2] == NEW
    # wave barriers: every command of a wave ran before any command of the next
    for earlier, later in itertools.pairwise(WAVES):
        assert max(ns for h in earlier for _, ns in lines[h]) < min(ns for h in later for _, ns in lines[h])
    # delay_between_servers: hosts were admitted 2 s apart (the engine's own record; the remote
    # timestamps also carry each host's connect time, which varies with the machine's load)
    firsts = sorted(_first_admissions(events).values())
    assert len(firsts) == len(HOSTS)
    assert all(b - a >= timedelta(seconds=1.99) for a, b in itertools.pairwise(firsts))
    # never more than 10 hosts, nor 5 web hosts, admitted at once (the engine's own record)
    assert max(_in_flight(events, HOSTS)) <= 10
    assert max(_in_flight(events, WEB)) <= 5
    # every command started inside its group's window
    for rec in result.ops.values():
        assert rec.start is not None and result.started <= rec.start <= result.ended


def _first_admissions(events: RecordingObserver) -> dict[str, datetime]:
    firsts: dict[str, datetime] = {}
    for e in events.events:
        if e.kind is EventKind.OP_PROGRESS and e.data.get("step") == "admitted" and e.host:
            firsts.setdefault(e.host, e.at)
    return firsts


def _in_flight(events: RecordingObserver, hosts: list[str]) -> list[int]:
    """Hosts with an operation between admission and its end, after each such event."""
    running: set[str] = set()
    counts = [0]
    for e in events.events:
        if e.host not in hosts:
            continue
        if e.kind is EventKind.OP_PROGRESS and e.data.get("step") == "admitted":
            running.add(e.host)
        elif e.kind is EventKind.OP_FINISHED and not e.data.get("rollback"):
            running.discard(e.host)
        counts.append(len(running))
    return counts


def test_a_host_failing_verification_stops_the_rollout_and_rolls_its_wave_back(
    fleet: Fleet, tmp_path: Path
) -> None:
    broken = WEB[2]  # in the second wave
    (tmp_path / fleet.dirs[broken]).mkdir(parents=True)
    (tmp_path / fleet.dirs[broken] / "broken").touch()

    result, events = _execute(fleet, tmp_path)

    assert result.status is RunStatus.ROLLED_BACK, result.reason
    assert broken in result.failed_servers
    assert "wave 2" in result.reason
    assert result.ops[f"verify_web@{broken}"].error == "exit status 1"
    lines = {h: _lines(tmp_path, fleet, h) for h in HOSTS}
    # no later wave touched
    assert all(lines[h] == [] for h in DB + CACHE)
    assert all(result.hosts[h] is HostOutcome.NOT_STARTED for h in DB + CACHE)
    # the first wave kept its upgrade; every host of the failed wave that upgraded was rolled back
    assert "rollback" not in [t for t, _ in lines[WEB[0]]]
    upgraded = [h for h in WEB[1:] if "upgrade_packages" in [t for t, _ in lines[h]]]
    assert broken in upgraded
    for host in upgraded:
        tasks = [t for t, _ in lines[host]]
        assert tasks[-1] == "rollback", host
        assert not (tmp_path / fleet.dirs[host] / "dpkg").exists()
        assert result.hosts[host] is HostOutcome.ROLLED_BACK
    rollback = next(e for e in events.events if e.kind is EventKind.ROLLBACK_STARTED)
    assert rollback.wave == 1
