"""Audit records forwarded as the log writes them: RFC 5424 syslog received on loopback (UDP, TCP,
a unix socket) and JSON Lines files with rotation; secrets masked, one message per record, in order."""

from __future__ import annotations

import json
import re
import socket
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sysflow.audit.forward import FORWARD_ENV, JsonlForwarder, SyslogForwarder, forwarder_from_url
from sysflow.audit.log import AuditLog, Redactor
from sysflow.audit.records import AuditRecord

SECRET = "hunter2-db-password"
AT = datetime(2026, 3, 1, 1, 2, 3, 456789, tzinfo=UTC)

# RFC 5424: <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD [SP MSG]
RFC5424 = re.compile(
    r"^<(?P<pri>\d{1,3})>1 (?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)) "
    r"(?P<host>[!-~]{1,255}) (?P<app>[!-~]{1,48}) (?P<procid>[!-~]{1,128}) (?P<msgid>[!-~]{1,32}) "
    r"(?P<sd>-|(?:\[[^ =\]\"]+(?: [^ =\]\"]+=\"(?:[^\"\\\]]|\\.)*\")*\])+)(?: (?P<msg>.*))?$",
    re.DOTALL,
)
PARAM = re.compile(r'(\w+)="((?:[^"\\\]]|\\.)*)"')


def parse(message: str) -> dict[str, str]:
    found = RFC5424.match(message)
    assert found, f"not RFC 5424: {message!r}"
    fields = found.groupdict()
    sd = {k: re.sub(r"\\(.)", r"\1", v) for k, v in PARAM.findall(fields.pop("sd"))}
    return {**{k: v or "" for k, v in fields.items()}, **sd}


class Receiver:
    """A syslog receiver on loopback: UDP datagrams, TCP octet-counted frames, or a unix socket."""

    def __init__(self, kind: str, path: Path | None = None) -> None:
        self.kind, self.messages = kind, []  # type: ignore[var-annotated]
        family = socket.AF_UNIX if kind == "unix" else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
        self.sock.bind(str(path) if path else ("127.0.0.1", 0))
        self.address = self.sock.getsockname()
        if kind == "tcp":
            self.sock.listen()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        if self.kind != "tcp":
            while (data := self.sock.recv(65536)) != b"end":
                self.messages.append(data.decode())
            return
        conn, _ = self.sock.accept()
        buffer = b""
        while chunk := conn.recv(65536):
            buffer += chunk
        conn.close()
        while buffer:
            length, _, rest = buffer.partition(b" ")
            self.messages.append(rest[: int(length)].decode())
            buffer = rest[int(length) :]

    def wait(self, forwarder: SyslogForwarder) -> list[str]:
        if self.kind == "tcp":
            forwarder.close()
        else:
            end = socket.socket(self.sock.family, socket.SOCK_DGRAM)
            end.sendto(b"end", self.address)
            end.close()
        self.thread.join(10)
        self.sock.close()
        return list(self.messages)


def write_records(tmp_path: Path, forward: list[object]) -> list[AuditRecord]:
    log = AuditLog(tmp_path / "audit.db", redactor=Redactor([SECRET]), forward=forward)  # type: ignore[list-item]
    with log:
        log.append("run-1", "run_started", at=AT, detail="start")
        for i in range(5):
            log.append("run-1", "op_finished", at=AT, host=f"web{i}", task="patch",
                       detail=f"psql -W {SECRET} ] \"quoted\" \\ done", outcome="succeeded")  # fmt: skip
        log.append("run-1", "run_finished", at=AT, outcome="failed", detail="1 host failed")
        return list(log.records())


@pytest.mark.parametrize("kind", ["udp", "tcp", "unix"])
def test_every_record_reaches_syslog_as_rfc5424_in_order_and_masked(tmp_path: Path, kind: str) -> None:
    receiver = Receiver(kind, tmp_path / "log.sock" if kind == "unix" else None)
    if kind == "unix":
        forwarder = SyslogForwarder("unix", str(tmp_path / "log.sock"))
    else:
        forwarder = SyslogForwarder(kind, "127.0.0.1", receiver.address[1], hostname="ctl1")  # type: ignore[arg-type]
    records = write_records(tmp_path, [forwarder])
    messages = receiver.wait(forwarder)
    assert len(messages) == len(records) == 7
    assert not [m for m in messages if SECRET in m]
    parsed = [parse(m) for m in messages]
    assert [int(p["id"]) for p in parsed] == [r.id for r in records]
    assert [p["mac"] for p in parsed] == [r.mac for r in records]
    first, op, last = parsed[0], parsed[1], parsed[-1]
    assert (first["pri"], first["app"], first["msgid"], first["ts"]) == (
        "134",
        "sysflow",
        "run_started",
        AT.isoformat(),
    )
    assert (op["host"], op["task"], op["outcome"], op["run"]) == ("web0", "patch", "succeeded", "run-1")
    assert op["msg"] == 'psql -W *** ] "quoted" \\ done'
    assert last["pri"] == "132"  # local0.warning: the run failed
    assert forwarder.dropped == 0


def test_a_receiver_that_is_gone_drops_records_without_failing_the_log(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    forwarder = SyslogForwarder("tcp", "127.0.0.1", port)
    assert len(write_records(tmp_path, [forwarder])) == 7
    assert forwarder.dropped == 7


def test_jsonl_files_rotate_and_keep_every_record_in_order(tmp_path: Path) -> None:
    path = tmp_path / "out" / "audit.jsonl"
    forwarder = JsonlForwarder(path, max_bytes=800, backups=5)
    records = write_records(tmp_path, [forwarder])
    files = [*sorted(path.parent.glob("audit.jsonl.*"), reverse=True), path]
    assert len(files) >= 3
    lines = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    assert [line["id"] for line in lines] == [r.id for r in records]
    assert all(f.stat().st_size <= 800 for f in files)
    assert SECRET not in "".join(f.read_text() for f in files)
    short = JsonlForwarder(tmp_path / "one.jsonl", max_bytes=400, backups=1)
    (tmp_path / "b").mkdir()
    write_records(tmp_path / "b", [short])
    assert sorted(p.name for p in tmp_path.glob("one.jsonl*")) == ["one.jsonl", "one.jsonl.1"]
    none = JsonlForwarder(tmp_path / "none.jsonl", max_bytes=400, backups=0)
    (tmp_path / "c").mkdir()
    write_records(tmp_path / "c", [none])
    assert [p.name for p in tmp_path.glob("none.jsonl*")] == ["none.jsonl"]


def test_forwarders_come_from_the_environment_by_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "env.jsonl"
    monkeypatch.setenv(FORWARD_ENV, f"jsonl://{out}?max_bytes=100000&backups=2")
    with AuditLog(tmp_path / "audit.db") as log:
        log.append("r", "run_started", at=AT)
    assert json.loads(out.read_text())["action"] == "run_started"
    assert isinstance(forwarder_from_url("udp://127.0.0.1:5514"), SyslogForwarder)
    assert forwarder_from_url("unix:///dev/log") == SyslogForwarder(
        "unix", "/dev/log", hostname=socket.gethostname()
    )
    for bad in ("udp:///nohost", "http://x", "jsonl://"):
        with pytest.raises(ValueError, match="audit forward"):
            forwarder_from_url(bad)
