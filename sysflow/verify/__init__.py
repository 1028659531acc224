"""Configuration verification: probes that capture state, comparators, drift, reports, the gate hook.

* :mod:`~sysflow.verify.parsers`: output text → structured state (regex, JSON, key=value, tables,
  dpkg, rpm, systemctl, ss, os-release, checksums, modes);
* :mod:`~sysflow.verify.probes`: :class:`Probe`, the ready-made catalogue, :func:`capture` →
  :class:`Snapshot` through the ``Transport`` seam;
* :mod:`~sysflow.model.versions`: Debian and RPM version ordering;
* :mod:`~sysflow.verify.compare`: comparators and desired state → :class:`Verdict`;
* :mod:`~sysflow.verify.drift`: outliers against the majority, a golden host, or the past;
* :mod:`~sysflow.verify.report`: :class:`VerificationReport` (JSON, Markdown);
* :mod:`~sysflow.verify.gate`: :class:`Verifier` (driven by the engine) and :func:`evaluate_gate`.

Nothing here imports asyncssh, ray or ortools; python-debian is imported when a Debian version is
first compared.
"""

from __future__ import annotations

from sysflow.model.versions import VersionScheme, compare_versions
from sysflow.verify.compare import Outcome, Verdict, check_expect, compare_snapshots, compare_values
from sysflow.verify.drift import Difference, DriftReport, detect_drift, drift_since
from sysflow.verify.gate import GateVerdict, Phase, SnapshotStore, Verifier, evaluate_gate
from sysflow.verify.probes import Probe, Snapshot, capture, capture_many
from sysflow.verify.report import Counts, HostReport, VerificationReport

__all__ = [
    "Counts",
    "Difference",
    "DriftReport",
    "GateVerdict",
    "HostReport",
    "Outcome",
    "Phase",
    "Probe",
    "Snapshot",
    "SnapshotStore",
    "Verdict",
    "VerificationReport",
    "Verifier",
    "VersionScheme",
    "capture",
    "capture_many",
    "check_expect",
    "compare_snapshots",
    "compare_values",
    "compare_versions",
    "detect_drift",
    "drift_since",
    "evaluate_gate",
]
