"""Drift: which hosts differ from their peers (majority or a golden host) or from their own past.

Values are compared per probe; a map-valued probe (package versions, file checksums, unit states)
is compared per key, so the report names the package that differs rather than "packages". The
reference for each probe (or key) is the most common value among the hosts that reported it; when
two values tie for most common there is no majority and that item is listed as ``ambiguous``
instead of naming outliers. A host whose probe failed is listed under ``unknown``, not as drifted.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sysflow.verify.compare import render_diff
from sysflow.verify.parsers import Value
from sysflow.verify.probes import Snapshot

__all__ = ["Difference", "DriftReport", "detect_drift", "drift_since"]

MAJORITY = "majority"
PREVIOUS = "previous"


@dataclass(frozen=True, slots=True)
class Difference:
    """One host's value of one probe (or one key of a map probe) that differs from the reference."""

    host: str
    probe: str
    key: str
    value: Value
    reference: Value

    @property
    def item(self) -> str:
        """``probe`` or ``probe[key]``."""
        return f"{self.probe}[{self.key}]" if self.key else self.probe

    @property
    def diff(self) -> str:
        return render_diff(self.reference, self.value, before_label="reference", after_label=self.host)

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "probe": self.probe,
            "key": self.key,
            "value": self.value,
            "reference": self.reference,
        }


@dataclass(frozen=True, slots=True)
class DriftReport:
    """Outliers and what differs, against ``reference`` (``majority``, a golden host, or ``previous``)."""

    reference: str
    hosts: tuple[str, ...]
    differences: tuple[Difference, ...] = ()
    ambiguous: tuple[str, ...] = ()
    unknown: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def outliers(self) -> tuple[str, ...]:
        """Hosts with at least one difference, in host order."""
        differing = {d.host for d in self.differences}
        return tuple(h for h in self.hosts if h in differing)

    @property
    def drifted(self) -> bool:
        return bool(self.differences)

    def by_host(self) -> dict[str, list[Difference]]:
        out: dict[str, list[Difference]] = {}
        for d in self.differences:
            out.setdefault(d.host, []).append(d)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "hosts": list(self.hosts),
            "outliers": list(self.outliers),
            "differences": [d.to_dict() for d in self.differences],
            "ambiguous": list(self.ambiguous),
            "unknown": {h: list(p) for h, p in self.unknown.items()},
        }


_ABSENT = "\x00absent"  # canonical form of a key a host's map does not have


def _canon(value: Value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _probe_names(snapshots: Iterable[Snapshot], probes: Sequence[str] | None) -> list[str]:
    if probes:
        return list(probes)
    names: dict[str, None] = {}
    for snap in snapshots:
        names.update(dict.fromkeys(snap.values))
        names.update(dict.fromkeys(snap.errors))
    return list(names)


def _unknown(snapshots: Mapping[str, Snapshot], probes: Sequence[str]) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for host, snap in snapshots.items():
        missing = tuple(p for p in probes if p not in snap.values)
        if missing:
            out[host] = missing
    return out


def detect_drift(
    snapshots: Mapping[str, Snapshot],
    *,
    probes: Sequence[str] | None = None,
    golden: str | None = None,
) -> DriftReport:
    """Compare hosts with each other (majority) or with ``golden``; report outliers and what differs."""
    names = _probe_names(snapshots.values(), probes)
    unknown = _unknown(snapshots, names)
    differences: list[Difference] = []
    ambiguous: list[str] = []
    for probe in names:
        reporting = {h: s.values[probe] for h, s in snapshots.items() if probe in s.values}
        if golden is not None:
            differences += _against_golden(probe, reporting, golden)
        else:
            found, unclear = _against_majority(probe, reporting)
            differences += found
            ambiguous += unclear
    return DriftReport(golden or MAJORITY, tuple(snapshots), tuple(differences), tuple(ambiguous), unknown)


def _keyed(probe: str, values: Mapping[str, Value]) -> dict[str, dict[str, Value]]:
    """key → host → value; a map probe's keys, or the single key ``""`` for scalars; absent keys too."""
    is_map = any(isinstance(v, dict) for v in values.values())
    if not is_map:
        return {"": dict(values)}
    keys: dict[str, None] = {}
    for v in values.values():
        keys.update(dict.fromkeys(v if isinstance(v, dict) else ()))
    return {
        k: {h: (v.get(k, _ABSENT) if isinstance(v, dict) else _ABSENT) for h, v in values.items()}
        for k in keys
    }


def _against_majority(probe: str, values: Mapping[str, Value]) -> tuple[list[Difference], list[str]]:
    differences: list[Difference] = []
    ambiguous: list[str] = []
    for key, per_host in _keyed(probe, values).items():
        counts = Counter(_canon(v) for v in per_host.values())
        top = counts.most_common(2)
        if len(top) < 2:
            continue
        if top[0][1] == top[1][1]:
            ambiguous.append(f"{probe}[{key}]" if key else probe)
            continue
        reference = next(v for v in per_host.values() if _canon(v) == top[0][0])
        differences += _differing(probe, key, per_host, reference)
    return differences, ambiguous


def _against_golden(probe: str, values: Mapping[str, Value], golden: str) -> list[Difference]:
    if golden not in values:
        return []
    differences: list[Difference] = []
    for key, per_host in _keyed(probe, values).items():
        reference = per_host[golden]
        differences += _differing(probe, key, per_host, reference)
    return differences


def _differing(probe: str, key: str, per_host: Mapping[str, Value], reference: Value) -> list[Difference]:
    ref = _canon(reference)
    return [
        Difference(host, probe, key, _shown(value), _shown(reference))
        for host, value in per_host.items()
        if _canon(value) != ref
    ]


def _shown(value: Value) -> Value:
    return None if value == _ABSENT else value


def drift_since(previous: Snapshot, current: Snapshot, *, probes: Sequence[str] | None = None) -> DriftReport:
    """What changed on one host since its previous snapshot (``reference`` is ``previous``)."""
    names = _probe_names([previous, current], probes)
    differences: list[Difference] = []
    for probe in names:
        if probe in previous.values and probe in current.values:
            pair = {PREVIOUS: previous.values[probe], current.host: current.values[probe]}
            differences += [d for d in _against_golden(probe, pair, PREVIOUS) if d.host == current.host]
    unknown = _unknown({current.host: current}, names)
    missing_before = tuple(p for p in names if p not in previous.values)
    if missing_before:
        unknown = {**unknown, PREVIOUS: missing_before}
    return DriftReport(PREVIOUS, (current.host,), tuple(differences), (), unknown)
