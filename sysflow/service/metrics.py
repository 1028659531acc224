"""``/metrics`` in Prometheus format: an observer of the event stream, never calls in the engine.

Fed by the events the workers relay (so by every run the service started):

* operations finished by state and task; hosts of each run by state (from each host's last
  operation event); each run's current wave and waves finished;
* window time left per run: the end of the latest-ending window of the run's working hosts (each
  ``admitted`` event names its operation's window) less the run's clock, which is the time of its
  last event plus the real time since (virtual time for a simulated run); 0 once the run waits for
  the next window or ended;
* runtime admission: operations admitted, their waits (a histogram, in seconds of the run's clock),
  the queue length per run as of its last admission and the longest it has been;
* SSH connect failures, by kind (``HostUnreachable``, ``AuthenticationFailed``, ...): operations
  whose host could not be reached or logged in to;
* event-stream clients connected, and those dropped for lagging.

One registry per app, no global state.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from sysflow.actors.ops import ErrorKind
from sysflow.service.hub import EventHub, Published

__all__ = ["ADMISSION_BUCKETS", "CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
ADMISSION_BUCKETS = (0.0, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, float("inf"))  # seconds
_CONNECT_KINDS = frozenset(k.label for k in ErrorKind if k.is_connection)


@dataclass
class _RunClock:
    """What a run's window gauge needs: its clock (last event's time) and its working hosts' windows."""

    at: datetime | None = None
    seen: float = 0.0  # time.monotonic() when that event arrived
    ends: dict[str, datetime] = field(default_factory=dict)  # working host -> its window's end
    end: datetime | None = None  # the latest end while hosts work; kept between operations
    peak: int = 0  # the most operations seen waiting for admission

    def now(self) -> datetime | None:
        if self.at is None:
            return None
        return self.at + timedelta(seconds=time.monotonic() - self.seen)


class Metrics:
    """Counters, gauges and a histogram fed by the hub's events."""

    def __init__(self, hub: EventHub) -> None:
        self.hub = hub
        self.registry = r = CollectorRegistry()
        self.ops = Counter(
            "sysflow_operations_total",
            "Operations finished, by state and task",
            ["state", "task"],
            registry=r,
        )
        self.hosts = Gauge("sysflow_hosts", "Hosts of a run by state", ["run", "state"], registry=r)
        self.wave = Gauge("sysflow_run_wave", "Current wave (1-based) of a run", ["run"], registry=r)
        self.waves_done = Gauge("sysflow_run_waves_finished", "Waves finished of a run", ["run"], registry=r)
        self.window_left = Gauge(
            "sysflow_window_seconds_left",
            "Seconds left in the window of a run's working hosts (by the run's clock)",
            ["run"],
            registry=r,
        )
        self.admitted = Counter(
            "sysflow_admissions_total", "Operations admitted by the runtime's limits", registry=r
        )
        self.admission_wait = Histogram(
            "sysflow_admission_wait_seconds",
            "How long operations waited for runtime admission (seconds of the run's clock)",
            buckets=ADMISSION_BUCKETS,
            registry=r,
        )
        self.queue = Gauge(
            "sysflow_admission_queue", "Operations waiting for admission, as of the run's last one", ["run"],
            registry=r,
        )  # fmt: skip
        self.queue_peak = Gauge(
            "sysflow_admission_queue_peak", "Most operations seen waiting for admission in a run", ["run"],
            registry=r,
        )  # fmt: skip
        self.connect_failures = Counter(
            "sysflow_ssh_connect_failures_total",
            "Operations that failed reaching or logging in to their host, by kind",
            ["kind"],
            registry=r,
        )
        self.clients = Gauge("sysflow_stream_clients", "Event-stream clients connected", registry=r)
        self.dropped = Gauge(
            "sysflow_stream_clients_dropped", "Event-stream clients dropped for lagging", registry=r
        )
        self.events = Gauge("sysflow_events_last_id", "Id of the last event relayed", registry=r)
        self._host_state: dict[tuple[str, str], str] = {}
        self._clocks: dict[str, _RunClock] = {}
        hub.observe(self.on_event)

    def _move(self, run: str, host: str, state: str) -> None:
        old = self._host_state.get((run, host))
        if old == state:
            return
        if old is not None:
            self.hosts.labels(run, old).dec()
        self.hosts.labels(run, state).inc()
        self._host_state[(run, host)] = state

    def on_event(self, item: Published) -> None:
        e: dict[str, Any] = dict(item.event)
        kind, run, host, data = e.get("kind"), item.run_id, e.get("host"), e.get("data") or {}
        # a worker's exit is stamped by the service's clock, not the run's (virtual for a simulation)
        clock = self._clocks.get(run) if kind == "worker_exited" else self._tick(run, e.get("at"))
        if kind == "op_started" and host:
            self._move(run, host, "running")
        elif kind == "op_finished" and host:
            self._finished(run, host, e, data, clock)
        elif kind == "op_progress" and data.get("step") == "admitted":
            self._admitted(run, host, data, clock)
        elif kind == "wave_started" and e.get("wave") is not None:
            self.wave.labels(run).set(int(e["wave"]) + 1)
        elif kind == "wave_finished":
            self.waves_done.labels(run).inc()
        elif (kind == "window_closed" and not host) or kind in ("run_finished", "worker_exited"):
            if clock is not None:
                clock.ends.clear()
                clock.end = None
            if kind != "window_closed":
                self.queue.labels(run).set(0)

    def _tick(self, run: str, at: object) -> _RunClock | None:
        if not run:
            return None
        clock = self._clocks.setdefault(run, _RunClock())
        try:
            clock.at = datetime.fromisoformat(str(at)) if at else clock.at
        except ValueError:
            return clock
        clock.seen = time.monotonic()
        return clock

    def _finished(
        self, run: str, host: str, e: dict[str, Any], data: dict[str, Any], clock: _RunClock | None
    ) -> None:
        state = str(data.get("state", "unknown"))
        self.ops.labels(state, str(e.get("task"))).inc()
        self._move(run, host, state)
        label = str(e.get("message", "")).split(":", 1)[0]
        if state != "succeeded" and label in _CONNECT_KINDS:
            self.connect_failures.labels(label).inc()
        if clock is not None:
            clock.ends.pop(host, None)

    def _admitted(self, run: str, host: str | None, data: dict[str, Any], clock: _RunClock | None) -> None:
        self.admitted.inc()
        if isinstance(data.get("waited"), int | float):
            self.admission_wait.observe(float(data["waited"]))
        if isinstance(data.get("queued"), int):
            self.queue.labels(run).set(data["queued"])
            if clock is not None:
                clock.peak = max(clock.peak, data["queued"])
                self.queue_peak.labels(run).set(clock.peak)
        if clock is not None and host and data.get("window_end"):
            try:
                clock.ends[host] = datetime.fromisoformat(str(data["window_end"]))
            except ValueError:
                return
            clock.end = max(clock.ends.values())

    def render(self) -> bytes:
        self.clients.set(self.hub.clients)
        self.dropped.set(self.hub.dropped)
        self.events.set(self.hub.last_id)
        for run, clock in self._clocks.items():
            now = clock.now()
            if clock.end is not None and now is not None:
                self.window_left.labels(run).set(max(0.0, (clock.end - now).total_seconds()))
            elif clock.at is not None:
                self.window_left.labels(run).set(0)
        return generate_latest(self.registry)
