"""The run page's Gantt of plan against actual, as server-side SVG (no script, no library, no CDN).

One lane per host (per group when a run has more than ``MAX_HOST_LANES`` hosts). In a host lane each
operation has two bars: the first plan's (outlined, upper half) and what happened (filled by its
state, lower half; an operation still running reaches the run's latest known time). A group lane
has the same two bars per task, from the earliest start to the latest end of the group's operations.
The maintenance windows the plan placed each lane's operations in are shaded behind its bars.

Accessible: the ``svg`` is an image labelled by its ``title`` and ``desc`` (what it shows, in words:
lanes, operations, the span), every bar has a ``title`` (a tooltip, read by screen readers) and an
``aria-label``; the same operations stay available as a table beside it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from typing import Any

__all__ = ["MAX_HOST_LANES", "gantt_svg"]

MAX_HOST_LANES = 200  # beyond this many hosts, one lane per group
_LABEL_W = 190  # px for the lane names
_PLOT_W = 880  # px for the time axis
_LANE_H = 22
_AXIS_H = 28
_LEGEND_H = 24


@dataclass(frozen=True, slots=True)
class _Bar:
    lane: int
    kind: str  # "planned" or "actual"
    start: datetime
    end: datetime
    task: str
    state: str
    label: str  # lane name (host or group)


def _time(text: object) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        return None


def _lanes(ops: Sequence[Mapping[str, Any]]) -> tuple[str, list[str], dict[int, str]]:
    """Lane mode, lane names, and each op's lane name (by index in ``ops``)."""
    hosts = list(dict.fromkeys(str(o["host"]) for o in ops))
    if len(hosts) <= MAX_HOST_LANES:
        return "host", hosts, {i: str(o["host"]) for i, o in enumerate(ops)}
    of = {i: str(o.get("group") or "(no group)") for i, o in enumerate(ops)}
    return "group", sorted(set(of.values())), of


def _bars(
    ops: Sequence[Mapping[str, Any]], mode: str, lane_of: Mapping[int, str], lanes: list[str]
) -> list[_Bar]:
    index = {name: k for k, name in enumerate(lanes)}
    latest = max(
        (t for o in ops for k in ("end", "start") if (t := _time(o.get(k))) is not None), default=None
    )
    spans: dict[tuple[int, str, str], list[Any]] = {}  # (lane, kind, task) -> [start, end, states]
    bars: list[_Bar] = []
    for i, o in enumerate(ops):
        lane, task, state = index[lane_of[i]], str(o["task"]), str(o.get("state", ""))
        found = [("planned", _time(o.get("planned_start")), _time(o.get("planned_end")))]
        start = _time(o.get("start"))
        if start is not None:
            found.append(("actual", start, _time(o.get("end")) or latest or start))
        for kind, s, e in found:
            if s is None or e is None:
                continue
            if mode == "host":
                bars.append(_Bar(lane, kind, s, max(s, e), task, state, lane_of[i]))
                continue
            span = spans.setdefault((lane, kind, task), [s, e, set()])
            span[0], span[1] = min(span[0], s), max(span[1], e)
            span[2].add(state)
    for (lane, kind, task), (s, e, states) in spans.items():
        state = next((x for x in ("failed", "unknown", "running", "pending") if x in states), "succeeded")
        bars.append(_Bar(lane, kind, s, e, task, state, lanes[lane]))
    return bars


def _windows(
    ops: Sequence[Mapping[str, Any]], lane_of: Mapping[int, str], lanes: list[str]
) -> list[tuple[int, datetime, datetime]]:
    index = {name: k for k, name in enumerate(lanes)}
    found = set()
    for i, o in enumerate(ops):
        s, e = _time(o.get("window_start")), _time(o.get("window_end"))
        if s is not None and e is not None:
            found.add((index[lane_of[i]], s, e))
    return sorted(found)


def _ticks(lo: datetime, hi: datetime) -> Iterable[tuple[float, str]]:
    span = (hi - lo).total_seconds()
    fmt = "%Y-%m-%d %H:%M" if span > 2 * 86400 else "%H:%M:%S" if span < 600 else "%H:%M"
    for k in range(6):
        at = lo + (hi - lo) * (k / 5)
        yield k / 5, at.strftime(fmt)


def _when(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def gantt_svg(ops: Sequence[Mapping[str, Any]], *, ident: str = "gantt") -> str:
    """The SVG (a string, escaped) of ``ops`` (the run detail's operations); empty when none has times."""
    if not ops:
        return ""
    mode, lanes, lane_of = _lanes(ops)
    bars = _bars(ops, mode, lane_of, lanes)
    shades = _windows(ops, lane_of, lanes)
    times = [t for b in bars for t in (b.start, b.end)]
    if not times:
        return ""
    lo, hi = min(times), max(times)
    if hi <= lo:
        hi = lo + timedelta(seconds=60)
    scale = _PLOT_W / (hi - lo).total_seconds()

    def x(t: datetime) -> float:
        return round(_LABEL_W + max(0.0, min((t - lo).total_seconds(), (hi - lo).total_seconds())) * scale, 1)

    height = _AXIS_H + len(lanes) * _LANE_H + _LEGEND_H
    width = _LABEL_W + _PLOT_W + 10
    actual = sum(b.kind == "actual" for b in bars)
    desc = (f"{len(lanes)} {mode}s from {_when(lo)} to {_when(hi)}: {len(bars) - actual} planned bars "
            f"(outlined) and {actual} actual bars (filled by state), maintenance windows shaded.")  # fmt: skip
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{ident}" class="gantt-svg" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'aria-labelledby="{ident}-title {ident}-desc" data-mode="{mode}">',
        f'<title id="{ident}-title">Plan against actual, one lane per {mode}</title>',
        f'<desc id="{ident}-desc">{escape(desc)}</desc>',
        '<g class="axis" aria-hidden="true">',
    ]
    for frac, text in _ticks(lo, hi):
        tx = round(_LABEL_W + frac * _PLOT_W, 1)
        out.append(f'<line x1="{tx}" y1="{_AXIS_H - 6}" x2="{tx}" y2="{height - _LEGEND_H}" class="tick"/>')
        anchor = "start" if frac == 0 else "end" if frac == 1 else "middle"
        out.append(f'<text x="{tx}" y="{_AXIS_H - 10}" text-anchor="{anchor}">{escape(text)}</text>')
    out.append("</g>")
    for k, name in enumerate(lanes):
        y = _AXIS_H + k * _LANE_H
        out.append(f'<text x="4" y="{y + 15}" class="lane">{escape(name[:28])}</text>')
    for lane, s, e in shades:
        y = _AXIS_H + lane * _LANE_H
        label = f"{lanes[lane]}: window {_when(s)} to {_when(e)}"
        out.append(f'<rect class="window" x="{x(s)}" y="{y}" width="{max(1.0, x(e) - x(s))}" height="{_LANE_H}" '
                   f'aria-label="{escape(label)}"><title>{escape(label)}</title></rect>')  # fmt: skip
    for b in bars:
        y = _AXIS_H + b.lane * _LANE_H + (2 if b.kind == "planned" else _LANE_H // 2)
        label = f"{b.label} {b.task} {b.kind}: {_when(b.start)} to {_when(b.end)}" + (
            f" ({b.state})" if b.kind == "actual" else ""
        )
        out.append(
            f'<rect class="{b.kind} s-{escape(b.state)}" x="{x(b.start)}" y="{y}" '
            f'width="{max(1.5, x(b.end) - x(b.start))}" height="{_LANE_H // 2 - 3}" '
            f'data-lane="{escape(b.label)}" data-task="{escape(b.task)}" aria-label="{escape(label)}">'
            f"<title>{escape(label)}</title></rect>"
        )
    ly = height - _LEGEND_H + 6
    out.append(f'<g class="legend" aria-hidden="true"><rect class="planned" x="{_LABEL_W}" y="{ly}" width="18" height="9"/>'
               f'<text x="{_LABEL_W + 24}" y="{ly + 9}">planned (first plan)</text>'
               f'<rect class="actual s-succeeded" x="{_LABEL_W + 170}" y="{ly}" width="18" height="9"/>'
               f'<text x="{_LABEL_W + 194}" y="{ly + 9}">actual</text>'
               f'<rect class="window" x="{_LABEL_W + 260}" y="{ly}" width="18" height="9"/>'
               f'<text x="{_LABEL_W + 284}" y="{ly + 9}">maintenance window</text></g>')  # fmt: skip
    out.append("</svg>")
    return "\n".join(out)
