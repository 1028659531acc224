"""The event hub on its own: ids, replay after an id, a gap named, a slow client dropped with a
reason while publishing never waits, and the SSE stream's framing of a drop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sysflow.service.eventlog import EventLog
from sysflow.service.hub import Dropped, EventHub
from sysflow.service.stream import _sse


def _event(run: str, n: int) -> dict[str, object]:
    return {"kind": "op_finished", "run_id": run, "message": str(n)}


async def test_a_client_resumes_after_its_last_id_and_sees_only_its_run() -> None:
    hub = EventHub(history=100, client_queue=10)
    for n in range(5):
        hub.publish(_event("a", n))
        hub.publish(_event("b", n))
    sub = hub.subscribe("a", after=3)
    hub.publish(_event("a", 5))
    got = await sub.next()
    assert [p.id for p in got] == [5, 7, 9]  # the kept ones of run a after id 3
    assert [p.id for p in await sub.next()] == [11]
    assert [p.id for p in hub.events("a", after=8)] == [9, 11]


async def test_events_no_longer_kept_are_named_as_a_gap() -> None:
    hub = EventHub(history=3, client_queue=10)
    for n in range(6):
        hub.publish(_event("a", n))
    got = await hub.subscribe(None, after=1).next()
    assert got[0].event["kind"] == "gap" and "events 2-3" in got[0].event["message"]
    assert [p.id for p in got[1:]] == [4, 5, 6]


async def test_a_slow_client_is_dropped_with_a_reason_and_publishing_goes_on() -> None:
    hub = EventHub(history=100, client_queue=3)
    slow, fast = hub.subscribe(), hub.subscribe()
    for n in range(3):
        hub.publish(_event("a", n))
    assert len(await fast.next()) == 3
    hub.publish(_event("a", 3))  # slow is now more than 3 behind
    assert hub.clients == 1 and hub.dropped == 1
    assert len(await slow.next()) == 3  # what it had queued is still delivered
    with pytest.raises(Dropped, match="slow client: more than 3 events behind"):
        await slow.next()
    assert [p.id for p in await fast.next()] == [4]


async def test_the_sse_stream_ends_with_the_drop_reason() -> None:
    hub = EventHub(history=10, client_queue=10)

    class Ctx:
        pass

    ctx = Ctx()
    ctx.hub = hub  # type: ignore[attr-defined]
    sub = hub.subscribe()
    hub.publish(_event("a", 0))
    stream = _sse(sub, ctx)  # type: ignore[arg-type]
    assert await anext(stream) == ": connected\n\n"
    assert (await anext(stream)).startswith("id: 1\ndata: {")
    hub.close()
    assert await anext(stream) == "event: dropped\ndata: the service is stopping\n\n"
    await asyncio.sleep(0)


def test_a_hub_with_an_event_log_starts_again_where_it_stopped(tmp_path: Path) -> None:
    hub = EventHub(history=100, client_queue=10, log=EventLog(tmp_path))
    for n in range(4):
        hub.publish(_event("a/1", n))
        hub.publish(_event("", n))  # an event of no run
    assert hub.log is not None and hub.log.flush() == 8
    with (tmp_path / "a_1.jsonl").open("a") as f:
        f.write('{"id": 9, "kind": "op_fin')  # a line cut short by a crash
    again = EventHub(history=5, client_queue=10, log=EventLog(tmp_path))
    assert again.last_id == 8 and [p.id for p in again.events("a/1")] == [5, 7]  # the newest 5 kept
    assert again.publish(_event("a/1", 9)).id == 9
    got = again.subscribe("a/1", after=1)
    assert got.backlog[0].event["kind"] == "gap" and [p.id for p in list(got.backlog)[1:]] == [5, 7, 9]


async def test_a_burst_of_events_reaches_a_watcher_in_one_batch() -> None:
    """After a message, a client rests ``linger`` seconds: events published meanwhile go out together."""
    hub = EventHub(history=100, client_queue=100, linger=0.2)
    sub = hub.subscribe("a")
    hub.publish(_event("a", 0))
    assert [p.id for p in await sub.next()] == [1]  # the first goes at once
    loop = asyncio.get_running_loop()
    for k, at in enumerate((0.02, 0.05, 0.1)):  # a burst, while the client rests
        loop.call_later(at, hub.publish, _event("a", k + 1))
    assert [p.id for p in await sub.next()] == [2, 3, 4]
    full = [hub.publish(_event("a", n)).id for n in range(6)]
    assert await sub.next(most=3) == [p for p in hub.events("a") if p.id in full[:3]]
    assert [p.id for p in await sub.next(most=3)] == full[3:]  # a full batch, then what was left
