"""The change gate: a ServiceNow-style change ticket checked before each wave, updated at the end.

:class:`ChangeTicketProvider` is a :class:`~sysflow.engine.state.StateProvider` (the workflow's
``change:``, :class:`~sysflow.model.change.ChangeTicket`, becomes one more state check held before
every wave, the first included). It reads the ticket from the Table API
(``GET /api/now/table/change_request?sysparm_query=number=CHG...``) and its configuration items
(``GET /api/now/table/task_ci?sysparm_query=task=<sys_id>``) and says:

* healthy when the state is ready, now lies inside ``start_date``-``end_date`` and every host of the
  wave is a configuration item;
* not healthy (the wave holds, polling) while it waits for approval;
* *final* (the run stops, naming the ticket) when it is rejected or cancelled, outside its window,
  missing hosts, or cannot be read under ``on_error: refuse``.

:class:`ChangeTicketCloser` is an event observer: on ``run_finished`` it writes the outcome (and the
report's link) to the ticket's work notes, and moves a successful run's ticket to ``close_state``.
HTTP runs in a worker thread (httpx), like the other state providers, so a virtual clock never
jumps past a request.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from sysflow.clock import Clock
from sysflow.engine.events import Event, EventBus, EventKind
from sysflow.engine.state import StateReading
from sysflow.model.change import ChangeTicket
from sysflow.model.state_checks import CheckPoint, StateAction, StateCheck

__all__ = ["ChangeTicketCloser", "ChangeTicketProvider", "TicketError", "change_state_check"]

CHANGES = "/api/now/table/change_request"
TASK_CI = "/api/now/table/task_ci"
_SUCCESS = frozenset({"completed"})
_SHOWN = 8  # hosts named in a refusal

log = logging.getLogger(__name__)


class TicketError(Exception):
    """The ticket could not be read (down, refused, malformed)."""


def change_state_check(spec: ChangeTicket) -> StateCheck:
    """The state check the change gate runs as: held before every wave and checked at each gate."""
    return StateCheck(
        name=f"change {spec.ticket}",
        url=f"{spec.url.rstrip('/')}{CHANGES}",
        expect="ok",
        action=StateAction.HOLD,
        at=[CheckPoint.BEFORE_WAVE],
        timeout=spec.wait,
        interval=spec.poll,
        request_timeout=spec.request_timeout,
    )


class _Api:
    """The few Table API calls the gate makes, with the bearer token from the environment."""

    def __init__(self, spec: ChangeTicket) -> None:
        self.spec = spec

    def _client(self) -> httpx.Client:
        token = os.environ.get(self.spec.token_env)
        if not token:
            raise TicketError(f"no API token: set the environment variable {self.spec.token_env}")
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        return httpx.Client(base_url=self.spec.url, headers=headers, timeout=self.spec.request_timeout)

    def _get(self, client: httpx.Client, path: str, params: dict[str, str]) -> list[Any]:
        try:
            response = client.get(path, params=params)
        except httpx.HTTPError as exc:
            raise TicketError(f"{type(exc).__name__}: {exc}") from None
        if response.status_code != 200:
            raise TicketError(f"HTTP {response.status_code} from {path}")
        try:
            result = response.json()["result"]
        except (ValueError, KeyError, TypeError):
            raise TicketError(f"{path} answered without a result list") from None
        if not isinstance(result, list):
            raise TicketError(f"{path} answered without a result list")
        return result

    def ticket(self) -> tuple[dict[str, Any], list[str]]:
        """The change record and the names of its configuration items."""
        with self._client() as client:
            found = self._get(
                client, CHANGES, {"sysparm_query": f"number={self.spec.ticket}", "sysparm_limit": "1"}
            )
            if not found or not isinstance(found[0], dict):
                raise TicketError(f"no change request {self.spec.ticket}")
            record = found[0]
            items = self._get(client, TASK_CI, {"sysparm_query": f"task={record.get('sys_id')}",
                                                "sysparm_fields": "ci_item.name"})  # fmt: skip
        return record, [str(i.get("ci_item.name")) for i in items if isinstance(i, dict)]

    def update(self, sys_id: str, body: dict[str, str]) -> None:
        with self._client() as client:
            try:
                response = client.patch(f"{CHANGES}/{sys_id}", json=body)
            except httpx.HTTPError as exc:
                raise TicketError(f"{type(exc).__name__}: {exc}") from None
            if response.status_code != 200:
                raise TicketError(f"HTTP {response.status_code} updating {self.spec.ticket}")


def _when(value: Any) -> datetime | None:
    """A Table API date-time (``2026-03-01 01:00:00``, UTC), or None."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@dataclass
class ChangeTicketProvider:
    """Reads the change ticket for the wave's hosts (see the module docstring)."""

    spec: ChangeTicket
    clock: Clock
    sys_id: str | None = field(default=None, init=False)

    @property
    def name(self) -> str:
        return f"change {self.spec.ticket}"

    async def read(self, hosts: Sequence[str]) -> StateReading:
        try:
            record, items = await asyncio.to_thread(_Api(self.spec).ticket)
        except TicketError as exc:
            if self.spec.on_error == "proceed":
                return StateReading(True, f"{self.name}: cannot be read ({exc}); on_error: proceed")
            return StateReading(False, f"{self.name}: cannot be read ({exc}); on_error: refuse", final=True)
        self.sys_id = str(record.get("sys_id") or "") or None
        return self._judge(record, items, hosts)

    def _judge(self, record: dict[str, Any], items: list[str], hosts: Sequence[str]) -> StateReading:
        state = str(record.get("state") or "").lower()
        approval = str(record.get("approval") or "").lower()
        refused = {s.lower() for s in self.spec.refused_states}
        if state in refused or approval in refused:
            return StateReading(
                False, f"{self.name} is {approval if approval in refused else state}", final=True
            )
        if state not in {s.lower() for s in self.spec.ready_states}:
            return StateReading(False, f"{self.name} is {state or 'without a state'}, waiting for approval")
        start, end, now = _when(record.get("start_date")), _when(record.get("end_date")), self.clock.now()
        if start is None or end is None or not start <= now <= end:
            window = f"{record.get('start_date') or '?'} - {record.get('end_date') or '?'}"
            return StateReading(
                False, f"{self.name}: now ({now.isoformat()}) is outside its window {window}", final=True
            )
        missing = (
            [h for h in hosts if not h.startswith("@") and h not in set(items)]
            if self.spec.check_hosts
            else []
        )
        if missing:
            shown = ", ".join(missing[:_SHOWN]) + (
                f" and {len(missing) - _SHOWN} more" if len(missing) > _SHOWN else ""
            )
            return StateReading(False, f"{self.name} does not cover {shown}", final=True)
        return StateReading(True, f"{self.name} is {state}, {len(hosts)} hosts covered")


@dataclass
class ChangeTicketCloser:
    """On ``run_finished``: work notes with the outcome and report link; close a successful run's ticket.

    The engine attaches one to each run whose workflow has ``change:`` (see
    :func:`sysflow.engine.stages.build_closer`): bound to that ``run_id`` it ignores other runs' events,
    acts once, and leaves ``bus`` when done. ``{run_id}`` in ``report_url`` is the run's id. A ticket
    that cannot be updated is logged and kept in ``errors``; the run's result is not changed.
    """

    spec: ChangeTicket
    run_id: str | None = None
    bus: EventBus | None = None
    errors: list[str] = field(default_factory=list)

    def on_event(self, event: Event) -> None:
        if event.kind is not EventKind.RUN_FINISHED:
            return
        if self.run_id is not None and event.run_id != self.run_id:
            return
        if self.bus is not None:
            self.bus.unsubscribe(self)
        try:
            self._close(event)
        except TicketError as exc:  # the run is over: say so, never raise into the engine
            self.errors.append(f"change {self.spec.ticket}: cannot update ({exc})")
            log.warning("%s", self.errors[-1])

    def _close(self, event: Event) -> None:
        status = str(event.data.get("status", "")).lower()
        note = f"sysflow run {event.run_id}: {status or 'finished'}"
        if event.message:
            note += f" ({event.message})"
        if self.spec.report_url:
            note += f"; report: {self.spec.report_url.replace('{run_id}', event.run_id)}"
        body = {"work_notes": note}
        if status in _SUCCESS and self.spec.close_state:
            body["state"] = self.spec.close_state
        api = _Api(self.spec)
        record, _ = api.ticket()
        api.update(str(record.get("sys_id")), body)
