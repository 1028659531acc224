"""Probes (a command plus a parser), the ready-made catalogue, and capturing a host's :class:`Snapshot`.

Every probe runs through the ``Transport`` seam, so the same code captures state over SSH, from a
local subprocess or from the simulator. A host's probes run concurrently, each under a timeout; a
probe that fails (connection, timeout, non-zero exit, unparseable output) is recorded in the
snapshot's ``errors`` rather than raised: at fleet scale failures are values.
"""

from __future__ import annotations

import asyncio
import secrets
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sysflow.clock import Clock, RealClock
from sysflow.errors import TransportError, VerificationError
from sysflow.model.verification import ProbeSpec
from sysflow.transport import CommandResult, Transport
from sysflow.verify import parsers as p
from sysflow.verify.parsers import Parser, Value

__all__ = [
    "DEFAULT_PROBE_TIMEOUT",
    "SYSTEMD_STATES",
    "Probe",
    "Snapshot",
    "batch_command",
    "capture",
    "capture_many",
    "dpkg_packages",
    "expect_probe",
    "file_checksum",
    "file_mode",
    "kernel",
    "listening_ports",
    "os_release",
    "package_version",
    "probe_from_spec",
    "rpm_packages",
    "service_show",
    "service_state",
    "split_batch",
    "standard_probes",
]

DEFAULT_PROBE_TIMEOUT = 30.0  # seconds one probe command may take
_TIMEOUT_GRACE = 5.0  # seconds past a probe's timeout before we stop waiting for the transport
_ERROR_DETAIL = 200  # characters of stderr kept in an error message
SYSTEMD_STATES = frozenset({"active", "inactive", "failed", "activating", "deactivating", "reloading"})
_RPM_QF = "%{NAME} %|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\n"


@dataclass(frozen=True, slots=True)
class Probe:
    """A named command and the parser that turns its output into state.

    ``kind`` names the parser family (``dpkg``, ``rpm``, ...) so comparators can pick a version
    ordering; ``check_exit`` off accepts any exit status (``systemctl is-active``, ``rpm -q``).
    """

    name: str
    command: str
    parser: Parser = p.parse_raw
    kind: str = "raw"
    timeout: float = DEFAULT_PROBE_TIMEOUT
    check_exit: bool = True


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a host's probes said at one moment: ``values`` by probe name, ``errors`` where they failed."""

    host: str
    when: datetime
    values: Mapping[str, Value] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)
    kinds: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the run store persists this)."""
        return {
            "host": self.host,
            "when": self.when.isoformat(),
            "values": dict(self.values),
            "errors": dict(self.errors),
            "kinds": dict(self.kinds),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Snapshot:
        """Rebuild a snapshot written by :meth:`to_dict`."""
        return cls(
            host=str(data["host"]),
            when=datetime.fromisoformat(str(data["when"])),
            values=dict(data.get("values", {})),
            errors={str(k): str(v) for k, v in data.get("errors", {}).items()},
            kinds={str(k): str(v) for k, v in data.get("kinds", {}).items()},
        )


def probe_from_spec(name: str, spec: ProbeSpec) -> Probe:
    """The probe a user's :class:`ProbeSpec` describes."""
    return Probe(
        name=name,
        command=spec.command,
        parser=p.parser_for(spec),
        kind=spec.parser,
        timeout=spec.timeout or DEFAULT_PROBE_TIMEOUT,
        check_exit=spec.check_exit,
    )


def _quoted(items: Iterable[str]) -> str:
    return " ".join(shlex.quote(i) for i in items)


def dpkg_packages(*names: str, name: str = "packages") -> Probe:
    """Installed Debian package versions (all, or the named ones) as {package: version}."""
    cmd = "dpkg-query -W -f='${Package} ${Version}\\n'" + (f" {_quoted(names)}" if names else "")
    return Probe(name, cmd, p.parse_dpkg_query, "dpkg", check_exit=not names)


def rpm_packages(*names: str, name: str = "packages") -> Probe:
    """Installed RPM package versions as {name: [epoch:]version-release}; absent names map to None."""
    query = f"-q {_quoted(names)}" if names else "-qa"
    return Probe(name, f"rpm {query} --qf '{_RPM_QF}'", p.parse_rpm, "rpm", check_exit=not names)


def package_version(package: str, name: str | None = None) -> Probe:
    """One package's version from dpkg or rpm, whichever the host has; ``None`` when not installed."""
    q = shlex.quote(package)
    cmd = (
        f"dpkg-query -W -f='${{Version}}' {q} 2>/dev/null"
        f" || rpm -q --qf '%|EPOCH?{{%{{EPOCH}}:}}:{{}}|%{{VERSION}}-%{{RELEASE}}' {q} 2>/dev/null"
    )
    return Probe(name or package, cmd, _version_or_none, "package", check_exit=False)


def _version_or_none(text: str) -> Value:
    line = text.strip()
    return None if not line or " " in line else line


def service_state(*units: str, name: str = "services") -> Probe:
    """``systemctl is-active``: one unit → its state word; several → {unit: state}."""
    parser: Parser = p.parse_systemctl if len(units) == 1 else _UnitStates(tuple(units))
    return Probe(name, f"systemctl is-active {_quoted(units)}", parser, "systemctl", check_exit=False)


@dataclass(frozen=True, slots=True)
class _UnitStates:
    units: tuple[str, ...]

    def __call__(self, text: str) -> Value:
        states = [line.strip() for line in text.splitlines() if line.strip()]
        if len(states) != len(self.units):
            raise VerificationError(f"expected {len(self.units)} unit states, got {len(states)}")
        return dict(zip(self.units, states, strict=True))


def service_show(unit: str, *properties: str, name: str | None = None) -> Probe:
    """``systemctl show UNIT`` (optionally only some properties) as a dict."""
    props = f" --property={','.join(properties)}" if properties else ""
    return Probe(name or unit, f"systemctl show {shlex.quote(unit)}{props}", p.parse_systemctl, "systemctl")


def file_checksum(*paths: str, name: str = "checksums") -> Probe:
    """SHA-256 of files as {path: digest}."""
    return Probe(name, f"sha256sum {_quoted(paths)}", p.parse_checksums, "checksum")


def file_mode(*paths: str, name: str = "file_modes") -> Probe:
    """Mode, owner and group of files as {path: {mode, owner, group}}."""
    return Probe(name, f"stat -c '%a %U %G %n' {_quoted(paths)}", p.parse_file_modes, "file_mode")


def listening_ports(name: str = "ports") -> Probe:
    """Listening TCP sockets as a sorted list of ``address:port``."""
    return Probe(name, "ss -ltn", p.parse_ports, "ports")


def kernel(name: str = "kernel") -> Probe:
    """The running kernel release (``uname -r``)."""
    return Probe(name, "uname -r", p.parse_kernel, "kernel")


def os_release(name: str = "os_release") -> Probe:
    """``/etc/os-release`` as a dict."""
    return Probe(name, "cat /etc/os-release", p.parse_os_release, "os_release")


def standard_probes() -> tuple[Probe, ...]:
    """A small everyday set: kernel, OS release, listening ports."""
    return (kernel(), os_release(), listening_ports())


def expect_probe(key: str, desired: str) -> Probe:
    """The probe a desired-state entry needs: a systemd state word → the unit's state, else a version."""
    name = f"expect:{key}"
    if desired.strip() in SYSTEMD_STATES:
        return service_state(key, name=name)
    return package_version(key, name=name)


async def capture(
    transport: Transport,
    host: str,
    probes: Sequence[Probe],
    *,
    clock: Clock | None = None,
    batch: bool = False,
) -> Snapshot:
    """Run ``probes`` on ``host`` and return what they found (failures as ``errors``).

    By default the probes run concurrently, one command each. With ``batch`` they run in order
    inside one shell command (one SSH channel and one shell instead of one per probe), each
    still with its own stdout, stderr and exit status; the batch's timeout is the sum of theirs.
    The simulator answers single commands only, so batching is for real shells (SSH, local).
    """
    when = (clock or RealClock()).now()
    if batch and len(probes) > 1:
        results = await _run_batch(transport, host, probes)
    else:
        results = list(await asyncio.gather(*(_run_probe(transport, host, probe) for probe in probes)))
    values = {probe.name: value for probe, (value, err) in zip(probes, results, strict=True) if err is None}
    errors = {probe.name: err for probe, (_, err) in zip(probes, results, strict=True) if err is not None}
    kinds = {probe.name: probe.kind for probe in probes}
    return Snapshot(host, when, values, errors, kinds)


async def capture_many(
    transport: Transport,
    hosts: Iterable[str],
    probes: Sequence[Probe],
    *,
    clock: Clock | None = None,
    concurrency: int = 100,
    batch: bool = False,
) -> dict[str, Snapshot]:
    """Capture many hosts, at most ``concurrency`` at a time; one snapshot per host."""
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(host: str) -> Snapshot:
        async with gate:
            return await capture(transport, host, probes, clock=clock, batch=batch)

    snapshots = await asyncio.gather(*(one(h) for h in hosts))
    return {s.host: s for s in snapshots}


_Outcome = tuple[Value, str | None]


async def _run(transport: Transport, host: str, command: str, timeout: float) -> CommandResult | str:
    """The command's result, or why there is none."""
    try:
        async with asyncio.timeout(timeout + _TIMEOUT_GRACE):
            return await transport.run(host, command, timeout=timeout)
    except TimeoutError:
        return f"timed out after {timeout:g}s"
    except TransportError as exc:
        return f"{type(exc).__name__}: {exc}"


async def _run_probe(transport: Transport, host: str, probe: Probe) -> _Outcome:
    result = await _run(transport, host, probe.command, probe.timeout)
    if isinstance(result, str):
        return None, result
    status: int | str | None = result.exit_status if result.signal is None else result.signal
    return _interpret(probe, status, result.stdout, result.stderr)


def _interpret(probe: Probe, status: int | str | None, stdout: str, stderr: str) -> _Outcome:
    if probe.check_exit and status != 0:
        detail = stderr.strip()[:_ERROR_DETAIL]
        return None, f"exit {status}" + (f": {detail}" if detail else "")
    try:
        return probe.parser(stdout), None
    except VerificationError as exc:
        return None, f"unparseable output: {exc}"


def batch_command(probes: Sequence[Probe], token: str) -> str:
    """One POSIX shell script running ``probes`` in order, framing each one's stdout, status and stderr.

    Each probe's stdout passes through on fd 3 while its stderr is captured; after it come
    ``\n<token> rc <i> <status>\n<stderr>\n<token> end <i>\n``. Probes run in subshells, so one
    cannot change another's directory or variables.
    """
    parts = [
        f"{{ __sf_e=$( {{ {probe.command}\n}} 2>&1 1>&3 3>&- ); }} 3>&1; __sf_rc=$?\n"
        f'printf \'\\n%s rc {i} %s\\n%s\\n%s end {i}\\n\' {token} "$__sf_rc" "$__sf_e" {token}'
        for i, probe in enumerate(probes)
    ]
    return "\n".join(parts)


def split_batch(stdout: str, token: str, count: int) -> list[tuple[int, str, str] | None]:
    """(status, stdout, stderr) per probe from a batch's output; None where the frame is missing."""
    frames: list[tuple[int, str, str] | None] = []
    pos = 0
    for i in range(count):
        rc_mark, end_mark = f"\n{token} rc {i} ", f"\n{token} end {i}\n"
        j = stdout.find(rc_mark, pos)
        k = stdout.find("\n", j + len(rc_mark)) if j >= 0 else -1
        m = stdout.find(end_mark, k) if k >= 0 else -1
        if m < 0:
            frames += [None] * (count - i)
            break
        frames.append((int(stdout[j + len(rc_mark) : k]), stdout[pos:j], stdout[k + 1 : m]))
        pos = m + len(end_mark)
    return frames


async def _run_batch(transport: Transport, host: str, probes: Sequence[Probe]) -> list[_Outcome]:
    token = f"__sysflow_{secrets.token_hex(8)}"
    result = await _run(transport, host, batch_command(probes, token), sum(p.timeout for p in probes))
    if isinstance(result, str):
        return [(None, result)] * len(probes)
    if result.truncated:  # the output cap cut frames out: run them one by one instead
        return list(await asyncio.gather(*(_run_probe(transport, host, p) for p in probes)))
    frames = split_batch(result.stdout, token, len(probes))
    why = f"batch ended early (exit {result.exit_status if result.signal is None else result.signal})"
    return [
        (None, why) if frame is None else _interpret(probe, *frame)
        for probe, frame in zip(probes, frames, strict=True)
    ]
