"""The live event stream: every event gets an id, is kept for replay, and fans out to clients.

Publishing never waits: each client has a bounded queue, and a client that falls more than its
limit behind is dropped with a reason (it reconnects with its last event id and is replayed what it
missed), so a slow browser can never slow the engine, whose events arrive from a worker's pipe.
Each event is serialized once (with its id) and the same text goes to every client.

A client that reconnects with ``after`` (its last event id) gets every kept event after it, then
the live ones: nothing is missed as long as the events it lacks are still kept (``history`` of
them); when they are not, the first thing it receives says so (``kind: "gap"``). With an
:class:`~sysflow.service.eventlog.EventLog`, events are also written to disk and read back when the
service starts again, so the ids go on and the history survives a restart.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sysflow.service.eventlog import EventLog

__all__ = ["LINGER", "Dropped", "EventHub", "Published", "Subscriber"]

# seconds a client rests after a message that did not fill up: at most 20 messages a second each,
# so a hundred watchers of a 10,000-host run cost the service a few thousand writes, not millions
LINGER = 0.05


@dataclass(frozen=True, slots=True)
class Published:
    """An event as the hub keeps it: id, run, the event's fields, and its JSON text (``{"id": N, ``
    first, then the fields in the order they came, sorted by the worker that wrote them)."""

    id: int
    run_id: str
    event: Mapping[str, Any]
    text: str


class Dropped(Exception):
    """The client was dropped: too slow (names how far behind) or the service is stopping."""


@dataclass(eq=False)
class Subscriber:
    """One client: a backlog to replay, then live events in a bounded queue."""

    run_id: str | None
    limit: int
    linger: float = 0.0  # seconds between two batches that did not fill up (a burst gathers)
    backlog: deque[Published] = field(default_factory=deque)
    queue: deque[Published] = field(default_factory=deque)
    dropped: str | None = None
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _rest_until: float = 0.0

    def wants(self, run_id: str) -> bool:
        return self.run_id is None or self.run_id == run_id

    def push(self, item: Published) -> bool:
        """Queue a live event; False (and dropped) when the client is ``limit`` events behind."""
        if len(self.queue) >= self.limit:
            self.drop(f"slow client: more than {self.limit} events behind (reconnect with the last event id)")
            return False
        self.queue.append(item)
        self._wake.set()
        return True

    def drop(self, reason: str) -> None:
        if self.dropped is None:
            self.dropped = reason
        self._wake.set()

    async def next(self, most: int = 500) -> list[Published]:
        """The next events (backlog first), waiting for one; ``Dropped`` once the client is dropped.

        After a batch of fewer than ``most`` the client rests ``linger`` seconds, so that the events
        of a burst go out together: one message per client per burst, not one per event."""
        loop = asyncio.get_running_loop()
        rest = self._rest_until - loop.time()
        if rest > 0:
            await asyncio.sleep(rest)
        while True:
            source = self.backlog or self.queue
            if source:
                batch = [source.popleft() for _ in range(min(most, len(source)))]
                self._rest_until = loop.time() + self.linger if len(batch) < most else 0.0
                return batch
            if self.dropped is not None:
                raise Dropped(self.dropped)
            self._wake.clear()
            await self._wake.wait()


class EventHub:
    """Ids, the kept history, the clients, and observers of every event (metrics, audit, live state)."""

    def __init__(
        self, *, history: int, client_queue: int, log: EventLog | None = None, linger: float = LINGER
    ) -> None:
        self._history: deque[Published] = deque(maxlen=history)
        self._subscribers: list[Subscriber] = []
        self._observers: list[Callable[[Published], None]] = []
        self._client_queue = client_queue
        self._linger = linger
        self.log = log
        self.last_id = 0
        self.dropped = 0  # clients dropped for being slow, since the start
        if log is not None:  # a service that starts again goes on where it stopped
            self._history.extend(log.load(history))
            self.last_id = self._history[-1].id if self._history else 0

    def observe(self, observer: Callable[[Published], None]) -> None:
        self._observers.append(observer)

    @property
    def clients(self) -> int:
        return len(self._subscribers)

    def publish(self, event: Mapping[str, Any]) -> Published:
        """Give ``event`` the next id, keep it, hand it to observers and clients (never waits)."""
        self.last_id += 1
        # the id leads (a client finds it without parsing the rest); the rest keeps its order
        text = json.dumps({"id": self.last_id, **event}, default=str)
        item = Published(self.last_id, str(event.get("run_id", "")), event, text)
        self._history.append(item)
        if self.log is not None:
            self.log.append(item)
        for observer in self._observers:
            observer(item)
        for sub in list(self._subscribers):
            if sub.wants(item.run_id) and not sub.push(item):
                self._subscribers.remove(sub)
                self.dropped += 1
        return item

    def subscribe(self, run_id: str | None = None, after: int | None = None) -> Subscriber:
        """A new client of one run (or all); with ``after``, kept events after that id come first."""
        sub = Subscriber(run_id, self._client_queue, self._linger)
        if after is not None:
            oldest = self._history[0].id if self._history else self.last_id + 1
            if after + 1 < oldest:
                gap = {
                    "kind": "gap",
                    "run_id": run_id or "",
                    "message": f"events {after + 1}-{oldest - 1} are no longer kept",
                }
                sub.backlog.append(Published(0, run_id or "", gap, json.dumps({"id": 0, **gap})))
            sub.backlog.extend(p for p in self._history if p.id > after and sub.wants(p.run_id))
        self._subscribers.append(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        if sub in self._subscribers:
            self._subscribers.remove(sub)

    def events(self, run_id: str, after: int = 0) -> list[Published]:
        """The kept events of a run after an id."""
        return [p for p in self._history if p.run_id == run_id and p.id > after]

    def close(self) -> None:
        """Drop every client (the service is stopping)."""
        for sub in self._subscribers:
            sub.drop("the service is stopping")
        self._subscribers.clear()
