"""Probes and capture: real subprocesses through LocalTransport, recorded outputs through a replay."""

from __future__ import annotations

import shlex
from datetime import UTC, datetime

from sysflow.actors.local import LocalTransport
from sysflow.clock import ManualClock
from sysflow.model.verification import ProbeSpec
from sysflow.testing import ReplayTransport, Reply
from sysflow.verify import parsers as p
from sysflow.verify import probes as pr

from .fakes import SPECS, spec_text


def _cat(name: str) -> str:
    return f"cat {shlex.quote(str(SPECS / name))}"


async def test_capture_through_local_subprocesses() -> None:
    probes = [
        pr.Probe("kernel", "uname -r", p.parse_kernel, "kernel"),
        pr.Probe("packages", _cat("dpkg_query_debian12.txt"), p.parse_dpkg, "dpkg"),
        pr.probe_from_spec("json", ProbeSpec(command='echo \'{"a": {"b": 3}}\'', parser="json", path="a.b")),
        pr.Probe("fails", "echo oops >&2; exit 3"),
        pr.Probe("any_exit", "echo inactive; exit 3", p.parse_systemctl, check_exit=False),
        pr.Probe("slow", "sleep 5", timeout=0.2),
        pr.Probe("garbage", "echo nope", p.JsonPath()),
    ]
    clock = ManualClock(datetime(2026, 3, 1, tzinfo=UTC))
    snap = await pr.capture(LocalTransport(), "web1", probes, clock=clock)
    assert snap.host == "web1"
    assert snap.when == datetime(2026, 3, 1, tzinfo=UTC)
    assert isinstance(snap.values["kernel"], str)
    assert snap.values["kernel"]
    assert isinstance(snap.values["packages"], dict)
    assert snap.values["packages"]["openssl"] == "3.0.19-1~deb12u2"
    assert snap.values["json"] == 3
    assert snap.values["any_exit"] == "inactive"
    assert snap.errors["fails"] == "exit 3: oops"
    assert snap.errors["slow"].startswith("timed out after 0.2s")
    assert snap.errors["garbage"].startswith("unparseable output")
    assert not snap.ok
    assert snap.kinds["packages"] == "dpkg"


async def test_real_os_release_and_file_facts() -> None:
    target = SPECS / "stat_debian12.txt"
    probes = [pr.os_release(), pr.file_checksum(str(target)), pr.file_mode(str(target)), pr.listening_ports()]
    snap = await pr.capture(LocalTransport(), "localhost", probes)
    assert snap.ok, snap.errors
    assert isinstance(snap.values["os_release"], dict)
    assert "ID" in snap.values["os_release"]
    checksums = snap.values["checksums"]
    assert isinstance(checksums, dict)
    assert len(str(checksums[str(target)])) == 64
    modes = snap.values["file_modes"]
    assert isinstance(modes, dict)
    assert set(modes[str(target)]) == {"mode", "owner", "group"}  # type: ignore[arg-type]
    assert isinstance(snap.values["ports"], list)


async def test_unreachable_host_is_an_error_value() -> None:
    transport = ReplayTransport({"uname": "6.1.0\n"}, unreachable=frozenset({"down"}))
    snaps = await pr.capture_many(transport, ["up", "down"], [pr.kernel()], concurrency=1)
    assert snaps["up"].values == {"kernel": "6.1.0"}
    assert snaps["down"].errors["kernel"].startswith("HostUnreachable: down: connection refused")
    assert snaps["down"].values == {}


async def test_catalogue_commands_and_parsers() -> None:
    transport = ReplayTransport(
        {
            "dpkg-query -W -f='${Package} ${Version}\\n' openssl": "openssl 3.0.11-1\n",
            "rpm -q openssl": Reply(spec_text("rpm_q_openssl_rhel9.txt"), 1),
            "rpm -qa": spec_text("rpm_qa_rhel9.txt"),
            "systemctl is-active nginx sshd": Reply("active\nfailed\n", 3),
            "systemctl is-active nginx": Reply("inactive\n", 3),
            "systemctl show nginx --property=ActiveState,SubState": "ActiveState=active\nSubState=running\n",
            "systemctl show nginx": spec_text("systemctl_show_nginx.txt"),
            "systemctl is-active a b c": "active\n",
            "dpkg-query -W -f='${Version}' 'lib ssl'": "",
            "dpkg-query -W -f='${Version}' openssl": "3.0.11-1",
        }
    )
    probes = [
        pr.dpkg_packages("openssl", name="deb"),
        pr.rpm_packages("openssl", "nginx-mod-stream", name="rpm_some"),
        pr.rpm_packages(name="rpm_all"),
        pr.service_state("nginx", "sshd"),
        pr.service_state("nginx", name="nginx_state"),
        pr.service_show("nginx", "ActiveState", "SubState", name="nginx_props"),
        pr.service_show("nginx"),
        pr.service_state("a", "b", "c", name="bad_states"),
        pr.package_version("lib ssl"),
        pr.package_version("openssl"),
        *pr.standard_probes(),
    ]
    snap = await pr.capture(transport, "h", probes)
    v = snap.values
    assert v["deb"] == {"openssl": "3.0.11-1"}
    assert v["rpm_some"] == {"openssl": "3.0.7-27.el9", "nginx-mod-stream": None}
    assert isinstance(v["rpm_all"], dict)
    assert v["rpm_all"]["kernel"] == "5.14.0-427.13.1.el9_4"
    assert v["services"] == {"nginx": "active", "sshd": "failed"}
    assert v["nginx_state"] == "inactive"
    assert v["nginx_props"] == {"ActiveState": "active", "SubState": "running"}
    assert isinstance(v["nginx"], dict)
    assert "expected 3 unit states" in snap.errors["bad_states"]
    assert v["lib ssl"] is None
    assert v["openssl"] == "3.0.11-1"
    assert set(snap.errors) >= {"kernel", "os_release", "ports"}  # not answered: exit 127
    commands = {pp.name: pp.command for pp in probes}
    assert "--qf '%{NAME} %|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\n'" in commands["rpm_all"]
    assert commands["lib ssl"].count("'lib ssl'") == 2  # shell-quoted for dpkg and rpm


def test_expect_probe_picks_by_desired_value() -> None:
    assert pr.expect_probe("nginx", "active").command == "systemctl is-active nginx"
    assert pr.expect_probe("openssl", ">= 3.0.11").name == "expect:openssl"
    assert "dpkg-query" in pr.expect_probe("openssl", ">= 3.0.11").command


def test_snapshot_round_trip() -> None:
    snap = pr.Snapshot(
        "h", datetime(2026, 1, 4, 1, 2, tzinfo=UTC), {"a": {"x": [1, None]}}, {"b": "exit 1"}, {"a": "dpkg"}
    )
    again = pr.Snapshot.from_dict(snap.to_dict())
    assert again == snap
    assert pr.Snapshot.from_dict({"host": "h", "when": "2026-01-04T00:00:00+00:00"}).values == {}


def _batch_probes() -> list[pr.Probe]:
    return [
        pr.kernel(),
        pr.os_release(),
        pr.Probe("err", "echo out; echo bad >&2; exit 4"),
        pr.Probe("noeol", "printf abc"),
        pr.Probe("quiet_fail", "echo x >&2; false", check_exit=False),
        pr.Probe("cd", "cd / && pwd"),
        pr.Probe("pwd", "pwd"),
        pr.Probe("background", "true &"),
        pr.Probe("comment", "echo hi # a comment"),
        pr.Probe("packages", _cat("dpkg_query_debian12.txt"), p.parse_dpkg, "dpkg"),
    ]


async def test_batched_capture_equals_one_command_per_probe() -> None:
    probes = _batch_probes()
    transport = LocalTransport()
    batched = await pr.capture(transport, "h", probes, batch=True)
    single = await pr.capture(transport, "h", probes)
    assert batched.values == single.values
    assert batched.errors == single.errors == {"err": "exit 4: bad"}
    assert batched.values["noeol"] == "abc"
    assert batched.values["pwd"] != "/"  # probes do not leak state into each other


async def test_batch_that_dies_and_batch_that_overflows() -> None:
    probes = [
        pr.Probe("first", "echo one"),
        pr.Probe("killer", "kill -9 $$"),
        pr.Probe("third", "echo three"),
    ]
    snap = await pr.capture(LocalTransport(), "h", probes, batch=True)
    assert snap.values == {"first": "one"}
    assert snap.errors["killer"].startswith("batch ended early (exit SIGKILL)")
    assert set(snap.errors) == {"killer", "third"}
    big = [pr.Probe("big", "head -c 5000 /dev/zero | tr '\\0' x"), pr.Probe("small", "echo s")]
    overflow = await pr.capture(LocalTransport(output_cap=2048), "h", big, batch=True)
    assert overflow.values["small"] == "s"  # re-run one by one after the cap cut the frames
    assert "big" in overflow.values


async def test_batch_over_an_unreachable_host_and_split_edge_cases() -> None:
    transport = ReplayTransport(unreachable=frozenset({"down"}))
    snap = await pr.capture_many(transport, ["down"], [pr.kernel(), pr.os_release()], batch=True)
    assert set(snap["down"].errors) == {"kernel", "os_release"}
    assert pr.split_batch("", "T", 2) == [None, None]
    assert pr.split_batch("a\nT rc 0 0\n\nT end 0\n", "T", 1) == [(0, "a", "")]
    assert pr.split_batch("a\nT rc 0 0\nno end", "T", 1) == [None]
