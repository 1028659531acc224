"""Audit records forwarded as they are written: to syslog (RFC 5424) and to JSON Lines files.

The audit log has one writer (:class:`sysflow.audit.log.AuditLog`); it hands every record it
appends, already redacted, to its forwarders, in order, under its lock. A forwarder never fails the
run: a receiver that is gone costs the record on that channel (counted in ``dropped``), the SQLite
chain keeps it.

* :class:`SyslogForwarder` formats RFC 5424 messages (``<PRI>1 TIMESTAMP HOST sysflow PID ACTION
  [sysflow@32473 id=.. run=.. ...] DETAIL``; 32473 is the private enterprise number RFC 5612 sets
  aside for examples) and sends them over UDP (one datagram each), TCP (RFC 6587 octet counting) or
  a unix datagram socket (``/dev/log``).
* :class:`JsonlForwarder` appends one JSON object per line to a file and rotates it
  (``audit.jsonl`` -> ``audit.jsonl.1`` ...) past ``max_bytes``, keeping ``backups`` old files.

Forwarders are configured by URL (:func:`forwarder_from_url`): ``udp://HOST:PORT``,
``tcp://HOST:PORT``, ``unix:///dev/log``, ``jsonl:///var/log/sysflow/audit.jsonl?max_bytes=10485760&backups=5``;
a writer opened without explicit forwarders takes them from ``$SYSFLOW_AUDIT_FORWARD``
(space-separated URLs).
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import parse_qs, urlsplit

from sysflow.audit.records import AuditRecord

__all__ = [
    "FORWARD_ENV",
    "AuditForwarder",
    "JsonlForwarder",
    "SyslogForwarder",
    "format_rfc5424",
    "forwarder_from_url",
    "forwarders_from_env",
]

FORWARD_ENV = "SYSFLOW_AUDIT_FORWARD"
SD_ID = "sysflow@32473"
FACILITY_LOCAL0 = 16
SEVERITY_INFO, SEVERITY_WARNING = 6, 4
_BAD_OUTCOMES = frozenset({"failed", "false", "rolled_back", "cancelled", "timed_out", "none"})
DEFAULT_MAX_BYTES = 10 * 1024 * 1024  # a JSON Lines file is rotated past 10 MiB
DEFAULT_BACKUPS = 5
_TCP_TIMEOUT = 5.0  # seconds to connect to or send to a TCP syslog receiver
_MAX_UDP = 8192  # bytes of a UDP message (longer details are cut)


class AuditForwarder(Protocol):
    """Receives each record the audit log appends, in order."""

    def forward(self, record: AuditRecord) -> None: ...

    def close(self) -> None: ...


def _sd_value(value: str) -> str:
    """A PARAM-VALUE: ``"``, ``\\`` and ``]`` escaped (RFC 5424 section 6.3.3)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _name(value: str, limit: int) -> str:
    """A header field: printable US-ASCII without spaces, at most ``limit`` characters, or ``-``."""
    cleaned = "".join(c if 33 <= ord(c) <= 126 else "_" for c in value)[:limit]
    return cleaned or "-"


def format_rfc5424(
    record: AuditRecord, *, hostname: str, procid: int, facility: int = FACILITY_LOCAL0
) -> str:
    """One RFC 5424 message for a record (without transport framing)."""
    severity = SEVERITY_WARNING if record.outcome.lower() in _BAD_OUTCOMES else SEVERITY_INFO
    params = {"id": str(record.id), "run": record.run_id, "who": record.who, "host": record.host,
              "task": record.task, "outcome": record.outcome, "mac": record.mac}  # fmt: skip
    sd = " ".join(f'{k}="{_sd_value(v)}"' for k, v in params.items() if v)
    header = f"<{facility * 8 + severity}>1 {record.at} {_name(hostname, 255)} sysflow {procid} {_name(record.action, 32)}"
    return f"{header} [{SD_ID} {sd}] {record.detail}".rstrip()


Transport = Literal["udp", "tcp", "unix"]


@dataclass
class SyslogForwarder:
    """RFC 5424 over UDP, TCP (octet counting) or a unix datagram socket."""

    transport: Transport
    address: str  # host for udp/tcp, the socket path for unix
    port: int = 514
    facility: int = FACILITY_LOCAL0
    hostname: str = field(default_factory=socket.gethostname)
    dropped: int = 0
    _sock: socket.socket | None = None

    def forward(self, record: AuditRecord) -> None:
        data = format_rfc5424(record, hostname=self.hostname, procid=os.getpid(), facility=self.facility)
        payload = data.encode("utf-8", "replace")
        try:
            self._send(payload)
        except OSError:
            self.close()  # a TCP receiver that went away: reconnect once for this record
            try:
                self._send(payload)
            except OSError:
                self.close()
                self.dropped += 1

    def _send(self, payload: bytes) -> None:
        sock = self._connect()
        if self.transport == "tcp":
            sock.sendall(b"%d " % len(payload) + payload)
        elif self.transport == "udp":
            sock.send(payload[:_MAX_UDP])
        else:
            sock.send(payload)

    def _connect(self) -> socket.socket:
        if self._sock is None:
            if self.transport == "unix":
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                sock.connect(self.address)
            elif self.transport == "udp":
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.connect((self.address, self.port))
            else:
                sock = socket.create_connection((self.address, self.port), timeout=_TCP_TIMEOUT)
            self._sock = sock
        return self._sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


@dataclass
class JsonlForwarder:
    """One JSON object per record and line, rotated past ``max_bytes`` keeping ``backups`` files."""

    path: Path
    max_bytes: int = DEFAULT_MAX_BYTES
    backups: int = DEFAULT_BACKUPS
    dropped: int = 0

    def forward(self, record: AuditRecord) -> None:
        line = json.dumps(asdict(record), sort_keys=True) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self._size() + len(line) > self.max_bytes and self._size() > 0:
                self._rotate()
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line)
        except OSError:
            self.dropped += 1

    def _size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def _rotate(self) -> None:
        if self.backups <= 0:
            self.path.unlink()
            return
        for i in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{i + 1}"))
        self.path.replace(self.path.with_name(f"{self.path.name}.1"))

    def close(self) -> None:
        pass


def forwarder_from_url(url: str) -> AuditForwarder:
    """A forwarder for ``udp://``, ``tcp://``, ``unix://`` or ``jsonl://`` (see the module docstring)."""
    parts = urlsplit(url)
    if parts.scheme in ("udp", "tcp"):
        if not parts.hostname:
            raise ValueError(f"audit forward {url!r}: needs a host")
        return SyslogForwarder(parts.scheme, parts.hostname, parts.port or 514)  # type: ignore[arg-type]
    if parts.scheme == "unix" and parts.path:
        return SyslogForwarder("unix", parts.path)
    if parts.scheme == "jsonl" and parts.path:
        query = parse_qs(parts.query)
        max_bytes = int(query.get("max_bytes", [DEFAULT_MAX_BYTES])[0])
        backups = int(query.get("backups", [DEFAULT_BACKUPS])[0])
        return JsonlForwarder(Path(parts.path), max_bytes, backups)
    raise ValueError(
        f"audit forward {url!r}: use udp://HOST:PORT, tcp://HOST:PORT, unix:///PATH or jsonl:///PATH"
    )


def forwarders_from_env() -> list[AuditForwarder]:
    """The forwarders ``$SYSFLOW_AUDIT_FORWARD`` names (space-separated URLs); none when unset."""
    return [forwarder_from_url(u) for u in os.environ.get(FORWARD_ENV, "").split()]
