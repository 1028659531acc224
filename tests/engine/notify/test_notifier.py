"""Notifications go to a real HTTP receiver on loopback: right events, batched, rate-limited, harmless on failure."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime

from sysflow.engine.events import Event, EventBus, EventKind
from sysflow.engine.notify import Notifier, is_failure, render
from sysflow.model.workflow import NotificationRoute

from .conftest import Receiver

T0 = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)


def _fail(host: str) -> Event:
    return Event(
        EventKind.OP_FINISHED,
        "run-7",
        T0,
        host=host,
        task="upgrade",
        wave=1,
        message="exit status 100\nmore",
        data={"state": "failed"},
    )


def test_a_thousand_host_failure_is_one_message(receiver: Receiver) -> None:
    bus = EventBus()
    notifier = Notifier([NotificationRoute(url=receiver.url, only_failures=True)], batch_seconds=0.3)
    bus.subscribe(notifier)
    for i in range(1000):
        bus.emit(_fail(f"web{i:04d}"))
    bus.emit(
        Event(EventKind.OP_FINISHED, "run-7", T0, host="ok1", data={"state": "succeeded"})
    )  # filtered out
    receiver.wait_for(1)
    notifier.close()
    assert len(receiver.bodies) == 1
    body = receiver.bodies[0]
    assert "1000 host(s) failed" in str(body["title"])
    assert "1000 hosts failed: web0000, web0001" in str(body["message"])
    assert "and 980 more" in str(body["message"])
    assert "waves: 2" in str(body["message"])
    assert notifier.sent[0].events == 1000


def test_route_filters_by_event_kind_and_run_end_flushes_at_once(receiver: Receiver) -> None:
    notifier = Notifier([NotificationRoute(url=receiver.url, events=["run.finished"])], batch_seconds=3600)
    notifier.on_event(Event(EventKind.RUN_STARTED, "r", T0))
    notifier.on_event(Event(EventKind.RUN_FINISHED, "r", T0, data={"status": "rolled_back"}))
    receiver.wait_for(1)
    notifier.close()
    assert len(receiver.bodies) == 1
    assert str(receiver.bodies[0]["title"]).endswith("rolled_back")
    assert receiver.bodies[0]["type"] == "failure"


def test_rate_limit_holds_messages_back_and_sends_the_rest_together(receiver: Receiver) -> None:
    notifier = Notifier([NotificationRoute(url=receiver.url)], batch_seconds=0.05, max_per_minute=2)
    for i in range(3):
        notifier.on_event(_fail(f"db{i}"))
        time.sleep(0.3)
    receiver.wait_for(2)
    time.sleep(0.3)
    assert len(receiver.bodies) == 2  # the third batch waits for the minute to roll over
    notifier._stop.set()


def test_a_failing_endpoint_is_recorded_and_never_raises() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    notifier = Notifier([NotificationRoute(url=f"json://127.0.0.1:{port}/x", name="ops")], batch_seconds=0.01)
    notifier.on_event(_fail("h1"))
    notifier.close()
    assert notifier.sent == []
    assert notifier.failures == ["route ops: 1 events not delivered"]


def test_a_sender_that_raises_is_contained() -> None:
    def broken(url: str, title: str, body: str, kind: str) -> bool:
        raise RuntimeError("boom")

    notifier = Notifier([NotificationRoute(url="json://127.0.0.1:9/x")], batch_seconds=0.01, send=broken)
    notifier.on_event(_fail("h1"))
    notifier.close()
    assert len(notifier.failures) == 1


def test_group_filter_and_failure_classification() -> None:
    seen: list[str] = []

    def record(url: str, title: str, body: str, kind: str) -> bool:
        seen.append(body)
        return True

    groups = {"web1": ["web"], "db1": ["db"]}
    notifier = Notifier(
        [NotificationRoute(url="json://127.0.0.1:9/x", groups=["db"])],
        batch_seconds=0.01,
        send=record,
        groups_of=lambda h: groups.get(h, []),
        report_path="/var/lib/sysflow/report.md",
    )
    notifier.on_event(_fail("web1"))
    notifier.on_event(_fail("db1"))
    notifier.close()
    assert len(seen) == 1
    assert "db1" in seen[0]
    assert "web1" not in seen[0]
    assert "report: /var/lib/sysflow/report.md" in seen[0]
    assert is_failure(Event(EventKind.GATE_EVALUATED, "r", T0, data={"passed": False}))
    assert not is_failure(Event(EventKind.RUN_FINISHED, "r", T0, data={"status": "completed"}))
    assert render([Event(EventKind.WAVE_STARTED, "r", T0, wave=0)])[0] == "sysflow run r: 1 event(s)"


def test_a_failure_reaches_its_receiver_within_two_seconds_by_default_then_batching(
    receiver: Receiver,
) -> None:
    notifier = Notifier([NotificationRoute(url=receiver.url, only_failures=True)])  # the defaults
    sent = time.monotonic()
    for i in range(50):  # a burst: one message
        notifier.on_event(_fail(f"web{i:02d}"))
    receiver.wait_for(1, timeout=2.0)
    took = time.monotonic() - sent
    assert len(receiver.bodies) == 1 and took < 2.0, took
    assert "50 host(s) failed" in str(receiver.bodies[0]["title"])
    notifier.on_event(_fail("db01"))  # within the batch window: held for the next batch
    time.sleep(1.0)
    assert len(receiver.bodies) == 1
    notifier.close()  # sends what is buffered
    assert len(receiver.bodies) == 2 and "db01" in str(receiver.bodies[1]["message"])
