"""Writing a plan's Gantt chart to a file: ``.html`` (self-contained page) or ``.png`` (matplotlib).

The PNG shows what the HTML shows (axis in the display zone, host or group lanes, windows, legend).
matplotlib is a default dependency; if it is missing anyway, the one-line error says what to install.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from sysflow.cli.gantt_html import gantt_html, tick_times
from sysflow.cli.timefmt import DisplayZone
from sysflow.cli.views import plural
from sysflow.errors import SysflowError
from sysflow.planner.gantt import GanttChart, gantt_chart
from sysflow.planner.plan import Plan

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.patches import Rectangle

__all__ = ["ChartUnavailable", "gantt_png", "write_gantt"]

PNG_INSTALL_HINT = "a PNG chart needs matplotlib: pip install matplotlib (or write the chart as .html)"


class ChartUnavailable(SysflowError):
    """The chart cannot be drawn here (matplotlib missing) or in the format asked for."""


def write_gantt(plan: Plan, path: Path, zone: DisplayZone) -> Path:
    """Write the chart as PNG or HTML, chosen by the file's suffix."""
    suffix = path.suffix.lower()
    if suffix in (".html", ".htm"):
        path.write_text(gantt_html(plan, zone), encoding="utf-8")
    elif suffix == ".png":
        path.write_bytes(gantt_png(plan, zone))
    else:
        raise ChartUnavailable(f"a Gantt chart is written as .png or .html, not {suffix or 'no suffix'!r}")
    return path


def gantt_png(plan: Plan, zone: DisplayZone) -> bytes:
    """The chart as PNG bytes."""
    try:
        import matplotlib
    except ImportError:
        raise ChartUnavailable(PNG_INSTALL_HINT) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ch = gantt_chart(plan)
    rows = len(ch.lanes)
    lane_h = 0.25 if ch.mode == "host" else 0.7
    fig, ax = plt.subplots(figsize=(14, min(40.0, 2.6 + lane_h * rows)))
    _draw(ax, ch)
    ticks = tick_times(plan.at(ch.lo), plan.at(ch.hi), zone)
    span = ch.hi - ch.lo
    fmt = "%a %d %b %H:%M %Z" if span > 86400 else "%a %H:%M %Z"
    ax.set_xticks([plan.seconds_of(t) for t in ticks], [f"{zone.local(t):{fmt}}" for t in ticks], fontsize=8)
    ax.set_xlim(ch.lo, ch.hi)
    ax.set_ylim(rows, 0)
    labels = (
        ch.lanes
        if ch.mode == "host"
        else [f"{n} ({plural(k, 'host')})" for n, k in zip(ch.lanes, ch.hosts_per_lane, strict=True)]
    )
    ax.set_yticks([i + 0.5 for i in range(rows)], labels, fontsize=7 if rows > 25 else 9)
    if rows > 80:
        ax.set_yticks(
            [i + 0.5 for i in range(0, rows, max(1, rows // 60))], labels[:: max(1, rows // 60)], fontsize=6
        )
    placed = len({b.host for b in ch.bars})
    ax.set_title(
        f"sysflow plan: {placed} hosts, {len(plan.deferred)} deferred ({plan.solver}) - {zone.header()}",
        fontsize=11,
        pad=34,
    )
    _legend(ax, ch)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _draw(ax: Axes, ch: GanttChart) -> None:
    for lane, s, e in ch.shades:
        ax.add_patch(_rect(s, lane + 0.02, e - s, 0.96, "#e3f2dc"))
    if ch.mode == "host":
        for b in ch.bars:
            ax.add_patch(_rect(b.start, b.lane + 0.18, max(1, b.end - b.start), 0.64, ch.colour(b.task)))
        return
    for lane, per_task in enumerate(ch.density):
        n = len(next(iter(per_task.values()), []))
        peak = max((sum(s[k] for s in per_task.values()) for k in range(n)), default=0.0) or 1.0
        xs = [ch.lo + k * ch.bin_s for k in range(n + 1)]
        base = [0.0] * n
        for task, series in per_task.items():
            top = [b + v for b, v in zip(base, series, strict=True)]
            y1 = [lane + 0.95 - t / peak * 0.85 for t in [*top, top[-1]]]
            y0 = [lane + 0.95 - t / peak * 0.85 for t in [*base, base[-1]]]
            ax.fill_between(xs, y0, y1, step="post", color=ch.colour(task), linewidth=0)
            base = top


def _rect(x: float, y: float, w: float, h: float, colour: str) -> Rectangle:
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), w, h, color=colour, linewidth=0)


def _legend(ax: Axes, ch: GanttChart) -> None:
    from matplotlib.patches import Patch

    handles = [Patch(color=ch.colour(t), label=t) for t in ch.tasks] + [
        Patch(color="#e3f2dc", label="maintenance window")
    ]
    ax.legend(
        handles=handles,
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        ncol=min(8, len(handles)),
        fontsize=8,
        frameon=False,
    )
