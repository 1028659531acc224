"""Infrastructure state providers: checks before waves and at gates that hold, skip or throttle.

A :class:`StateProvider` reads one piece of the world around the rollout and says whether it is
healthy: :class:`HttpStateProvider` GETs a URL (a monitoring endpoint, a load balancer's pool
status) and tests its JSON with the check's ``expect`` condition; :class:`CommandStateProvider` runs
a probe command on a host through the run's transport. :class:`StateMonitor` evaluates a workflow's
``state_checks`` at a checkpoint and decides: proceed, hold (poll every ``interval`` until healthy,
at most ``timeout``, else stop the run), skip the wave, or throttle (lower a capacity of the run's
admission for the rest of the run).

HTTP runs in a worker thread (``urllib``; no extra dependency) under urllib's own timeout, with no
asyncio timer around it, so the simulator's virtual clock does not jump past a real request.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from sysflow.clock import Clock
from sysflow.engine.events import EventKind
from sysflow.errors import SysflowError, TransportError
from sysflow.model.conditions import ConditionError, parse_condition
from sysflow.model.state_checks import STATE_NAMES, CheckPoint, StateAction, StateCheck
from sysflow.transport import Transport

__all__ = [
    "CommandStateProvider",
    "HttpStateProvider",
    "StateDecision",
    "StateMonitor",
    "StateProvider",
    "StateReading",
    "StateVerdict",
]

_BODY_LIMIT = 1 << 20  # bytes of an HTTP answer read at most (1 MiB)
_DETAIL = 200  # characters of a failing answer kept in reasons


@dataclass(frozen=True, slots=True)
class StateReading:
    """One evaluation of a check: healthy or not, and a short reason; ``final``: waiting cannot help
    (a rejected change ticket), the run stops whatever the check's action."""

    healthy: bool
    detail: str
    final: bool = False


class StateProvider(Protocol):
    """Reads a piece of infrastructure state; ``hosts`` are those of the wave concerned."""

    @property
    def name(self) -> str: ...

    async def read(self, hosts: Sequence[str]) -> StateReading: ...


class StateVerdict(StrEnum):
    PROCEED = "proceed"
    SKIP = "skip"
    STOP = "stop"


@dataclass(frozen=True, slots=True)
class StateDecision:
    verdict: StateVerdict
    reason: str = ""
    groups: tuple[str, ...] | None = None  # skip: only hosts of these groups (None: the whole wave)


def judge(name: str, expect: str, values: Mapping[str, Any]) -> StateReading:
    """A reading from ``expect`` evaluated over ``values`` (what every provider tests)."""
    try:
        healthy = parse_condition(expect, STATE_NAMES).evaluate(values)
    except ConditionError as exc:
        return StateReading(False, f"{name}: {exc}")
    return StateReading(healthy, f"{name}: {expect} is {'true' if healthy else 'false'}")


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _http_get(url: str, timeout: float) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # http(s) only (checked)
            return int(response.status), response.read(_BODY_LIMIT).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read(_BODY_LIMIT).decode("utf-8", "replace")


@dataclass
class HttpStateProvider:
    """GET ``spec.url`` and test ``json`` (and ``status``, ``ok``, ``stdout`` = the body)."""

    spec: StateCheck

    @property
    def name(self) -> str:
        return self.spec.name

    async def read(self, hosts: Sequence[str]) -> StateReading:
        assert self.spec.url is not None
        try:
            status, body = await asyncio.to_thread(_http_get, self.spec.url, self.spec.request_timeout)
        except (OSError, ValueError) as exc:  # URLError is an OSError
            return StateReading(False, f"{self.name}: GET failed: {exc}")
        values = {
            "json": _json_or_none(body),
            "status": status,
            "ok": 200 <= status < 300,
            "stdout": body,
            "stderr": "",
            "rc": None,
        }
        return judge(self.name, self.spec.expect, values)


@dataclass
class CommandStateProvider:
    """Run ``spec.command`` on ``spec.host`` (or the wave's first host) and test its result."""

    spec: StateCheck
    transport: Transport

    @property
    def name(self) -> str:
        return self.spec.name

    async def read(self, hosts: Sequence[str]) -> StateReading:
        assert self.spec.command is not None
        host = self.spec.host or (hosts[0] if hosts else None)
        if host is None:
            return StateReading(True, f"{self.name}: no host to probe")
        try:
            res = await self.transport.run(host, self.spec.command, timeout=self.spec.request_timeout)
        except TransportError as exc:
            return StateReading(False, f"{self.name}: {type(exc).__name__}: {exc}")
        values = {
            "json": _json_or_none(res.stdout),
            "status": None,
            "ok": res.ok,
            "stdout": res.stdout,
            "stderr": res.stderr,
            "rc": res.exit_status,
        }
        return judge(self.name, self.spec.expect, values)


Emit = Callable[..., None]
SetCapacity = Callable[[str, float], None]


class StateMonitor:
    """Evaluates a workflow's state checks at a checkpoint and decides what the run does."""

    def __init__(self, checks: Sequence[tuple[StateCheck, StateProvider]], clock: Clock) -> None:
        self.checks = list(checks)
        self.clock = clock
        self.throttled: dict[str, float] = {}  # capacity key -> value set by a throttle

    @classmethod
    def from_workflow(cls, checks: Sequence[StateCheck], transport: Transport, clock: Clock) -> StateMonitor:
        providers: list[tuple[StateCheck, StateProvider]] = []
        for c in checks:
            provider: StateProvider = (
                HttpStateProvider(c) if c.url is not None else CommandStateProvider(c, transport)
            )
            if c.prometheus is not None:
                from sysflow.engine.prometheus import PrometheusStateProvider

                provider = PrometheusStateProvider(c, clock)
            providers.append((c, provider))
        return cls(providers, clock)

    async def evaluate(
        self,
        point: CheckPoint,
        wave: int,
        hosts: Sequence[str],
        emit: Emit,
        set_capacity: SetCapacity | None,
    ) -> StateDecision:
        """Run the checks that apply at ``point`` before/after wave ``wave`` (0-based)."""
        for spec, provider in self.checks:
            if not spec.applies(point, wave):
                continue
            reading = await self._read(spec, provider, wave, hosts, emit)
            if reading.healthy:
                continue
            decision = await self._act(spec, provider, reading, wave, hosts, emit, set_capacity)
            if decision.verdict is not StateVerdict.PROCEED:
                return decision
        return StateDecision(StateVerdict.PROCEED)

    async def _read(
        self, spec: StateCheck, provider: StateProvider, wave: int, hosts: Sequence[str], emit: Emit
    ) -> StateReading:
        reading = await provider.read(hosts)
        emit(
            EventKind.STATE_CHECKED,
            reading.detail[:_DETAIL],
            wave=wave,
            check=spec.name,
            healthy=reading.healthy,
            action=spec.action.value,
        )
        return reading

    async def _act(
        self,
        spec: StateCheck,
        provider: StateProvider,
        reading: StateReading,
        wave: int,
        hosts: Sequence[str],
        emit: Emit,
        set_capacity: SetCapacity | None,
    ) -> StateDecision:
        if reading.final:
            return StateDecision(StateVerdict.STOP, reading.detail)
        if spec.action is StateAction.SKIP:
            groups = tuple(spec.groups) if spec.groups is not None else None
            return StateDecision(StateVerdict.SKIP, f"state check {reading.detail}", groups)
        if spec.action is StateAction.THROTTLE:
            self._throttle(spec, wave, emit, set_capacity)
            return StateDecision(StateVerdict.PROCEED)
        return await self._hold(spec, provider, wave, hosts, emit)

    async def _hold(
        self, spec: StateCheck, provider: StateProvider, wave: int, hosts: Sequence[str], emit: Emit
    ) -> StateDecision:
        """Poll until healthy; at most ``timeout`` seconds (a bounded number of reads)."""
        polls = max(1, int(spec.timeout // spec.interval))
        reading = StateReading(False, spec.name)
        for _ in range(polls):
            await self.clock.sleep(spec.interval)
            reading = await self._read(spec, provider, wave, hosts, emit)
            if reading.healthy:
                return StateDecision(StateVerdict.PROCEED)
            if reading.final:
                return StateDecision(StateVerdict.STOP, reading.detail)
        return StateDecision(
            StateVerdict.STOP, f"state check still failing after {spec.timeout:g}s: {reading.detail}"
        )

    def _throttle(self, spec: StateCheck, wave: int, emit: Emit, set_capacity: SetCapacity | None) -> None:
        assert spec.capacity is not None
        current = self.throttled.get(spec.capacity_key)
        if current is not None and current <= spec.capacity:
            return  # only ever lowered
        if set_capacity is None:
            emit(
                EventKind.STATE_CHECKED, f"{spec.name}: cannot throttle this run", wave=wave, check=spec.name
            )
            return
        try:
            set_capacity(spec.capacity_key, spec.capacity)
        except SysflowError as exc:
            emit(EventKind.STATE_CHECKED, f"{spec.name}: throttle failed: {exc}", wave=wave, check=spec.name)
            return
        self.throttled[spec.capacity_key] = spec.capacity
        emit(
            EventKind.STATE_CHECKED,
            f"{spec.name}: {spec.capacity_key} lowered to {spec.capacity:g} for the rest of the run",
            wave=wave,
            check=spec.name,
            throttled=spec.capacity_key,
            capacity=spec.capacity,
        )
