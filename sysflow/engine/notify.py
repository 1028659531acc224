"""Event routing to notification services through Apprise (Slack, Teams, e-mail, JSON webhooks, ...).

Routes map event kinds (and filters) to Apprise URLs. Events are batched per route so that a
1,000-host failure is one message, and each route is rate-limited. A route that has been quiet for a
batch window sends its first message after :data:`DEFAULT_FIRST_SECONDS` (a burst arriving together
still goes as one message, and a failure reaches its receiver within about a second); what follows
within the window is batched. Sending happens on a worker
thread; a failed notification is recorded in :attr:`Notifier.failures` and logged, never raised:
notifications must not fail a run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from sysflow.engine.events import Event, EventBus, EventKind
from sysflow.model.workflow import NotificationRoute

__all__ = [
    "DEFAULT_BATCH_SECONDS",
    "DEFAULT_FIRST_SECONDS",
    "DEFAULT_MAX_PER_MINUTE",
    "Message",
    "Notifier",
    "RunNotifications",
    "is_failure",
]

log = logging.getLogger(__name__)

DEFAULT_BATCH_SECONDS = 10.0  # events of a route within this long go out as one message
DEFAULT_FIRST_SECONDS = 0.5  # a quiet route's first message waits this long for the rest of a burst
DEFAULT_MAX_PER_MINUTE = 6  # messages per route per rolling minute
CLOSE_SECONDS = 10.0  # at a run's end, how long its last messages may take to go out
_TICK = 0.05  # seconds between worker checks
_MAX_LINES = 20  # failed hosts / error lines quoted in one message

Sender = Callable[[str, str, str, str], bool]
"""``send(url, title, body, kind) -> delivered``; the default goes through Apprise."""


@dataclass(frozen=True, slots=True)
class Message:
    """One notification as sent."""

    url: str
    title: str
    body: str
    failure: bool
    events: int


@dataclass
class _Route:
    spec: NotificationRoute
    buffer: list[Event] = field(default_factory=list)
    first_at: float = 0.0
    sent_at: deque[float] = field(default_factory=deque)
    last_sent: float = float("-inf")
    urgent: bool = False


def is_failure(event: Event) -> bool:
    """Does this event report something going wrong?"""
    if event.kind in (EventKind.THRESHOLD_EXCEEDED, EventKind.ROLLBACK_STARTED, EventKind.LEASE_REFUSED):
        return True
    data = event.data
    if data.get("state") == "failed" or data.get("passed") is False:
        return True
    return event.kind is EventKind.RUN_FINISHED and data.get("status") not in ("completed", None)


def _matches(
    route: NotificationRoute, event: Event, groups_of: Callable[[str], Sequence[str]] | None
) -> bool:
    kinds = {k.replace(".", "_").lower() for k in route.events}
    if "*" not in kinds and event.kind.value not in kinds:
        return False
    if route.only_failures and not is_failure(event):
        return False
    if route.groups is not None:
        if event.host is None or groups_of is None:
            return event.host is None
        return bool(set(route.groups) & set(groups_of(event.host)))
    return True


class Notifier:
    """An event observer that batches, rate-limits and sends notifications per route."""

    def __init__(
        self,
        routes: Iterable[NotificationRoute],
        *,
        batch_seconds: float = DEFAULT_BATCH_SECONDS,
        first_seconds: float = DEFAULT_FIRST_SECONDS,
        max_per_minute: int = DEFAULT_MAX_PER_MINUTE,
        send: Sender | None = None,
        groups_of: Callable[[str], Sequence[str]] | None = None,
        report_path: str | None = None,
    ) -> None:
        self._routes = [_Route(r) for r in routes]
        self._batch = batch_seconds
        self._first = min(first_seconds, batch_seconds)
        self._max = max_per_minute
        self._send = send or _apprise_send
        self._groups_of = groups_of
        self._report = report_path
        self.sent: list[Message] = []
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="sysflow-notify", daemon=True)
        self._thread.start()

    def on_event(self, event: Event) -> None:
        now = time.monotonic()
        with self._lock:
            for route in self._routes:
                if not _matches(route.spec, event, self._groups_of):
                    continue
                if not route.buffer:
                    route.first_at = now
                route.buffer.append(event)
                route.urgent = route.urgent or event.kind is EventKind.RUN_FINISHED

    def close(self, timeout: float = 10.0) -> None:
        """Send what is buffered (rate limits still apply) and stop the worker."""
        with self._lock:
            for route in self._routes:
                route.urgent = bool(route.buffer)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(r.buffer for r in self._routes):
            time.sleep(_TICK)
        self._stop.set()
        self._thread.join(timeout=max(0.0, deadline - time.monotonic()) + 1.0)

    # -- worker -----------------------------------------------------------------------------------

    def _work(self) -> None:
        while not self._stop.wait(_TICK):
            for route in self._routes:
                batch = self._due(route, time.monotonic())
                if batch:
                    self._deliver(route.spec, batch)

    def _due(self, route: _Route, now: float) -> list[Event]:
        with self._lock:
            quiet = route.first_at - route.last_sent >= self._batch  # the first message of a while
            wait = self._first if quiet else self._batch
            if not route.buffer or not (route.urgent or now - route.first_at >= wait):
                return []
            while route.sent_at and now - route.sent_at[0] >= 60.0:
                route.sent_at.popleft()
            if len(route.sent_at) >= self._max:
                return []  # rate-limited: keep buffering, the next allowed message carries it all
            route.sent_at.append(now)
            route.last_sent = now
            batch, route.buffer, route.urgent = route.buffer, [], False
            return batch

    def _deliver(self, route: NotificationRoute, events: list[Event]) -> None:
        title, body, failure = render(events, self._report)
        try:
            ok = self._send(route.url, title, body, "failure" if failure else "info")
        except Exception as exc:  # a notification never fails the run
            ok = False
            log.warning("notification to route %s failed: %s", route.name or "?", type(exc).__name__)
        if ok:
            self.sent.append(Message(route.url, title, body, failure, len(events)))
        else:
            self.failures.append(
                f"route {route.name or route.url.split('://')[0]}: {len(events)} events not delivered"
            )
            log.warning("notification not delivered (%d events)", len(events))


def render(events: Sequence[Event], report_path: str | None = None) -> tuple[str, str, bool]:
    """Title, body and failure flag of one message summarising ``events``."""
    failure = any(is_failure(e) for e in events)
    runs = sorted({e.run_id for e in events})
    failed_hosts = sorted({e.host for e in events if e.host and e.data.get("state") == "failed"})
    waves = sorted({e.wave + 1 for e in events if e.wave is not None})
    finished = [e for e in events if e.kind is EventKind.RUN_FINISHED]
    head = f"sysflow run {', '.join(runs)}"
    if finished:
        title = f"{head}: {finished[-1].data.get('status', 'finished')}"
    elif failure:
        title = f"{head}: {len(failed_hosts)} host(s) failed" if failed_hosts else f"{head}: problem"
    else:
        title = f"{head}: {len(events)} event(s)"
    lines = [f"waves: {', '.join(map(str, waves))}"] if waves else []
    if failed_hosts:
        shown = ", ".join(failed_hosts[:_MAX_LINES])
        more = f" and {len(failed_hosts) - _MAX_LINES} more" if len(failed_hosts) > _MAX_LINES else ""
        lines.append(f"{len(failed_hosts)} hosts failed: {shown}{more}")
    errors = [
        f"{e.host}: {e.message.splitlines()[0]}" for e in events if e.message and is_failure(e) and e.host
    ]
    lines.extend(errors[:5])
    lines.extend(
        e.message for e in events if e.kind is not EventKind.OP_FINISHED and e.message and not e.host
    )
    if report_path:
        lines.append(f"report: {report_path}")
    return title, "\n".join(lines[: _MAX_LINES + 10]) or title, failure


def _apprise_send(url: str, title: str, body: str, kind: str) -> bool:
    import apprise

    app = apprise.Apprise()
    if not app.add(url):
        raise ValueError("unsupported notification URL")
    notify_type = apprise.NotifyType.FAILURE if kind == "failure" else apprise.NotifyType.INFO
    return bool(app.notify(title=title, body=body, notify_type=notify_type))


class RunNotifications:
    """A run's ``notifications:`` routes: this run's events go to a :class:`Notifier`; at the run's
    end what is buffered is sent before the run returns (a CLI run that exits at once still
    delivers), and the observer leaves the bus."""

    def __init__(self, notifier: Notifier, run_id: str, bus: EventBus) -> None:
        self.notifier, self.run_id, self.bus = notifier, run_id, bus

    def on_event(self, event: Event) -> None:
        if event.run_id != self.run_id:
            return
        self.notifier.on_event(event)
        if event.kind is EventKind.RUN_FINISHED:
            self.bus.unsubscribe(self)
            self.notifier.close(timeout=CLOSE_SECONDS)
