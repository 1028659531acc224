"""``/metrics`` in Prometheus format: an observer of the event stream, never calls in the engine.

Operations by state and task, hosts by state per run (what each host does now, from its last
operation event), the current wave and the waves finished per run, window time left (from window
events' ``end``), admissions, SSH connect failures, and
the event-stream clients. One registry per app, no global state.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from sysflow.service.hub import EventHub, Published

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_CONNECT_ERRORS = ("HostUnreachable", "ConnectTimeout", "ConnectionFailed", "AuthenticationFailed",
                   "HostKeyMismatch", "cannot connect", "connect")  # fmt: skip


class Metrics:
    """Counters and gauges fed by the hub's events."""

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
            "sysflow_window_seconds_left", "Seconds left in the run's open window", ["run"], registry=r
        )
        self.admitted = Counter(
            "sysflow_admissions_total", "Operations admitted by the runtime's limits", registry=r
        )
        self.connect_failures = Counter(
            "sysflow_ssh_connect_failures_total", "Operations failed connecting", registry=r
        )
        self.clients = Gauge("sysflow_stream_clients", "Event-stream clients connected", registry=r)
        self.dropped = Gauge(
            "sysflow_stream_clients_dropped", "Event-stream clients dropped for lagging", registry=r
        )
        self.events = Gauge("sysflow_events_last_id", "Id of the last event relayed", registry=r)
        self._host_state: dict[tuple[str, str], str] = {}
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
        if kind == "op_started" and host:
            self._move(run, host, "running")
        elif kind == "op_finished" and host:
            state = str(data.get("state", "unknown"))
            self.ops.labels(state, str(e.get("task"))).inc()
            self._move(run, host, state)
            if state != "succeeded" and any(m in str(e.get("message", "")) for m in _CONNECT_ERRORS):
                self.connect_failures.inc()
        elif kind == "op_progress" and data.get("step") == "admitted":
            self.admitted.inc()
        elif kind == "wave_started" and e.get("wave") is not None:
            self.wave.labels(run).set(int(e["wave"]) + 1)
        elif kind == "wave_finished":
            self.waves_done.labels(run).inc()
        elif kind in ("window_opened", "window_closed"):
            self._window(run, kind, data)

    def _window(self, run: str, kind: str, data: dict[str, Any]) -> None:
        end = data.get("end")
        if kind == "window_closed" or not end:
            self.window_left.labels(run).set(0)
            return
        try:
            left = (datetime.fromisoformat(str(end)) - datetime.now(UTC)).total_seconds()
        except ValueError:
            return
        self.window_left.labels(run).set(max(0.0, left))

    def render(self) -> bytes:
        self.clients.set(self.hub.clients)
        self.dropped.set(self.hub.dropped)
        self.events.set(self.hub.last_id)
        return generate_latest(self.registry)
