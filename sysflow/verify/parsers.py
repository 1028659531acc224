"""Parsers: turn a probe's output text into structured state (JSON-shaped values).

Generic parsers (raw, lines, regex, JSON path, ``key=value``, whitespace tables) are small frozen
dataclasses or functions; ready-made parsers understand the usual facts: ``dpkg-query -W`` and
``dpkg -l``, ``rpm -qa`` / ``rpm -q``, ``systemctl is-active`` / ``show``, ``sha256sum``,
``stat -c '%a %U %G %n'``, ``ss -ltn``, ``uname -r`` and ``/etc/os-release``. Each is tested
against recorded real output in ``tests/verify/specs/``. A parser that cannot make sense of its
input raises :class:`~sysflow.errors.VerificationError`; a fact that is simply absent is ``None``.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeAlias

from sysflow.errors import VerificationError
from sysflow.model.verification import ProbeSpec

__all__ = [
    "JsonPath",
    "KeyValue",
    "Parser",
    "Regex",
    "Table",
    "Value",
    "parse_checksums",
    "parse_dpkg",
    "parse_dpkg_list",
    "parse_dpkg_query",
    "parse_file_modes",
    "parse_kernel",
    "parse_lines",
    "parse_os_release",
    "parse_ports",
    "parse_raw",
    "parse_rpm",
    "parse_systemctl",
    "parser_for",
]

Value: TypeAlias = str | int | float | bool | list["Value"] | dict[str, "Value"] | None
Parser: TypeAlias = Callable[[str], Value]

_RPM_ARCHES = frozenset(
    {"x86_64", "noarch", "i686", "i386", "aarch64", "ppc64le", "ppc64", "s390x", "armv7hl", "src"}
)
_NOT_INSTALLED = re.compile(r"^package (\S+) is not installed$")
_DPKG_LIST_ROW = re.compile(r"^([uirph][ncHUFWti][ R]?)\s+(\S+)\s+(\S+)")
_SS_NETIDS = frozenset({"tcp", "udp", "raw", "sctp", "mptcp", "u_str", "u_dgr", "u_seq", "p_raw", "p_dgr"})


def parse_raw(text: str) -> Value:
    """The output itself, without trailing whitespace."""
    return text.rstrip()


def parse_lines(text: str) -> Value:
    """Non-empty lines, stripped."""
    return [line.strip() for line in text.splitlines() if line.strip()]


@dataclass(frozen=True, slots=True)
class Regex:
    """First match of ``pattern``: named groups → dict, one group → str, several → list, none → text."""

    pattern: str
    _compiled: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            compiled = re.compile(self.pattern, re.MULTILINE)
        except re.error as exc:
            raise VerificationError(f"bad regex {self.pattern!r}: {exc}") from None
        object.__setattr__(self, "_compiled", compiled)

    def __call__(self, text: str) -> Value:
        m = self._compiled.search(text)
        if m is None:
            return None
        if self._compiled.groupindex:
            return dict(m.groupdict())
        if self._compiled.groups == 0:
            return m.group(0)
        if self._compiled.groups == 1:
            return m.group(1)
        return list(m.groups())


@dataclass(frozen=True, slots=True)
class JsonPath:
    """JSON output, optionally narrowed by a dotted path (``a.b.0.c``); a missing path is ``None``."""

    path: str | None = None

    def __call__(self, text: str) -> Value:
        try:
            data: Value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise VerificationError(f"output is not JSON: {exc}") from None
        for part in self.path.split(".") if self.path else []:
            data = _step(data, part)
        return data


def _step(data: Value, part: str) -> Value:
    if isinstance(data, dict):
        return data.get(part)
    if isinstance(data, list) and part.lstrip("-").isdigit() and -len(data) <= int(part) < len(data):
        return data[int(part)]
    return None


@dataclass(frozen=True, slots=True)
class KeyValue:
    """``key<sep>value`` lines into a dict; blank lines, comments and lines without ``sep`` skipped."""

    sep: str = "="
    unquote: bool = False

    def __call__(self, text: str) -> Value:
        out: dict[str, Value] = {}
        for line in text.splitlines():
            if not line.strip() or line.lstrip().startswith("#") or self.sep not in line:
                continue
            key, _, value = line.partition(self.sep)
            out[key.strip()] = _unquote(value.strip()) if self.unquote else value.strip()
        return out


def _unquote(value: str) -> str:
    """Shell-style unquoting as /etc/os-release allows; text that is not valid shell is kept."""
    try:
        return " ".join(shlex.split(value)) if value else value
    except ValueError:
        return value.strip("\"'")


@dataclass(frozen=True, slots=True)
class Table:
    """Whitespace columns; with a header row, one dict per row (the last column takes the rest)."""

    header: bool = True

    def __call__(self, text: str) -> Value:
        rows = [line.split() for line in text.splitlines() if line.strip()]
        if not self.header:
            return [list[Value](row) for row in rows]
        if not rows:
            return []
        names, body = rows[0], rows[1:]
        return [_row_dict(names, row) for row in body]


def _row_dict(names: list[str], row: list[str]) -> Value:
    n = len(names)
    cells = [*row[: n - 1], " ".join(row[n - 1 :])] if len(row) > n else row
    return {name: (cells[i] if i < len(cells) else None) for i, name in enumerate(names)}


def parse_dpkg_query(text: str) -> Value:
    """``dpkg-query -W -f='${Package} ${Version}\\n'`` → {package: version}."""
    out: dict[str, Value] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            out[parts[0].split(":")[0]] = parts[1]
        elif len(parts) == 1:
            out[parts[0].split(":")[0]] = None  # known to dpkg, no version: not installed
    return out


def parse_dpkg_list(text: str) -> Value:
    """``dpkg -l`` (or lines of it, e.g. through grep) → {package: version} of installed packages."""
    out: dict[str, Value] = {}
    for line in text.splitlines():
        m = _DPKG_LIST_ROW.match(line)
        if m is not None and m.group(1)[1] not in "nc":
            out[m.group(2).split(":")[0]] = m.group(3)
    return out


def parse_dpkg(text: str) -> Value:
    """Either dpkg format, recognised by its shape."""
    if any(_DPKG_LIST_ROW.match(line) and line[2:4] in {"  ", "R "} for line in text.splitlines()[:8]):
        return parse_dpkg_list(text)
    return parse_dpkg_query(text)


def _split_nevra(nevra: str) -> tuple[str, str]:
    """``name-[epoch:]version-release[.arch]`` → (name, evr)."""
    base, dot, arch = nevra.rpartition(".")
    if not dot or arch not in _RPM_ARCHES:
        base = nevra
    rest, _, release = base.rpartition("-")
    name, _, version = rest.rpartition("-")
    if not name or not version:
        raise VerificationError(f"not an rpm package name: {nevra!r}")
    return name, f"{version}-{release}"


def parse_rpm(text: str) -> Value:
    """``rpm -qa`` / ``rpm -q`` (NEVRA lines, or ``name evr`` from ``--qf``) → {name: evr or None}.

    Several installed versions of one name (kernels) keep the newest; "package X is not installed"
    maps X to ``None``.
    """
    from sysflow.model.versions import compare_rpm

    out: dict[str, Value] = {}
    for line in (raw.strip() for raw in text.splitlines()):
        if not line:
            continue
        missing = _NOT_INSTALLED.match(line)
        if missing:
            out[missing.group(1)] = None
            continue
        name, evr = line.split(None, 1) if " " in line else _split_nevra(line)
        old = out.get(name)
        if not isinstance(old, str) or compare_rpm(evr.strip(), old) > 0:
            out[name] = evr.strip()
    return out


def parse_systemctl(text: str) -> Value:
    """``systemctl show`` → dict; ``systemctl is-active`` → the state word (one per unit: list)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines and all("=" in line for line in lines):
        return KeyValue()(text)
    if len(lines) == 1:
        return lines[0]
    return list[Value](lines)


def parse_checksums(text: str) -> Value:
    """``sha256sum`` (or md5sum, ...) lines → {path: digest}."""
    out: dict[str, Value] = {}
    for line in text.splitlines():
        digest, _, path = line.strip().partition(" ")
        if digest and path:
            out[path.strip().lstrip("*")] = digest
    return out


def parse_file_modes(text: str) -> Value:
    """``stat -c '%a %U %G %n'`` lines → {path: {mode, owner, group}}."""
    out: dict[str, Value] = {}
    for line in text.splitlines():
        parts = line.split(None, 3)
        if len(parts) == 4:
            out[parts[3]] = {"mode": parts[0], "owner": parts[1], "group": parts[2]}
        elif line.strip():
            raise VerificationError(f"not `stat -c '%a %U %G %n'` output: {line!r}")
    return out


def parse_ports(text: str) -> Value:
    """``ss -ltn`` (``-H`` or not, with or without Netid) → sorted unique ``address:port`` list."""
    found: set[str] = set()
    for line in text.splitlines():
        cells = line.split()
        if not cells or cells[0] in {"State", "Netid"}:
            continue
        if cells[0] in _SS_NETIDS:
            cells = cells[1:]
        if len(cells) >= 4 and ":" in cells[3]:
            found.add(cells[3])
    ordered: list[str] = sorted(found, key=_port_key)
    return list[Value](ordered)


def _port_key(endpoint: str) -> tuple[int, str]:
    port = endpoint.rpartition(":")[2]
    return (int(port) if port.isdigit() else 65536, endpoint)


def parse_kernel(text: str) -> Value:
    """``uname -r`` → the release string."""
    lines = text.split()
    if not lines:
        raise VerificationError("no kernel release in output")
    return lines[0]


def parse_os_release(text: str) -> Value:
    """``/etc/os-release`` → {KEY: value} with shell quoting removed."""
    return KeyValue(unquote=True)(text)


_FIXED: dict[str, Parser] = {
    "raw": parse_raw,
    "lines": parse_lines,
    "keyvalue": KeyValue(),
    "table": Table(),
    "dpkg": parse_dpkg,
    "rpm": parse_rpm,
    "systemctl": parse_systemctl,
    "ports": parse_ports,
    "os_release": parse_os_release,
    "checksum": parse_checksums,
    "file_mode": parse_file_modes,
    "kernel": parse_kernel,
}


def parser_for(spec: ProbeSpec) -> Parser:
    """The parser a user's :class:`ProbeSpec` names."""
    if spec.parser == "regex":
        if not spec.pattern:
            raise VerificationError("the regex parser needs a pattern")
        return Regex(spec.pattern)
    if spec.parser == "json":
        return JsonPath(spec.path)
    return _FIXED[spec.parser]
