"""Parsers against recorded real outputs (tests/verify/specs/*.txt → *.json) and generic cases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sysflow.errors import VerificationError
from sysflow.model.verification import ProbeSpec
from sysflow.verify import parsers as p

from .fakes import SPECS, spec_text

CASES = sorted(SPECS.glob("*.json"))


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_recorded_output_parses_to_recorded_state(case: Path) -> None:
    data: dict[str, Any] = json.loads(case.read_text())
    parser = p.parser_for(ProbeSpec(command="recorded", parser=data["parser"]))
    assert parser(spec_text(data["output"])) == data["state"]


def test_dpkg_query_of_this_machine() -> None:
    state = p.parse_dpkg(spec_text("dpkg_query_debian12.txt"))
    assert isinstance(state, dict)
    assert len(state) == 715
    assert state["openssl"] == "3.0.19-1~deb12u2"
    assert state["openssh-server"] == "1:9.2p1-2+deb12u10"  # epochs kept


def test_dpkg_list_and_query_agree_on_versions() -> None:
    listed = p.parse_dpkg(spec_text("dpkg_l_debian12.txt"))
    queried = p.parse_dpkg(spec_text("dpkg_query_debian12.txt"))
    assert isinstance(listed, dict)
    assert isinstance(queried, dict)
    assert listed == {name: queried[name] for name in listed}


def test_dpkg_list_through_grep_and_removed_packages() -> None:
    text = (
        "ii  openssl   3.0.11-1~deb12u2 amd64 x\nrc  libssl1.1:amd64 1.1.1n-0 amd64 y\nhi  bash 5.2 amd64 z\n"
    )
    assert p.parse_dpkg(text) == {"openssl": "3.0.11-1~deb12u2", "bash": "5.2"}
    assert p.parse_dpkg_query("foo:amd64 1.0\nbar\n\n") == {"foo": "1.0", "bar": None}


def test_systemctl_show_recorded() -> None:
    state = p.parse_systemctl(spec_text("systemctl_show_nginx.txt"))
    assert isinstance(state, dict)
    assert state["ActiveState"] == "active"
    assert state["SubState"] == "running"
    assert state["UnitFileState"] == "enabled"
    assert state["MainPID"] == "812"
    assert state["Environment"] == ""
    assert state["ExecStart"].startswith("{ path=/usr/sbin/nginx ;")  # type: ignore[union-attr]


def test_systemctl_is_active_several_units() -> None:
    assert p.parse_systemctl("active\ninactive\n") == ["active", "inactive"]


def test_rpm_keeps_newest_of_several_and_qf_form() -> None:
    text = "kernel-5.14.0-427.13.1.el9_4.x86_64\nkernel-5.14.0-362.8.1.el9_3.x86_64\nopenssl 1:3.0.7-27.el9\n"
    assert p.parse_rpm(text) == {"kernel": "5.14.0-427.13.1.el9_4", "openssl": "1:3.0.7-27.el9"}
    with pytest.raises(VerificationError):
        p.parse_rpm("nonsense\n")


def test_raw_lines_regex() -> None:
    assert p.parse_raw("a\nb \n\n") == "a\nb"
    assert p.parse_lines(" a \n\n b\n") == ["a", "b"]
    assert p.Regex(r"ii\s+openssl\s+(\S+)")(spec_text("dpkg_l_debian12.txt")) == "3.0.19-1~deb12u2"
    assert p.Regex(r"(?P<name>\w+)=(?P<value>\d+)")("x=1") == {"name": "x", "value": "1"}
    assert p.Regex(r"(\d+)\.(\d+)")("v 3.14") == ["3", "14"]
    assert p.Regex(r"\d+")("v 42") == "42"
    assert p.Regex(r"\d+")("none") is None
    with pytest.raises(VerificationError, match="bad regex"):
        p.Regex("(")


def test_json_path() -> None:
    doc = '{"status": {"version": "1.2", "items": [{"n": 1}, {"n": 2}]}}'
    assert p.JsonPath("status.version")(doc) == "1.2"
    assert p.JsonPath("status.items.1.n")(doc) == 2
    assert p.JsonPath("status.items.-1.n")(doc) == 2
    assert p.JsonPath("status.items.9")(doc) is None
    assert p.JsonPath("status.version.x")(doc) is None
    assert p.JsonPath()("[1]") == [1]
    with pytest.raises(VerificationError, match="not JSON"):
        p.JsonPath()("nope")


def test_keyvalue_and_unquote() -> None:
    text = "# comment\nA=1\n\nB = two words \nnot a pair\n"
    assert p.KeyValue()(text) == {"A": "1", "B": "two words"}
    assert p.KeyValue(sep=":")("k: v\n") == {"k": "v"}
    assert p.KeyValue(unquote=True)('X="a \\"b\\""\nY=\'c\'\nZ="unbalanced\nE=\n') == {
        "X": 'a "b"',
        "Y": "c",
        "Z": "unbalanced",
        "E": "",
    }


def test_table() -> None:
    text = "NAME  SIZE  MOUNT POINT\nsda   10G   /\nsdb   5G\n"
    assert p.Table()(text) == [
        {"NAME": "sda", "SIZE": "10G", "MOUNT": "/", "POINT": None},
        {"NAME": "sdb", "SIZE": "5G", "MOUNT": None, "POINT": None},
    ]
    assert p.Table()("A B\n1 2 3 4\n") == [{"A": "1", "B": "2 3 4"}]
    assert p.Table(header=False)("1 2\n3 4\n") == [["1", "2"], ["3", "4"]]
    assert p.Table()("") == []


def test_ports_with_netid_column_and_headerless() -> None:
    text = "Netid State Recv-Q Send-Q Local Address:Port Peer Address:Port\ntcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:*\n"
    assert p.parse_ports(text) == ["0.0.0.0:22"]
    assert p.parse_ports("LISTEN 0 128 127.0.0.53%lo:53 0.0.0.0:*\nLISTEN 0 1 *:x *:*\n") == [
        "127.0.0.53%lo:53",
        "*:x",
    ]


def test_checksum_modes_kernel_errors() -> None:
    assert p.parse_checksums("abc *bin/file\n\n") == {"bin/file": "abc"}
    with pytest.raises(VerificationError):
        p.parse_file_modes("644 root\n")
    with pytest.raises(VerificationError):
        p.parse_kernel("\n")


def test_parser_for_regex_and_json() -> None:
    regex = p.parser_for(ProbeSpec(command="x", parser="regex", pattern=r"v(\d+)"))
    assert regex("v7") == "7"
    assert p.parser_for(ProbeSpec(command="x", parser="json", path="a"))('{"a": 1}') == 1
    with pytest.raises(VerificationError, match="needs a pattern"):
        p.parser_for(ProbeSpec(command="x", parser="regex"))
