"""Record what a run did (durations and outcomes) and replay it on the simulator.

The trace format (JSON, ``"format": "sysflow-trace/1"``)::

    {
      "format": "sysflow-trace/1",
      "start": "2026-01-04T01:00:00+00:00",          # when the run started (optional)
      "records": [
        {"host": "web1", "command": "apt-get -y upgrade",
         "start": "2026-01-04T01:00:03+00:00", "end": "2026-01-04T01:02:11+00:00",
         "exit_status": 0, "stdout": "...", "stderr": "",
         "error": null,                               # or "CommandTimeout", "ConnectTimeout", ...
         "rule": "upgrade_packages"}                  # optional: the simulator's rule name
      ]
    }

``start``/``end`` are ISO 8601 instants (or, for simulator traces, seconds from the run start as
numbers). Records come from a real run's ``CommandResult``s (:meth:`Trace.from_results`), from
``SimTransport.trace``, or from a file written by :meth:`Trace.save`.

Replaying (:func:`replay_fleet`): each host runs, per command text, the recorded outcomes in
recorded order (same duration, exit status, output, or the same connection error after the same
delay), whatever the new plan's order and timing; commands or hosts the trace does not know draw
from empirical distributions built from the trace per rule (:meth:`Trace.empirical_profile`).
So "what would last Sunday's run have looked like with this plan?" has an answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sysflow.clock import utc
from sysflow.errors import StoreError
from sysflow.model.inventory import Inventory
from sysflow.sim.fleet import Recorded, SimFleet
from sysflow.sim.loop import DEFAULT_START
from sysflow.sim.profile import Empirical, SimProfile
from sysflow.transport import CommandResult

__all__ = ["TRACE_FORMAT", "Trace", "TraceRecord", "replay_fleet"]

TRACE_FORMAT = "sysflow-trace/1"


@dataclass(frozen=True, slots=True)
class TraceRecord:
    """One command of a run: when it ran (seconds from the run start), how it ended."""

    host: str
    command: str
    start: float
    end: float
    exit_status: int | None
    stdout: str = ""
    stderr: str = ""
    error: str | None = None
    rule: str | None = None

    @property
    def duration(self) -> float:
        return self.end - self.start

    def recorded(self) -> Recorded:
        return Recorded(self.duration, self.exit_status, self.stdout, self.stderr, self.error)


@dataclass(frozen=True, slots=True)
class Trace:
    """The records of one run, in start order, with the run's start instant."""

    start: datetime
    records: tuple[TraceRecord, ...]

    def __iter__(self) -> Iterator[TraceRecord]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    @classmethod
    def from_results(cls, results: Iterable[CommandResult], *, start: datetime | None = None) -> Trace:
        """A trace of commands that ran (a real run's results); ``start`` defaults to the earliest."""
        items = sorted(results, key=lambda r: (r.start, r.host))
        t0 = utc(start) if start is not None else (items[0].start if items else DEFAULT_START)
        records = tuple(
            TraceRecord(
                r.host,
                r.command,
                (r.start - t0).total_seconds(),
                (r.end - t0).total_seconds(),
                r.exit_status,
                r.stdout,
                r.stderr,
            )
            for r in items
        )
        return cls(utc(t0), records)

    # -- JSON ----------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": TRACE_FORMAT,
            "start": self.start.isoformat(),
            "records": [self._record_dict(r) for r in self.records],
        }

    def _record_dict(self, rec: TraceRecord) -> dict[str, Any]:
        data = asdict(rec)
        data["start"] = (self.start + timedelta(seconds=rec.start)).isoformat()
        data["end"] = (self.start + timedelta(seconds=rec.end)).isoformat()
        return data

    def to_json(self, *, indent: int | None = None) -> str:
        """The trace as JSON text: same trace, same bytes."""
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True, ensure_ascii=False)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json(indent=1) + "\n", encoding="utf-8")

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "trace") -> Trace:
        if not isinstance(data, dict) or data.get("format") != TRACE_FORMAT:
            raise StoreError(f"{source}: not a {TRACE_FORMAT} trace")
        start = _instant(data.get("start"), DEFAULT_START, source)
        try:
            records = tuple(_record(r, start, source) for r in data.get("records", []))
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreError(f"{source}: bad record: {exc}") from None
        return cls(start, tuple(sorted(records, key=lambda r: (r.start, r.host))))

    @classmethod
    def from_json(cls, text: str, *, source: str = "trace") -> Trace:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise StoreError(f"{source}: not JSON: {exc}") from None
        return cls.from_dict(data, source=source)

    @classmethod
    def load(cls, path: str | Path) -> Trace:
        return cls.from_json(Path(path).read_text(encoding="utf-8"), source=str(path))

    # -- replay --------------------------------------------------------------------------------

    def recorded(self) -> Iterator[tuple[str, str, Recorded]]:
        """``(host, command, outcome)`` in recorded order, for ``SimFleet(replay=...)``."""
        for rec in self.records:
            yield rec.host, rec.command, rec.recorded()

    def empirical_profile(self, base: SimProfile | None = None) -> SimProfile:
        """``base`` with durations (empirical, per rule) and failure rates taken from this trace."""
        base = base or SimProfile()
        matcher = SimFleet(Inventory(), base)
        samples: dict[str, list[float]] = {}
        failures: dict[str, list[bool]] = {}
        for rec in self.records:
            if rec.error is not None and rec.error != "CommandTimeout":
                continue  # a connection failure says nothing about the command
            name = rec.rule or matcher.match(rec.command)[0].name
            samples.setdefault(name, []).append(rec.duration)
            failures.setdefault(name, []).append(rec.exit_status != 0)
        durations = {**base.durations}
        for name, values in samples.items():
            durations[name] = {"*": Empirical(samples=tuple(values))}
        probability = {name: sum(v) / len(v) for name, v in failures.items()}
        return base.model_copy(
            update={
                "durations": durations,
                "failure_probability": {**probability, **base.failure_probability},
            }
        )


def replay_fleet(
    trace: Trace,
    inventory: Inventory,
    profile: SimProfile | None = None,
    seed: int | str = 0,
    *,
    start: datetime | None = None,
) -> SimFleet:
    """A fleet that replays ``trace`` exactly where it can and samples from it elsewhere."""
    return SimFleet(
        inventory,
        trace.empirical_profile(profile),
        seed,
        start=start or trace.start,
        replay=trace.recorded(),
    )


def _instant(value: Any, default: datetime, source: str) -> datetime:
    if value is None:
        return default
    if isinstance(value, str):
        try:
            return utc(datetime.fromisoformat(value))
        except ValueError:
            raise StoreError(f"{source}: bad instant {value!r}") from None
    raise StoreError(f"{source}: bad instant {value!r}")


def _offset(value: Any, start: datetime, source: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return (_instant(value, start, source) - start).total_seconds()


def _record(data: dict[str, Any], start: datetime, source: str) -> TraceRecord:
    exit_status = data.get("exit_status")
    return TraceRecord(
        host=str(data["host"]),
        command=str(data["command"]),
        start=_offset(data["start"], start, source),
        end=_offset(data["end"], start, source),
        exit_status=int(exit_status) if exit_status is not None else None,
        stdout=str(data.get("stdout") or ""),
        stderr=str(data.get("stderr") or ""),
        error=data.get("error"),
        rule=data.get("rule"),
    )
