"""Progress of a run, from its event stream only: a live rich view, JSON Lines, or plain lines.

Three observers, chosen by :func:`progress_for`:

* :class:`LiveProgress` (a terminal): a rich live table with the overall count, one row per wave and
  per datacenter, the latest failures as they happen, the ETA from the forecast (shifted by how far
  the run is behind or ahead of its plan) and the time left in the current maintenance window;
* :class:`JsonLinesProgress` (``--json``): every event as one JSON object per line, for machines;
* :class:`PlainProgress` (stdout is not a terminal): one line per run, wave, gate and failure event.

All three read :class:`ProgressState`, a pure accumulator of events, so what is shown is what the
events say and nothing else (the engine never knows who listens).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import IO, TYPE_CHECKING, Any

from sysflow.cli.timefmt import DisplayZone
from sysflow.cli.views import plural, tidy
from sysflow.engine.events import Event, EventKind

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

    from sysflow.planner.plan import Plan

__all__ = [
    "JsonLinesProgress",
    "LiveProgress",
    "PlainProgress",
    "ProgressContext",
    "ProgressMode",
    "ProgressState",
    "choose_mode",
    "progress_for",
]

MAX_FAILURES_SHOWN = 8  # latest failures listed under the live table
REFRESH_INTERVAL = 0.1  # real seconds between redraws of the live view (it always redraws at the end)
_FAILED_STATES = frozenset({"failed", "unknown"})
_BAD_STATUSES = frozenset({"failed", "rolled_back", "completed_with_failures", "cancelled"})


class ProgressMode(StrEnum):
    """How progress is shown."""

    LIVE = "live"
    PLAIN = "plain"
    JSON = "json"
    QUIET = "quiet"


def choose_mode(*, json_lines: bool, is_terminal: bool, quiet: bool = False) -> ProgressMode:
    """JSON when asked; nothing when quiet; live on a terminal; else plain lines."""
    if json_lines:
        return ProgressMode.JSON
    if quiet:
        return ProgressMode.QUIET
    return ProgressMode.LIVE if is_terminal else ProgressMode.PLAIN


@dataclass(frozen=True)
class ProgressContext:
    """What the progress view knows beyond events: sizes, datacenters, the forecast, the windows.

    ``planned_ends`` are the planned end times of every operation (from the plan); with them the
    ETA is the planned finish shifted by the run's lateness. ``window_end(at)`` gives the end of
    the maintenance window open at ``at`` (None when none is).
    """

    total_ops: int = 0
    total_hosts: int = 0
    datacenter_of: Mapping[str, str] = field(default_factory=dict)
    planned_ends: Sequence[datetime] = ()
    window_end: Callable[[datetime], datetime | None] | None = None
    zone: DisplayZone | None = None  # the zone times are shown in (None: UTC, unlabelled)


@dataclass
class _Counter:
    total: int = 0
    done: int = 0
    failed: int = 0
    running: int = 0


@dataclass
class ProgressState:
    """Counts accumulated from events: overall, per wave, per datacenter, failures, times."""

    context: ProgressContext = field(default_factory=ProgressContext)
    run_id: str = ""
    status: str = "pending"
    started: datetime | None = None
    now: datetime | None = None
    ops_done: int = 0
    ops_failed: int = 0
    ops_running: int = 0
    waves: dict[int, _Counter] = field(default_factory=dict)
    datacenters: dict[str, _Counter] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    failed_hosts: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)

    def apply(self, event: Event) -> None:
        """Fold one event into the counts."""
        self.run_id = self.run_id or event.run_id
        self.now = event.at
        handler = _HANDLERS.get(event.kind)
        if handler is not None:
            handler(self, event)

    # -- derived values ---------------------------------------------------------------------------

    def dc(self, host: str | None) -> _Counter | None:
        if host is None or host.startswith("@"):
            return None
        name = self.context.datacenter_of.get(host, "-")
        return self.datacenters.setdefault(name, _Counter())

    def eta(self) -> datetime | None:
        """The planned finish shifted by how late (or early) the run is against its plan."""
        ends = self.context.planned_ends
        if not ends or self.now is None:
            return None
        if self.ops_done == 0:
            return ends[-1]
        planned_at_done = ends[min(self.ops_done, len(ends)) - 1]
        return ends[-1] + (self.now - planned_at_done)

    def window_left(self) -> timedelta | None:
        """Time left in the maintenance window open now (None when none is, or unknown)."""
        if self.context.window_end is None or self.now is None:
            return None
        end = self.context.window_end(self.now)
        return None if end is None else max(timedelta(0), end - self.now)

    def summary(self) -> str:
        total = self.context.total_ops or self.ops_done
        return (
            f"{self.ops_done}/{total} operations done, {self.ops_running} running, "
            f"{self.ops_failed} failed, {plural(len(self.failed_hosts), 'host')} failed"
        )


def _wave(state: ProgressState, event: Event) -> _Counter | None:
    return None if event.wave is None else state.waves.setdefault(event.wave, _Counter())


def _on_run(state: ProgressState, event: Event) -> None:
    status = event.data.get("status")
    state.status = str(status) if status else state.status
    _failed_hosts_of(state, event, replace=event.kind is EventKind.RUN_FINISHED)
    if event.kind is EventKind.RUN_STARTED:
        state.started = state.started or event.at
        state.status = "running"
    if event.message:
        state.notes.append(f"{event.kind.value}: {tidy(event.message)}")


def _on_wave_started(state: ProgressState, event: Event) -> None:
    counter = _wave(state, event)
    if counter is not None:
        counter.total = int(event.data.get("hosts", counter.total))


def _on_wave_finished(state: ProgressState, event: Event) -> None:
    _failed_hosts_of(state, event, replace=False)


def _failed_hosts_of(state: ProgressState, event: Event, *, replace: bool) -> None:
    """The run's own account of failed hosts (``failed_hosts`` of WAVE_FINISHED and RUN_FINISHED):
    hosts can fail without a failed operation event (a failed predecessor, a re-check on resume), and
    the final count is the result's ``failed_servers``."""
    hosts = event.data.get("failed_hosts")
    if isinstance(hosts, list | tuple):
        names = {str(h) for h in hosts}
        state.failed_hosts = names if replace else state.failed_hosts | names


def _on_op_started(state: ProgressState, event: Event) -> None:
    state.ops_running += 1
    for counter in (_wave(state, event), state.dc(event.host)):
        if counter is not None:
            counter.running += 1


def _on_op_finished(state: ProgressState, event: Event) -> None:
    failed = str(event.data.get("state", "")) in _FAILED_STATES
    state.ops_running = max(0, state.ops_running - 1)
    state.ops_done += 1
    state.ops_failed += failed
    for counter in (_wave(state, event), state.dc(event.host)):
        if counter is not None:
            counter.running = max(0, counter.running - 1)
            counter.done += 1
            counter.failed += failed
    if failed:
        _failure(state, event, event.message or f"exit {event.data.get('exit_status')}")


def _on_op_skipped(state: ProgressState, event: Event) -> None:
    state.ops_done += 1


def _on_verification(state: ProgressState, event: Event) -> None:
    if event.data.get("passed") is False:
        _failure(state, event, f"verification: {event.message}")


def _on_note(state: ProgressState, event: Event) -> None:
    state.notes.append(f"{event.kind.value.replace('_', ' ')}: {_message(event)}".rstrip(": "))


def _message(event: Event) -> str:
    """The event's message as a person reads it: counts made grammatical, and an approval request
    says how to give it."""
    if event.kind is EventKind.APPROVAL_REQUESTED and event.wave is not None:
        wave = event.wave + 1
        return f"wave {wave} waits for approval: sysflow approve {event.run_id} --wave {wave}"
    return tidy(event.message)


def _failure(state: ProgressState, event: Event, what: str) -> None:
    if event.host is not None:
        state.failed_hosts.add(event.host)
    task = f" {event.task}" if event.task else ""
    state.failures.append(f"{event.host}{task}: {what}")


_HANDLERS: dict[EventKind, Callable[[ProgressState, Event], None]] = {
    EventKind.RUN_STARTED: _on_run,
    EventKind.RUN_PAUSED: _on_run,
    EventKind.RUN_RESUMED: _on_run,
    EventKind.RUN_FINISHED: _on_run,
    EventKind.WAVE_STARTED: _on_wave_started,
    EventKind.WAVE_FINISHED: _on_wave_finished,
    EventKind.OP_STARTED: _on_op_started,
    EventKind.OP_FINISHED: _on_op_finished,
    EventKind.OP_SKIPPED: _on_op_skipped,
    EventKind.VERIFICATION: _on_verification,
    EventKind.GATE_EVALUATED: _on_note,
    EventKind.APPROVAL_REQUESTED: _on_note,
    EventKind.THRESHOLD_EXCEEDED: _on_note,
    EventKind.ROLLBACK_STARTED: _on_note,
    EventKind.LEASE_REFUSED: _on_note,
}


# -- plain lines --------------------------------------------------------------------------------

_PLAIN_KINDS = frozenset(
    {
        EventKind.RUN_STARTED,
        EventKind.RUN_PAUSED,
        EventKind.RUN_RESUMED,
        EventKind.RUN_FINISHED,
        EventKind.WAVE_STARTED,
        EventKind.WAVE_FINISHED,
        EventKind.GATE_EVALUATED,
        EventKind.APPROVAL_REQUESTED,
        EventKind.APPROVAL_GIVEN,
        EventKind.THRESHOLD_EXCEEDED,
        EventKind.ROLLBACK_STARTED,
        EventKind.ROLLBACK_FINISHED,
        EventKind.LEASE_REFUSED,
    }
)


def plain_line(event: Event, state: ProgressState) -> str | None:
    """The line :class:`PlainProgress` prints for ``event`` (None for events it does not print)."""
    zone = state.context.zone
    stamp = zone.fmt(event.at, seconds=True) if zone else f"{event.at:%Y-%m-%d %H:%M:%S}"
    if event.kind is EventKind.OP_FINISHED and str(event.data.get("state", "")) in _FAILED_STATES:
        return f"{stamp} FAILED {state.failures[-1]}"
    if event.kind is EventKind.VERIFICATION and event.data.get("passed") is False:
        return f"{stamp} FAILED {state.failures[-1]}"
    if event.kind not in _PLAIN_KINDS:
        return None
    message = _message(event)
    wave = f" wave {event.wave + 1}" if event.wave is not None and "wave" not in message else ""
    text = f"{stamp} {event.kind.value}{wave}"
    if event.kind is EventKind.GATE_EVALUATED:
        text += f" passed={event.data.get('passed')}"
    if event.kind in (EventKind.WAVE_FINISHED, EventKind.RUN_FINISHED):
        text += f" ({state.summary()})"
    return f"{text}: {message}" if message else text


def write_line(out: IO[str], line: str) -> bool:
    """Write and flush one line; False when the reader has gone (a closed pipe). The stream is then
    pointed at /dev/null, so nothing written later (or flushed at exit) fails again: a closed pipe
    must not stop a maintenance run, nor print a traceback."""
    try:
        out.write(line + "\n")
        out.flush()
    except BrokenPipeError:
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, out.fileno())
            os.close(devnull)
        return False
    return True


class PlainProgress:
    """One line per run, wave, gate and failure event; for logs and pipes."""

    def __init__(self, out: IO[str], context: ProgressContext | None = None) -> None:
        self.out = out
        self.state = ProgressState(context or ProgressContext())
        self.closed = False  # the reader went away (``sysflow sim | head``): the run goes on quietly

    def on_event(self, event: Event) -> None:
        self.state.apply(event)
        if self.closed:
            return
        line = plain_line(event, self.state)
        if line is not None:
            self.closed = self.closed or not write_line(self.out, line)

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.out.flush()


class JsonLinesProgress:
    """Every event as one JSON object per line (``Event.to_dict``), flushed as it happens."""

    def __init__(self, out: IO[str], context: ProgressContext | None = None) -> None:
        self.out = out
        self.state = ProgressState(context or ProgressContext())
        self.closed = False

    def on_event(self, event: Event) -> None:
        self.state.apply(event)
        if not self.closed:
            self.closed = not write_line(self.out, json.dumps(event.to_dict(), default=str, sort_keys=True))

    def __enter__(self) -> JsonLinesProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.out.flush()


class QuietProgress:
    """Shows nothing (still counts, for a final summary)."""

    def __init__(self, context: ProgressContext | None = None) -> None:
        self.state = ProgressState(context or ProgressContext())

    def on_event(self, event: Event) -> None:
        self.state.apply(event)

    def __enter__(self) -> QuietProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


# -- the live view ------------------------------------------------------------------------------


def _fmt_delta(delta: timedelta | None) -> str:
    if delta is None:
        return "-"
    seconds = int(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m{rest % 60:02d}s" if hours else f"{rest // 60}m{rest % 60:02d}s"


def _fmt_time(when: datetime | None, zone: DisplayZone | None = None) -> str:
    if when is None:
        return "-"
    return zone.fmt(when, seconds=True) if zone else f"{when:%Y-%m-%d %H:%M:%S %Z}".strip()


def _rows(counters: Mapping[Any, _Counter], label: Callable[[Any], str]) -> Iterable[tuple[str, ...]]:
    for key in sorted(counters):
        c = counters[key]
        total = str(c.total) if c.total else ""
        yield label(key), total, str(c.done), str(c.running), str(c.failed)


def render(state: ProgressState) -> RenderableType:
    """The live view of ``state``: headline, waves, datacenters, latest failures."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    zone = state.context.zone
    head = Text.assemble(
        (f"run {state.run_id or '-'} ", "bold"),
        (state.status, "red" if state.status in _BAD_STATUSES else "green"),
        f"  {state.summary()}\n",
        f"now {_fmt_time(state.now, zone)}   ETA (forecast) {_fmt_time(state.eta(), zone)}   "
        f"window left {_fmt_delta(state.window_left())}",
    )
    table = Table(show_edge=False, pad_edge=False, box=None)
    for column in ("", "hosts", "ops done", "running", "failed"):
        table.add_column(column, justify="left" if not column else "right")
    for row in _rows(state.waves, lambda w: f"wave {w + 1}"):
        table.add_row(*row)
    for row in _rows(state.datacenters, lambda d: f"dc {d}"):
        table.add_row(*row)
    parts: list[RenderableType] = [head, table]
    if state.failures:
        latest = state.failures[-MAX_FAILURES_SHOWN:]
        parts.append(Text("failures:\n" + "\n".join(f"  {f}" for f in latest), style="red"))
    if state.notes:
        parts.append(Text(state.notes[-1], style="dim"))
    return Group(*parts)


class LiveProgress:
    """A rich live table updated from events; use as a context manager around the run."""

    def __init__(
        self,
        console: Console,
        context: ProgressContext | None = None,
        *,
        refresh_interval: float = REFRESH_INTERVAL,
    ) -> None:
        self.console = console
        self.state = ProgressState(context or ProgressContext())
        self.refresh_interval = refresh_interval
        self._live: Live | None = None
        self._last = 0.0

    def __enter__(self) -> LiveProgress:
        from rich.live import Live

        self._live = Live(render(self.state), console=self.console, auto_refresh=False, transient=False)
        self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.update(render(self.state), refresh=True)
            self._live.stop()
            self._live = None

    def on_event(self, event: Event) -> None:
        self.state.apply(event)
        important = event.kind not in (EventKind.OP_STARTED, EventKind.OP_FINISHED, EventKind.OP_PROGRESS)
        now = time.monotonic()
        if self._live is not None and (important or now - self._last >= self.refresh_interval):
            self._last = now
            self._live.update(render(self.state), refresh=True)


Progress = LiveProgress | PlainProgress | JsonLinesProgress | QuietProgress


def progress_for(
    mode: ProgressMode,
    *,
    out: IO[str],
    context: ProgressContext | None = None,
    console: Console | None = None,
) -> Progress:
    """The observer for ``mode`` writing to ``out`` (the live view to ``console``, else one on ``out``)."""
    if mode is ProgressMode.JSON:
        return JsonLinesProgress(out, context)
    if mode is ProgressMode.PLAIN:
        return PlainProgress(out, context)
    if mode is ProgressMode.QUIET:
        return QuietProgress(context)
    from rich.console import Console

    return LiveProgress(console or Console(file=out), context)


def planned_ends(plan: Plan) -> list[datetime]:
    """Planned end times of every operation of a ``sysflow.planner.plan.Plan``, sorted."""
    return sorted(op.end for op in plan.ops())


def window_end_finder(plan: Plan) -> Callable[[datetime], datetime | None]:
    """``window_end(at)`` over the windows a plan uses: the latest end of a window open at ``at``."""
    spans = sorted({(op.window_start, op.window_end) for op in plan.ops()})

    def window_end(at: datetime) -> datetime | None:
        open_ends = [end for start, end in spans if start <= at < end]
        return max(open_ends) if open_ends else None

    return window_end
