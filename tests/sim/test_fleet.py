"""Simulated hosts: rules change state, read-only rules answer from it, durations per group."""

from __future__ import annotations

import pytest

from sysflow.model.inventory import Inventory
from sysflow.sim.fleet import SimFleet
from sysflow.sim.profile import Effect, Failure, Fixed, LogNormal, Rule, SimProfile
from sysflow.sim.rules import DEFAULT_RULES, Reply, grep_filter, pipeline
from sysflow.sim.state import DEFAULT_KERNEL, HostState

DPKG = "dpkg -l | grep -E 'openssl|bash|nginx'"


def run(fleet: SimFleet, host: str, command: str, t: float = 0.0) -> Reply:
    """Run a command to completion on the fleet, outside any clock."""
    out = fleet.begin(host, command, t)
    return fleet.finish(out, t + out.duration)


def versions(reply: Reply) -> dict[str, str]:
    return {line.split()[1]: line.split()[2] for line in reply.stdout.splitlines()}


def test_upgrade_bumps_versions_after_update(inventory: Inventory) -> None:
    fleet = SimFleet(inventory, seed=1)
    before = versions(run(fleet, "web1", DPKG))
    assert run(fleet, "web1", "sudo apt-get -y upgrade").exit_status == 0
    assert versions(run(fleet, "web1", DPKG)) == before  # nothing known to upgrade yet
    run(fleet, "web1", "apt-get update")
    run(fleet, "web1", "DEBIAN_FRONTEND=noninteractive apt-get -y -o Dpkg::Options::=--force-confold upgrade")
    after = versions(run(fleet, "web1", DPKG))
    assert after["openssl"] == "3.0.15-1~deb12u1" != before["openssl"]
    assert after["nginx"] == "1.22.1-9+deb12u1"
    assert after["bash"] == before["bash"]
    assert versions(run(fleet, "web2", DPKG)) == before  # other hosts untouched


def test_broken_upgrade_leaves_the_service_down_until_rollback(inventory: Inventory) -> None:
    fleet = SimFleet(inventory, SimProfile(failure_probability={"upgrade_packages": 1.0}))
    run(fleet, "db1", "tar czf /var/backups/etc.tgz /etc")
    run(fleet, "db1", "apt-get update")
    up = run(fleet, "db1", "apt-get -y upgrade")
    assert up.exit_status == 100
    assert "dpkg returned an error" in up.stderr
    assert run(fleet, "db1", "systemctl is-active nginx") == Reply(3, "failed\n")
    assert run(fleet, "db1", "systemctl restart nginx").exit_status == 1
    assert run(fleet, "db1", "curl -fsS http://localhost/").exit_status == 7
    assert run(fleet, "db1", "/usr/local/bin/rollback --from /var/backups").exit_status == 0
    assert run(fleet, "db1", "systemctl restart nginx.service").exit_status == 0
    assert run(fleet, "db1", "systemctl is-active nginx ssh") == Reply(0, "active\nactive\n")
    assert run(fleet, "db1", "curl -fsS http://localhost/") == Reply(0, "OK\n")
    assert run(fleet, "db1", "dpkg-query -W -f='${Version}' openssl").stdout == "3.0.11-1~deb12u2"


def test_reboot_brings_the_new_kernel(inventory: Inventory) -> None:
    fleet = SimFleet(inventory)
    run(fleet, "web1", "apt-get update")
    run(fleet, "web1", "apt-get -y dist-upgrade")
    assert run(fleet, "web1", "uname -r").stdout == f"{DEFAULT_KERNEL}\n"
    run(fleet, "web1", "sudo systemctl reboot", t=100)
    assert fleet.connect_fault("web1", 150) is not None
    assert fleet.connect_fault("web1", 200) is None
    assert run(fleet, "web1", "uname -r").stdout == "6.1.0-119-amd64\n"
    assert fleet.state("web1").reboots == 1


def test_stop_and_start_services(inventory: Inventory) -> None:
    fleet = SimFleet(inventory)
    run(fleet, "web1", "systemctl stop nginx")
    assert run(fleet, "web1", "systemctl is-active nginx").exit_status == 3
    assert run(fleet, "web1", "curl localhost").exit_status == 7
    run(fleet, "web1", "systemctl start nginx")
    assert run(fleet, "web1", "systemctl is-active --quiet nginx").exit_status == 0
    assert run(fleet, "web1", "systemctl is-active").exit_status == 3
    assert run(fleet, "web1", "systemctl is-active unknown").stdout == "inactive\n"


def test_read_only_responders(inventory: Inventory) -> None:
    fleet = SimFleet(inventory)
    assert run(fleet, "lb1", "uname -a").stdout.startswith(f"Linux lb1 {DEFAULT_KERNEL} ")
    assert run(fleet, "lb1", "uname").stdout == "Linux\n"
    assert "VERSION_CODENAME=bookworm" in run(fleet, "lb1", "cat /etc/os-release").stdout
    missing = run(fleet, "lb1", "cat /etc/nope")
    assert (missing.exit_status, missing.stderr) == (1, "cat: /etc/nope: No such file or directory\n")
    q = run(fleet, "lb1", "dpkg-query -W openssl bash")
    assert q.stdout == "openssl\t3.0.11-1~deb12u2\nbash\t5.2.15-2+b2\n"
    q = run(fleet, "lb1", "dpkg-query --showformat='${Package}=${Version}\\n' -W nginx")
    assert q.stdout == "nginx=1.22.1-9\n"
    q = run(fleet, "lb1", "dpkg-query -W -f '${db:Status-Abbrev}${binary:Package}\\n'")
    assert q.stdout.splitlines()[0] == "ii bash"
    q = run(fleet, "lb1", "dpkg-query -W nosuch")
    assert (q.exit_status, q.stderr) == (1, "dpkg-query: no packages found matching nosuch\n")
    assert run(fleet, "lb1", "dpkg --list").stdout.startswith("Desired=")


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("dpkg -l | grep -c ^ii", Reply(0, "5\n")),
        ("dpkg -l | grep -q openssl", Reply(0, "")),
        ("dpkg -l | grep -q nosuch", Reply(1, "")),
        ("dpkg -l | grep ^ii | grep -v -E 'bash|libc|linux|nginx'", None),
        ("dpkg -l | grep -iw OPENSSL | grep -F 3.0", None),
        ("dpkg -l | grep", Reply(2, "", "Usage: grep [OPTION]... PATTERNS [FILE]...\n")),
        ("dpkg -l | sort | grep -c nginx", Reply(0, "1\n")),
        ("dpkg -l | grep -c nginx -", Reply(0, "1\n")),
    ],
)
def test_grep_stages_filter_output(inventory: Inventory, command: str, expected: Reply | None) -> None:
    reply = run(SimFleet(inventory), "web1", command)
    if expected is None:
        assert [ln.split()[1] for ln in reply.stdout.splitlines()] == ["openssl"]
    else:
        assert reply == expected


def test_pipeline_parsing() -> None:
    assert pipeline("dpkg -l | grep -E 'a|b' && echo x") == [["dpkg", "-l"], ["grep", "-E", "a|b"]]
    assert pipeline('echo "open') == [["echo", '"open']]
    assert grep_filter("echo hi", Reply(0, "hi\n")) == Reply(0, "hi\n")


def test_custom_rules_templates_and_failures(inventory: Inventory) -> None:
    profile = SimProfile(
        rules=[
            Rule(
                name="deploy",
                match=r"^deploy (?P<app>\w+)",
                duration=Fixed(seconds=45),
                stdout="{app} on {host} ({vars[datacenter]}) openssl {packages[openssl]}\n",
                effect=Effect(
                    files={"/srv/{app}/VERSION": "2\n", "/etc/old": None}, packages={"nginx": None}
                ),
            ),
            Rule(name="flaky", match="^flaky", exit_status=3, stderr="flaky on {host}\n"),
            Rule(name="bad", match="^bad", stdout="{nope}"),
        ],
        failure_probability={"flaky": 1.0},
    )
    fleet = SimFleet(inventory, profile)
    reply = run(fleet, "web2", "deploy shop")
    assert reply == Reply(0, "shop on web2 (ams) openssl 3.0.11-1~deb12u2\n")
    assert fleet.state("web2").files["/srv/shop/VERSION"] == "2\n"
    assert "nginx" not in fleet.state("web2").packages
    assert run(fleet, "web2", "cat /srv/shop/VERSION").stdout == "2\n"
    assert run(fleet, "web2", "flaky thing") == Reply(1, "", "flaky: simulated failure\n")
    with pytest.raises(ValueError, match="rule 'bad': bad output template"):
        run(fleet, "web2", "bad")


def test_unmatched_commands(inventory: Inventory) -> None:
    assert run(SimFleet(inventory), "web1", "frobnicate --all") == Reply(0, "")
    failing = SimFleet(inventory, SimProfile(unmatched="fail", default_rules=False))
    assert failing.rules == ()
    assert run(failing, "web1", "frobnicate --all") == Reply(127, "", "sh: 1: frobnicate: not found\n")
    assert run(failing, "web1", "   ").exit_status == 127


def test_durations_per_task_and_group(inventory: Inventory) -> None:
    profile = SimProfile(
        durations={
            "apt_update": {"web": Fixed(seconds=5), "*": Fixed(seconds=9)},
            "backup": {"db": Fixed(seconds=2)},
        },
        hosts=[{"hosts": "db2", "slow": 3.0}],  # type: ignore[list-item]
    )
    fleet = SimFleet(inventory, profile)
    assert fleet.begin("web1", "apt-get update", 0).duration == 5
    assert fleet.begin("db1", "apt-get update", 0).duration == 9
    assert fleet.begin("db2", "apt-get update", 0).duration == 27
    assert fleet.begin("db1", "backup.sh", 0).duration == 2
    assert fleet.begin("web1", "backup.sh", 0).duration != 2  # the rule's own lognormal
    assert fleet.match("apt-get update")[0].name == "apt_update"


def test_rule_match_cache_is_bounded(inventory: Inventory) -> None:
    fleet = SimFleet(inventory)
    for i in range(5000):
        fleet.match(f"echo {i}")
    assert fleet.match("uname -r")[0].name == "uname"


def test_restore_without_snapshot_and_snapshot_kept() -> None:
    st = HostState.initial()
    st.apply(Effect(restore="none"), {})
    st.apply(Effect(snapshot="s", services={"nginx": "inactive"}), {})
    assert st.snapshots["s"].services["nginx"] == "active"
    assert st.services["nginx"] == "inactive"
    st.apply(Effect(packages={"curl": "7.88"}, services={"ssh": "active"}), {})
    assert (st.packages["curl"], st.services["ssh"]) == ("7.88", "active")
    st.apply(Effect(upgrade=["openssl"], refresh=True), {})
    assert st.packages["openssl"] == "3.0.15-1~deb12u1"
    assert st.packages["nginx"] == "1.22.1-9"


def test_default_rules_have_unique_names() -> None:
    names = [r.name for r in DEFAULT_RULES]
    assert len(names) == len(set(names))
    assert isinstance(DEFAULT_RULES[3].duration, LogNormal)
    assert isinstance(DEFAULT_RULES[3].failure, Failure)


def test_hosts_differ_through_sim_variables(inventory: Inventory) -> None:
    inventory.add_group("web", vars={"sim_packages": {"openssl": "3.0.9-1"}})
    inventory.add_host("web3", sim_services={"nginx": "inactive"}, sim_kernel="6.1.0-9-amd64")
    profile = SimProfile(packages={"curl": "7.88.1-10"}, available={"curl": "7.88.1-10+deb12u8"})
    fleet = SimFleet(inventory, profile)
    assert fleet.state("web1").packages["openssl"] == "3.0.9-1"
    assert fleet.state("db1").packages["openssl"] == "3.0.11-1~deb12u2"
    assert fleet.state("db1").packages["curl"] == "7.88.1-10"
    assert run(fleet, "web3", "systemctl is-active nginx").exit_status == 3
    assert run(fleet, "web3", "uname -r").stdout == "6.1.0-9-amd64\n"
    run(fleet, "db1", "apt-get update")
    run(fleet, "db1", "apt-get upgrade -y")
    assert fleet.state("db1").packages["curl"] == "7.88.1-10+deb12u8"
    assert fleet.state("ghost").packages["bash"] == "5.2.15-2+b2"  # not in the inventory: defaults
