"""A simulated fleet: hosts with state, command rules, sampled durations and network faults.

``SimFleet(inventory, profile, seed)`` decides, for a command started on a host at a virtual
instant, what happens: which rule applies, how long it runs, whether it fails, hangs or loses its
connection (partition, flapping, reboot), what it prints, and how it changes the host's state.
It does no waiting itself: :class:`sysflow.sim.transport.SimTransport` sleeps on the clock.

Determinism: every host draws from its own ``HostRandom(f"{seed}:{host}")`` stream (sim/rng.py), so the
order in which concurrent hosts run never changes what one host samples. A host's own commands draw
in the order they start.

Connection faults, and when they surface:

* ``unreachable: refused`` → ``HostUnreachable`` at once; ``unreachable: timeout`` and a partition
  at connect time → ``ConnectTimeout`` after ``connect_timeout``;
* a host down (flap down period, rebooting) at connect time → ``HostUnreachable`` at once;
* a host going down (partition start, flap, a reboot's late drop) while a command runs →
  ``ConnectionFailed`` at that instant, without the command's effect.

A reboot (the ``reboot`` rule's effect) takes the host down ``drop_after`` seconds after its command
ended (0 unless the host's ``reboot`` fault says), for the rule's down time or the fault's (``never``:
for good); the first connect after that boots it (a new boot id, the pending kernel).
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sysflow.clock import utc
from sysflow.model.inventory import Inventory
from sysflow.sim.loop import DEFAULT_START
from sysflow.sim.profile import (
    Distribution,
    Effect,
    Fixed,
    Flap,
    Partition,
    RebootFault,
    Rule,
    SimProfile,
)
from sysflow.sim.reboots import REBOOT_RULES
from sysflow.sim.rng import HostRandom
from sysflow.sim.rules import DEFAULT_RULES, Reply, grep_filter, respond
from sysflow.sim.state import HostState

__all__ = ["ConnectFault", "Fault", "Outcome", "Recorded", "SimFleet"]

_UNMATCHED = Rule(name="unmatched", match=r"", duration=Fixed(seconds=1.0))
_CACHE_LIMIT = 4096  # distinct command texts whose matching rule is cached


class Fault(enum.Enum):
    """Why a host cannot be reached."""

    REFUSED = "refused"
    TIMEOUT = "timeout"
    DOWN = "down"
    PARTITIONED = "partitioned"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class ConnectFault:
    """A connect attempt fails with ``fault`` after ``delay`` seconds."""

    fault: Fault
    delay: float
    reason: str


@dataclass(frozen=True, slots=True)
class Recorded:
    """A recorded outcome to replay: duration, exit status, output, or a connection error."""

    duration: float
    exit_status: int | None
    stdout: str = ""
    stderr: str = ""
    error: str | None = None  # name of the TransportError class raised, if any


@dataclass(slots=True)
class Outcome:
    """What a command started at ``start`` will do; ``finish`` fills the reply at its end."""

    host: str
    command: str
    rule: Rule
    groups: Mapping[str, str]
    start: float
    duration: float  # seconds until it finishes; math.inf when it hangs
    failed: bool
    lost_at: float | None = None  # virtual instant the connection drops, if before the end
    lost_reason: str = ""
    lost_error: str = "ConnectionFailed"  # errors class raised when the connection is lost
    recorded: Recorded | None = None


@dataclass(slots=True)
class _HostFaults:
    refuse: bool = False
    timeout: bool = False
    slow: float = 1.0
    flaps: list[Flap] = field(default_factory=list)
    hang: list[re.Pattern[str]] = field(default_factory=list)
    partitions: list[tuple[float, float, str]] = field(default_factory=list)
    reboot: RebootFault | None = None


_NO_FAULTS = _HostFaults()


class SimFleet:
    """Simulated hosts of ``inventory`` behaving as ``profile`` says, seeded by ``seed``."""

    def __init__(
        self,
        inventory: Inventory,
        profile: SimProfile | None = None,
        seed: int | str = 0,
        *,
        start: datetime | None = None,
        replay: Iterable[tuple[str, str, Recorded]] = (),
    ) -> None:
        self.inventory = inventory
        self.profile = profile or SimProfile()
        self.seed = seed
        self.start = utc(start) if start is not None else DEFAULT_START
        self.rules: tuple[Rule, ...] = tuple(self.profile.rules) + (
            REBOOT_RULES + DEFAULT_RULES if self.profile.default_rules else ()
        )
        self._compiled = [(re.compile(r.match), r) for r in self.rules]
        self._match_cache: dict[str, tuple[Rule, dict[str, str]]] = {}
        self._states: dict[str, HostState] = {}
        self._rngs: dict[str, HostRandom] = {}
        self._durations: dict[tuple[str, str], Distribution] = {}
        self._rebooting: dict[str, tuple[float, float]] = {}  # host -> (goes down, comes back)
        self._faults = self._build_faults()
        self._replay: dict[tuple[str, str], list[Recorded]] = {}
        for host, command, rec in replay:
            self._replay.setdefault((host, command), []).append(rec)
        for recs in self._replay.values():
            recs.reverse()  # pop() from the end gives them in recorded order

    # -- state ---------------------------------------------------------------------------------

    def state(self, host: str) -> HostState:
        """The (mutable) state of ``host``, created on first use.

        The profile's packages, available versions, services and kernel apply to every host; host
        or group variables ``sim_packages``, ``sim_available``, ``sim_services`` (mappings, merged
        over them) and ``sim_kernel`` make hosts differ, e.g. a straggler for drift reports.
        """
        st = self._states.get(host)
        if st is None:
            st = self._states[host] = self._initial_state(host)
        return st

    def _initial_state(self, host: str) -> HostState:
        p = self.profile
        hv = self.inventory.host_vars(host) if host in self.inventory.hosts else {}
        return HostState.initial(
            _merged(p.packages, hv.get("sim_packages")),
            _merged(p.available, hv.get("sim_available")),
            _merged(p.services, hv.get("sim_services")),
            str(hv.get("sim_kernel") or p.kernel or "") or None,
        )

    def rng(self, host: str) -> HostRandom:
        """The random stream of ``host``: ``HostRandom(f"{seed}:{host}")``."""
        r = self._rngs.get(host)
        if r is None:
            r = self._rngs[host] = HostRandom(f"{self.seed}:{host}")
        return r

    def seconds(self, when: datetime) -> float:
        """Virtual seconds of ``when`` since the simulation start."""
        return (utc(when) - self.start).total_seconds()

    # -- connecting ----------------------------------------------------------------------------

    def connect_fault(self, host: str, t: float) -> ConnectFault | None:
        """Why connecting to ``host`` at ``t`` fails, or None when it succeeds."""
        if host not in self.inventory.hosts:
            return ConnectFault(Fault.UNKNOWN, 0.0, "could not resolve hostname (not in the inventory)")
        f = self._faults.get(host, _NO_FAULTS)
        if f.refuse:
            return ConnectFault(Fault.REFUSED, 0.0, "connection refused (simulated unreachable host)")
        if f.timeout:
            return ConnectFault(Fault.TIMEOUT, self.profile.connect_timeout, "no answer (simulated)")
        for start, end, label in f.partitions:
            if start <= t < end:
                return ConnectFault(Fault.PARTITIONED, self.profile.connect_timeout, f"partitioned ({label})")
        span = self._rebooting.get(host)
        if span is not None and t >= span[0]:
            if t < span[1]:
                return ConnectFault(Fault.DOWN, 0.0, "host is down (rebooting)")
            del self._rebooting[host]
            self.state(host).boot()
        for flap in f.flaps:
            if _flap_down(flap, t):
                return ConnectFault(Fault.DOWN, 0.0, "host is down (flapping)")
        return None

    def _next_down(self, host: str, t0: float, t1: float) -> tuple[float, str] | None:
        """The first instant in ``(t0, t1)`` at which ``host`` becomes unreachable."""
        f = self._faults.get(host, _NO_FAULTS)
        best: tuple[float, str] | None = None
        span = self._rebooting.get(host)
        if span is not None and t0 < span[0] < t1:
            best = (span[0], "connection lost: host went down (rebooting)")
        for start, _end, label in f.partitions:
            if t0 < start < t1 and (best is None or start < best[0]):
                best = (start, f"connection lost: partitioned ({label})")
        for flap in f.flaps:
            down = _next_flap_down(flap, t0)
            if down < t1 and (best is None or down < best[0]):
                best = (down, "connection lost: host went down (flapping)")
        return best

    # -- running -------------------------------------------------------------------------------

    def match(self, command: str) -> tuple[Rule, dict[str, str]]:
        """The first rule matching ``command`` and its named groups."""
        hit = self._match_cache.get(command)
        if hit is None:
            hit = (_UNMATCHED, {})
            for rx, rule in self._compiled:
                m = rx.search(command)
                if m is not None:
                    hit = (rule, {k: v for k, v in m.groupdict().items() if v is not None})
                    break
            if len(self._match_cache) >= _CACHE_LIMIT:
                self._match_cache.clear()
            self._match_cache[command] = hit
        return hit

    def begin(self, host: str, command: str, t: float) -> Outcome:
        """Decide what ``command``, started on ``host`` at ``t`` (after a successful connect), does."""
        rule, groups = self.match(command)
        if self._replay:
            recs = self._replay.get((host, command))
            if recs:
                return self._replayed(host, command, rule, groups, t, recs.pop())
        rng = self.rng(host)
        duration = self._distribution(rule, host).sample(rng)
        failed = rng.random() < self._failure_probability(rule)
        out = Outcome(host, command, rule, groups, t, duration, failed)
        f = self._faults.get(host)
        if f is not None:  # the common case, a healthy host, stops here
            out.duration = self._faulty_duration(f, command, duration)
            self._check_loss(out, min(t + out.duration, t + self.profile.hang_limit))
        elif host in self._rebooting:  # up, but going down at a reboot's late drop
            self._check_loss(out, t + out.duration)
        return out

    @staticmethod
    def _faulty_duration(f: _HostFaults, command: str, duration: float) -> float:
        if any(rx.search(command) for rx in f.hang):
            return math.inf
        return duration * f.slow

    def _replayed(
        self, host: str, command: str, rule: Rule, groups: dict[str, str], t: float, rec: Recorded
    ) -> Outcome:
        failed = rec.exit_status != 0 or rec.error is not None
        duration = math.inf if rec.error is not None else rec.duration
        out = Outcome(host, command, rule, groups, t, duration, failed, recorded=rec)
        if rec.error is not None and rec.error != "CommandTimeout":
            out.lost_at, out.lost_reason = t + rec.duration, f"replayed {rec.error}"
            out.lost_error = rec.error
        else:
            self._check_loss(out, min(t + duration, t + self.profile.hang_limit))
        return out

    def _check_loss(self, out: Outcome, end: float) -> None:
        lost = self._next_down(out.host, out.start, end)
        if lost is not None:
            out.lost_at, out.lost_reason = lost

    def finish(self, out: Outcome, t: float) -> Reply:
        """The command ended normally at ``t``: apply its effect and say what it printed."""
        st = self.state(out.host)
        reply, effect = self._reply(out, st)
        if effect is not None:
            reboot = st.apply(effect, out.groups)
            if reboot is not None:
                self._reboot(out.host, t, reboot)
        rec = out.recorded
        if rec is not None:
            return Reply(rec.exit_status, rec.stdout, rec.stderr)
        return grep_filter(out.command, reply)

    def _reboot(self, host: str, t: float, down: float) -> None:
        """A reboot issued at ``t``: down ``down`` seconds (or as the host's fault says), maybe late."""
        fault = self._faults.get(host, _NO_FAULTS).reboot or RebootFault()
        down = math.inf if fault.never else fault.down if fault.down is not None else down
        self._rebooting[host] = (t + fault.drop_after, t + fault.drop_after + down)

    def _reply(self, out: Outcome, st: HostState) -> tuple[Reply, Effect | None]:
        """What the command prints (answered from the state before its effect), and its effect."""
        rule = out.rule
        if out.failed and rule.failure is not None:
            return Reply(rule.failure.exit_status, "", rule.failure.stderr), rule.failure.effect
        if out.failed:
            return Reply(1, "", f"{rule.name}: simulated failure\n"), None
        if rule.respond is not None:
            return respond(rule.respond, st, out.host, out.command, out.groups), rule.effect
        if rule is _UNMATCHED and self.profile.unmatched == "fail":
            words = out.command.split()
            return Reply(127, "", f"sh: 1: {words[0] if words else ''}: not found\n"), None
        return Reply(
            rule.exit_status, self._fill(rule.stdout, out), self._fill(rule.stderr, out)
        ), rule.effect

    # -- helpers -------------------------------------------------------------------------------

    def _distribution(self, rule: Rule, host: str) -> Distribution:
        per_group = self.profile.durations.get(rule.name)
        if not per_group:  # the rule's own, the same for every host: nothing to keep per host
            return rule.duration
        key = (rule.name, host)
        dist = self._durations.get(key)
        if dist is None:
            dist = self._durations[key] = self._group_distribution(rule, host, per_group)
        return dist

    def _group_distribution(
        self, rule: Rule, host: str, per_group: Mapping[str, Distribution]
    ) -> Distribution:
        for group in self.inventory.host_groups(host):
            if group in per_group:
                return per_group[group]
        return per_group.get("*", per_group.get("all", rule.duration))

    def _failure_probability(self, rule: Rule) -> float:
        p = self.profile.failure_probability.get(rule.name)
        if p is not None:
            return p
        return rule.failure.probability if rule.failure is not None else 0.0

    def _fill(self, template: str, out: Outcome) -> str:
        if "{" not in template:
            return template
        st = self.state(out.host)
        ctx: dict[str, Any] = {
            "host": out.host,
            "packages": st.packages,
            "services": st.services,
            "files": st.files,
            "kernel": st.kernel,
            "vars": self.inventory.host_vars(out.host),
            **out.groups,
        }
        try:
            return template.format_map(ctx)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"rule {out.rule.name!r}: bad output template {template!r}: {exc!r}") from None

    def _build_faults(self) -> dict[str, _HostFaults]:
        faults: dict[str, _HostFaults] = {}
        inv = self.inventory
        for hf in self.profile.hosts:
            for host in inv.select(hf.hosts):
                f = faults.setdefault(host, _HostFaults())
                f.refuse |= hf.unreachable == "refused"
                f.timeout |= hf.unreachable == "timeout"
                f.slow *= hf.slow
                if hf.flap is not None:
                    f.flaps.append(hf.flap)
                if hf.hang is not None:
                    f.hang.append(re.compile(hf.hang))
                f.reboot = hf.reboot or f.reboot
        for part in self.profile.partitions:
            span = (self._instant(part.start), self._instant(part.end), _label(part))
            for host in self._partition_hosts(part):
                faults.setdefault(host, _HostFaults()).partitions.append(span)
        return faults

    def _partition_hosts(self, part: Partition) -> list[str]:
        inv = self.inventory
        if part.hosts is not None:
            return inv.select(part.hosts)
        key, value = (
            ("datacenter", part.datacenter) if part.datacenter is not None else ("segment", part.segment)
        )
        hosts = []
        for name in inv.hosts:
            hv = inv.host_vars(name)
            where = hv.get("datacenter") if key == "datacenter" else hv.get("segment", hv.get("datacenter"))
            if where == value:
                hosts.append(name)
        return hosts

    def _instant(self, value: datetime | float) -> float:
        return self.seconds(value) if isinstance(value, datetime) else float(value)


def _merged(base: Mapping[str, str], extra: Any) -> dict[str, str] | None:
    """``base`` updated by a ``sim_*`` host variable (a mapping); None when both are empty."""
    merged = dict(base)
    if isinstance(extra, Mapping):
        merged.update({str(k): str(v) for k, v in extra.items()})
    return merged or None


def _label(part: Partition) -> str:
    if part.datacenter is not None:
        return f"datacenter {part.datacenter}"
    if part.segment is not None:
        return f"segment {part.segment}"
    return f"hosts {part.hosts}"


def _flap_down(flap: Flap, t: float) -> bool:
    """Whether a flapping host is in a down period at ``t``."""
    if t < flap.offset:
        return False
    return (t - flap.offset) % (flap.up + flap.down) >= flap.up


def _next_flap_down(flap: Flap, t: float) -> float:
    """The first down instant strictly after ``t`` (the next period's start if down now)."""
    period = flap.up + flap.down
    if t < flap.offset:
        return flap.offset + flap.up
    k = math.floor((t - flap.offset) / period)
    down = flap.offset + k * period + flap.up
    return down if down > t else down + period
