"""Facts, templates, `when` and `register` on the simulator: one workflow for a mixed fleet."""

from __future__ import annotations

from sysflow.engine.events import EventKind
from sysflow.engine.facts import facts_from_values, os_family
from sysflow.engine.result import HostOutcome
from sysflow.engine.states import OpState, RunStatus
from sysflow.model.inventory import Inventory
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.sim.fleet import SimFleet
from sysflow.sim.state import RHEL_OS_RELEASE
from tests.engine.conftest import simulate

DEBIAN = ["deb01", "deb02", "deb03"]
RHEL = ["rhel01", "rhel02"]


def _inventory() -> Inventory:
    inv = Inventory()
    inv.add_group("debian", DEBIAN)
    inv.add_group("rhel", RHEL)
    inv.groups["debian"].vars["backup_dir"] = "/var/backups/etc"
    inv.groups["rhel"].vars["backup_dir"] = "/srv/backup; rm -rf /"
    inv.groups["rhel"].vars["db_password"] = "hunter2"
    return inv


def _rhel(fleet: SimFleet) -> None:
    for host in RHEL:
        fleet.state(host).files["/etc/os-release"] = RHEL_OS_RELEASE


def _patching() -> MaintenanceWorkflow:
    wf = MaintenanceWorkflow("mixed_patching")
    wf.add_task("backup", "tar -czf {{ vars.backup_dir }}/{{ host.name }}.tgz /etc")
    wf.add_task(
        "upgrade",
        "{% if facts.os_family == 'Debian' %}apt-get -y upgrade{% else %}dnf -y upgrade{% endif %}",
        depends_on="backup",
    )
    wf.add_task("refresh_apt", "apt-get update", when="facts.pkg_mgr == 'apt'", depends_on="upgrade")
    wf.add_task("kernel", "uname -r", register="kernel", depends_on="refresh_apt")
    wf.add_task(
        "report",
        "echo {{ host.name }} runs {{ results.kernel.stdout | trim }} on {{ facts.distribution }}"
        " {{ facts.distribution_version }} with {{ facts.processor_count }} CPUs",
        depends_on="kernel",
        when="results.kernel.ok and version(facts.distribution_version) >= '9'",
    )
    wf.add_task(
        "db_login", "mysql -p{{ vars.db_password }} -e 'select 1'", targets="rhel", depends_on="report"
    )
    wf.set_progressive_execution({"groups": [["debian"], ["rhel"]]})
    return wf


async def test_a_mixed_fleet_gets_the_upgrade_command_of_its_os_family() -> None:
    sim = await simulate(_patching(), _inventory(), prepare=_rhel)
    result = sim.result
    assert result.status is RunStatus.COMPLETED, result.reason
    assert all(o is HostOutcome.SUCCEEDED for o in result.hosts.values())
    for host in DEBIAN:
        cmds = sim.commands(host)
        assert "apt-get -y upgrade" in cmds and "dnf -y upgrade" not in cmds
        assert "apt-get update" in cmds
        assert f"tar -czf /var/backups/etc/{host}.tgz /etc" in cmds
    for host in RHEL:
        cmds = sim.commands(host)
        assert "dnf -y upgrade" in cmds and "apt-get -y upgrade" not in cmds
        assert "apt-get update" not in cmds
        # an injection attempt through a host variable stays one quoted word
        assert f"tar -czf '/srv/backup; rm -rf /'/{host}.tgz /etc" in cmds
    # `when` false: skipped with its reason, not run
    skipped = result.ops["refresh_apt@rhel01"]
    assert skipped.state is OpState.SKIPPED
    assert skipped.reason == "condition false: facts.pkg_mgr == 'apt'"
    assert any(e.kind is EventKind.OP_SKIPPED and e.host == "rhel01" for e in sim.events.events)
    # registered results and facts feed later templates; Debian 12 also passes version(...) >= '9'
    report = result.ops["report@rhel02"]
    assert report.command == "echo rhel02 runs 6.1.0-18-amd64 on rhel 9.4 with 4 CPUs"
    assert result.ops["report@deb01"].command == "echo deb01 runs 6.1.0-18-amd64 on debian 12 with 4 CPUs"


async def test_secrets_are_sent_but_never_recorded() -> None:
    sim = await simulate(_patching(), _inventory(), prepare=_rhel)
    assert "mysql -phunter2 -e 'select 1'" in sim.commands("rhel01")  # what the host received
    rec = sim.result.ops["db_login@rhel01"]
    assert "hunter2" not in rec.command and "********" in rec.command
    for event in sim.events.events:
        assert "hunter2" not in repr(event.to_dict())


async def test_facts_are_gathered_once_per_host_and_run() -> None:
    sim = await simulate(_patching(), _inventory(), prepare=_rhel)
    for host in [*DEBIAN, *RHEL]:
        assert sim.commands(host).count("cat /etc/os-release") == 1
        assert sim.commands(host).count("nproc") == 1


async def test_a_condition_that_cannot_be_evaluated_fails_the_operation_with_the_reason() -> None:
    wf = MaintenanceWorkflow("undefined_at_run_time")
    wf.add_task("probe", "true", register="probe")
    wf.add_task("use", "echo {{ results.probe.nothing }}", depends_on="probe")
    wf.add_task("after", "true", depends_on="use")
    sim = await simulate(wf, _inventory(), prepare=_rhel)
    rec = sim.result.ops["use@deb01"]
    assert rec.state is OpState.FAILED
    assert rec.error is not None
    assert rec.error.startswith("task 'use' on host deb01: undefined variable")
    assert sim.result.ops["after@deb01"].state is OpState.SKIPPED
    assert "echo" not in " ".join(sim.commands("deb01"))


def test_facts_come_from_probe_values() -> None:
    assert os_family({"ID": "ubuntu"}) == "Debian"
    assert os_family({"ID": "weird", "ID_LIKE": "rhel fedora"}) == "RedHat"
    assert os_family({"ID": "nixos"}) == "Nixos"
    assert os_family({}) is None
    facts = facts_from_values(
        {
            "os_release": {"ID": "centos", "VERSION_ID": "7"},
            "meminfo": {"MemTotal": 2097152, "MemFree": 1048576},
            "df": {"total_kb": 1048576, "free_kb": 524288},
        }
    )
    assert facts["pkg_mgr"] == "yum" and facts["distribution_major_version"] == "7"
    assert facts["memtotal_mb"] == 2048 and facts["memfree_mb"] == 1024
    assert facts["disk_free_mb"] == 512
    assert "kernel" not in facts


def test_fact_parsers_refuse_what_they_cannot_read() -> None:
    import pytest

    from sysflow.engine.facts import FACT_PROBES
    from sysflow.errors import VerificationError

    parsers = {p.name: p.parser for p in FACT_PROBES}
    for name, text in [
        ("nproc", "many"),
        ("meminfo", "Foo: 1 kB\n"),
        ("df", "Filesystem\n"),
        ("pid1", " \n"),
    ]:
        with pytest.raises(VerificationError):
            parsers[name](text)
    assert parsers["nproc"]("8\n") == 8
    assert parsers["pid1"]("init\n") == "init"


async def test_a_host_whose_fact_probes_fail_has_fewer_facts_and_conditions_say_so() -> None:
    from sysflow.engine.facts import FactCache
    from sysflow.sim.loop import current_virtual_clock

    def strip(fleet: SimFleet) -> None:
        del fleet.state("deb01").files["/etc/os-release"]

    wf = MaintenanceWorkflow("no_release")
    wf.add_task("upgrade", "apt-get -y upgrade", when="facts.os_family == 'Debian'", targets="deb01")
    sim = await simulate(wf, _inventory(), prepare=strip)
    rec = sim.result.ops["upgrade@deb01"]
    assert rec.state is OpState.FAILED
    assert rec.error is not None
    assert rec.error.startswith(
        "task 'upgrade' on host deb01: facts.os_family is undefined (fact probes failed:"
    )
    assert "os_release: exit 1: cat: /etc/os-release: No such file or directory" in rec.error
    cache = FactCache(sim.transport, current_virtual_clock())
    assert cache.known("deb02") is None
    facts = await cache.get("deb02")
    assert cache.known("deb02") == facts and facts["os_family"] == "Debian"
    assert facts["gather_errors"] == {}


async def test_verification_probe_commands_are_rendered_per_host() -> None:
    inv = _inventory()
    inv.groups["debian"].vars["pkg"] = "openssl"
    wf = MaintenanceWorkflow("probe_templates")
    wf.add_task("update", "apt-get update", targets="debian")
    wf.add_task("upgrade", "apt-get -y upgrade", depends_on="update", targets="debian")
    wf.add_verification(
        "versions",
        {
            "before_tasks": ["update"],
            "after_tasks": ["upgrade"],
            "targets": ["debian"],
            "commands": {"pkg": "dpkg -l | grep {{ vars.pkg }}"},
            "comparisons": {
                "pkg": {
                    "type": "regex_match",
                    "pattern": r"ii\s+openssl\s+(\S+)",
                    "expected_change": "version_increase",
                }
            },
        },
    )
    sim = await simulate(wf, inv)
    assert sim.result.status is RunStatus.COMPLETED, sim.result.reason
    assert sim.result.verification_results.outcome.value == "pass"
    assert sim.commands("deb01").count("dpkg -l | grep openssl") == 2


def test_verification_probe_templates_are_checked_at_load() -> None:
    import pytest

    from sysflow.errors import WorkflowError

    text = """name: p
tasks:
  - id: a
    run: "true"
verifications:
  v:
    after_tasks: [a]
    commands:
      pkg: dpkg -l | grep {{ package }}
"""
    with pytest.raises(WorkflowError) as err:
        MaintenanceWorkflow.from_yaml(text).check()
    (problem,) = err.value.problems
    assert "<string>:9:7" in str(problem) and "unknown name(s) package" in str(problem)


async def test_a_probe_template_that_cannot_render_is_that_probes_error() -> None:
    from sysflow.engine.conditional import Conditional, RenderingTransport
    from sysflow.errors import TransportError
    from sysflow.sim.loop import current_virtual_clock
    from sysflow.sim.transport import SimTransport

    inv = _inventory()
    wf = MaintenanceWorkflow("p")
    wf.add_task("a", "echo {{ host.name }}")
    clock = current_virtual_clock()
    sim_transport = SimTransport(SimFleet(inv, None, seed=1, start=clock.start), clock)
    transport = RenderingTransport(sim_transport, Conditional(wf, inv.host_vars, sim_transport, clock))
    res = await transport.run("rhel01", "cat /etc/os-release | grep {{ facts.os_family | raw }}")
    assert res.ok and "ID_LIKE" not in res.stdout
    assert (await transport.run("rhel01", "uname -r")).ok
    import pytest

    with pytest.raises(TransportError, match="rhel01: probe template: undefined variable"):
        await transport.run("rhel01", "echo {{ vars.nothing }}")
    await transport.close()
