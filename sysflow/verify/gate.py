"""The engine's hooks: a :class:`Verifier` that captures snapshots around tasks, and the wave gate.

The engine drives a :class:`Verifier` per run: ``before(host, task)`` before each task and
``after(host, task)`` after it (only the tasks a :class:`VerificationSpec` names capture anything),
then ``verify(host)`` for the host's verdicts, ``report()`` for the run's
:class:`VerificationReport`. After a wave it calls :func:`evaluate_gate` (or ``Verifier.gate``),
which says PASS / FAIL / INCONCLUSIVE with reasons. Snapshots live in a :class:`SnapshotStore` that
the run store can persist with ``to_dict`` / ``from_dict``.
"""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sysflow.clock import Clock, RealClock
from sysflow.model.verification import VerificationSpec
from sysflow.transport import Transport
from sysflow.verify.compare import Outcome, Verdict, check_expect, compare_snapshots
from sysflow.verify.drift import DriftReport, detect_drift
from sysflow.verify.probes import Probe, Snapshot, capture, expect_probe, probe_from_spec
from sysflow.verify.report import VerificationReport

__all__ = [
    "DEFAULT_CONCURRENCY",
    "GateVerdict",
    "Phase",
    "SnapshotStore",
    "Verifier",
    "evaluate_gate",
    "spec_probes",
    "targets_match",
]

DEFAULT_CONCURRENCY = 200  # hosts captured at once by one verifier
_MAX_REASONS = 20  # reasons listed in a gate verdict before "... and N more"


class Phase(StrEnum):
    """When a snapshot was taken relative to the tasks."""

    BEFORE = "before"
    AFTER = "after"


class SnapshotStore:
    """Snapshots in memory by (verification, host, phase); the latest of each wins."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, str, Phase], Snapshot] = {}

    def put(self, verification: str, phase: Phase, snapshot: Snapshot) -> None:
        self._data[(verification, snapshot.host, phase)] = snapshot

    def get(self, verification: str, host: str, phase: Phase) -> Snapshot | None:
        return self._data.get((verification, host, phase))

    def __len__(self) -> int:
        return len(self._data)

    def copy(self) -> SnapshotStore:
        """A new store holding the same (immutable) snapshots."""
        other = SnapshotStore()
        other._data = dict(self._data)
        return other

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"snapshots": [{verification, phase, snapshot}, ...]}``."""
        rows = [
            {"verification": v, "phase": p.value, "snapshot": s.to_dict()}
            for (v, _, p), s in self._data.items()
        ]
        return {"snapshots": rows}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SnapshotStore:
        store = cls()
        for row in data.get("snapshots", []):
            store.put(str(row["verification"]), Phase(row["phase"]), Snapshot.from_dict(row["snapshot"]))
        return store


@dataclass(frozen=True, slots=True)
class GateVerdict:
    """What a gate decided after a wave, why, and the verification behind it."""

    outcome: Outcome
    reasons: tuple[str, ...] = ()
    report: VerificationReport = field(default_factory=VerificationReport)

    @property
    def passed(self) -> bool:
        return self.outcome is Outcome.PASS


def targets_match(host: str, spec: VerificationSpec) -> bool:
    """Default targeting: ``all``, the host's name, or a glob on it (the engine may resolve groups)."""
    return any(t in {"all", "*"} or fnmatch.fnmatchcase(host, t) for t in spec.targets)


def spec_probes(spec: VerificationSpec) -> tuple[Probe, ...]:
    """The probes a spec captures: its commands plus one per desired-state entry."""
    probes = [probe_from_spec(name, p) for name, p in spec.commands.items()]
    probes += [expect_probe(key, desired) for key, desired in spec.expect.items()]
    return tuple(probes)


class Verifier:
    """Captures snapshots around tasks and turns them into verdicts, per host and per run.

    ``batch`` runs a spec's probes as one shell command per host (see ``probes.capture``): use it
    over SSH, not on the simulator.
    """

    def __init__(
        self,
        transport: Transport,
        specs: Mapping[str, VerificationSpec],
        *,
        clock: Clock | None = None,
        store: SnapshotStore | None = None,
        applies: Callable[[str, VerificationSpec], bool] = targets_match,
        concurrency: int = DEFAULT_CONCURRENCY,
        batch: bool = False,
    ) -> None:
        self._transport = transport
        self._batch = batch
        self._specs = dict(specs)
        self._probes = {name: spec_probes(spec) for name, spec in self._specs.items()}
        self._clock = clock or RealClock()
        self.store = store if store is not None else SnapshotStore()
        self._applies = applies
        self._limit = asyncio.Semaphore(max(1, concurrency))
        self._verdicts: dict[str, list[Verdict]] = {}

    def _specs_for(self, host: str) -> list[str]:
        return [name for name, spec in self._specs.items() if self._applies(host, spec)]

    async def _capture(self, name: str, host: str, phase: Phase) -> Snapshot:
        async with self._limit:
            snap = await capture(
                self._transport, host, self._probes[name], clock=self._clock, batch=self._batch
            )
        self.store.put(name, phase, snap)
        return snap

    async def before(self, host: str, task: str) -> list[Snapshot]:
        """Call before ``task`` runs on ``host``: captures specs listing it (or with no before_tasks, once)."""
        due = [
            n
            for n in self._specs_for(host)
            if task in self._specs[n].before_tasks
            or (not self._specs[n].before_tasks and self.store.get(n, host, Phase.BEFORE) is None)
        ]
        return list(await asyncio.gather(*(self._capture(n, host, Phase.BEFORE) for n in due)))

    async def after(self, host: str, task: str) -> list[Snapshot]:
        """Call after ``task`` ran on ``host``: captures the specs whose after_tasks list it."""
        due = [n for n in self._specs_for(host) if task in self._specs[n].after_tasks]
        return list(await asyncio.gather(*(self._capture(n, host, Phase.AFTER) for n in due)))

    async def verify(self, host: str) -> list[Verdict]:
        """The host's verdicts for every spec that applies; a missing after-snapshot is captured now."""
        verdicts: list[Verdict] = []
        for name in self._specs_for(host):
            after = self.store.get(name, host, Phase.AFTER) or await self._capture(name, host, Phase.AFTER)
            verdicts += self._judge(name, self.store.get(name, host, Phase.BEFORE), after)
        self._verdicts[host] = verdicts
        return verdicts

    async def verify_many(self, hosts: Iterable[str]) -> dict[str, list[Verdict]]:
        """``verify`` for many hosts concurrently (captures bounded by the verifier's concurrency)."""
        names = list(dict.fromkeys(hosts))
        results = await asyncio.gather(*(self.verify(h) for h in names))
        return dict(zip(names, results, strict=True))

    def _judge(self, name: str, before: Snapshot | None, after: Snapshot) -> list[Verdict]:
        spec = self._specs[name]
        verdicts = [
            compare_snapshots(c, cs, before, after, verification=name) for c, cs in spec.comparisons.items()
        ]
        return verdicts + check_expect(spec.expect, after, verification=name)

    def drift(self, hosts: Iterable[str] | None = None) -> list[DriftReport]:
        """Drift across the after-snapshots of ``hosts`` (default: all verified) for specs with ``drift``."""
        chosen = list(hosts) if hosts is not None else list(self._verdicts)
        reports: list[DriftReport] = []
        for name, spec in self._specs.items():
            if spec.drift is None:
                continue
            wanted = [*chosen, spec.drift.golden_host] if spec.drift.golden_host else chosen
            snaps = {
                h: s for h in dict.fromkeys(wanted) if (s := self.store.get(name, h, Phase.AFTER)) is not None
            }
            reports.append(
                detect_drift(snaps, probes=spec.drift.probes or None, golden=spec.drift.golden_host)
            )
        return reports

    def report(
        self, hosts: Iterable[str] | None = None, *, title: str = "Verification report"
    ) -> VerificationReport:
        """The report of the verified hosts (or the given ones), with drift."""
        chosen = list(hosts) if hosts is not None else list(self._verdicts)
        verdicts = [v for h in chosen for v in self._verdicts.get(h, [])]
        return VerificationReport.build(verdicts, drift=self.drift(chosen), title=title)

    async def gate(self, hosts: Sequence[str]) -> GateVerdict:
        """Verify a wave's hosts and decide: FAIL on any failed check or drift, INCONCLUSIVE on doubt."""
        await self.verify_many([*hosts, *self._golden_hosts()])
        report = self.report(hosts, title="Gate verification")
        return GateVerdict(report.outcome, _reasons(report), report)

    def _golden_hosts(self) -> list[str]:
        return [
            s.drift.golden_host for s in self._specs.values() if s.drift is not None and s.drift.golden_host
        ]


def _reasons(report: VerificationReport) -> tuple[str, ...]:
    reasons = [f"{v.host}: {v.verification}/{v.check} {v.passed.value}: {v.reason}" for v in report.failures]
    for d in report.drift:
        for host, diffs in d.by_host().items():
            items = ", ".join(x.item for x in diffs)
            reasons.append(f"{host}: drift against {d.reference}: {items}")
    if len(reasons) > _MAX_REASONS:
        reasons = [*reasons[:_MAX_REASONS], f"... and {len(reasons) - _MAX_REASONS} more"]
    if not reasons:
        reasons = [f"{len(report.hosts)} hosts, {report.counts.total} checks passed"]
    return tuple(reasons)


async def evaluate_gate(
    transport: Transport,
    hosts: Sequence[str],
    specs: Mapping[str, VerificationSpec],
    snapshots: SnapshotStore | None = None,
    *,
    clock: Clock | None = None,
    applies: Callable[[str, VerificationSpec], bool] = targets_match,
    concurrency: int = DEFAULT_CONCURRENCY,
    batch: bool = False,
) -> GateVerdict:
    """The gate hook: capture the wave's after-state, judge it against ``snapshots`` (the before-state)."""
    store = snapshots.copy() if snapshots is not None else SnapshotStore()
    verifier = Verifier(
        transport, specs, clock=clock, store=store, applies=applies, concurrency=concurrency, batch=batch
    )
    return await verifier.gate(hosts)
