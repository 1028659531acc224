"""Gantt charts of a plan: PNG (matplotlib, imported only here and only when asked) and HTML.

Rows are hosts (up to ``MAX_HOST_ROWS``) or else groups; each operation is a bar coloured by task,
each row's maintenance windows are shaded, and underneath, the utilisation of every pool over time
(share of capacity). The HTML file is self-contained: one inline SVG with a tooltip per bar.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sysflow.planner.plan import Plan
from sysflow.planner.problem import ResourceKind
from sysflow.planner.solution import block_items, blocks

__all__ = ["MAX_HOST_ROWS", "render_gantt", "render_html", "render_png"]

MAX_HOST_ROWS = 60
_PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")
_MARGIN_S = 300


@dataclass(frozen=True, slots=True)
class _Bar:
    row: int
    start: int
    end: int
    task: str
    label: str


@dataclass(frozen=True)
class _Chart:
    rows: list[str]
    bars: list[_Bar]
    shades: list[tuple[int, int, int]]  # (row, start, end)
    tasks: list[str]
    lo: int
    hi: int
    usage: dict[str, list[tuple[int, float]]]  # label -> steps (time, share)


def _layout(plan: Plan) -> _Chart:
    p, a = plan.problem, plan.assignment
    placed = [c for c in p.chains if c.host in a.starts]
    by_host = len(placed) <= MAX_HOST_ROWS
    rows = [c.host for c in placed] if by_host else sorted({c.group for c in placed})
    index = {r: i for i, r in enumerate(rows)}
    tasks = list(dict.fromkeys(t for c in placed for t in c.tasks))
    bars = []
    for c in placed:
        row = index[c.host if by_host else c.group]
        for i, s in enumerate(a.starts[c.host]):
            bars.append(_Bar(row, s, s + c.durations[i], c.tasks[i], f"{c.ops[i]} (wave {c.wave + 1})"))
    lo = min((b.start for b in bars), default=0) - _MARGIN_S
    hi = max((b.end for b in bars), default=0) + _MARGIN_S
    shades = []
    for c in placed:
        row = index[c.host if by_host else c.group]
        shades += [(row, max(w.start, lo), min(w.end, hi)) for w in c.windows if w.end > lo and w.start < hi]
    return _Chart(rows, bars, sorted(set(shades)), tasks, lo, hi, _usage(plan))


def _usage(plan: Plan) -> dict[str, list[tuple[int, float]]]:
    p, a = plan.problem, plan.assignment
    events: dict[int, dict[int, int]] = {}
    for c in p.chains:
        s = a.starts.get(c.host)
        if s is None:
            continue
        for x, y in blocks(c, p.split_chains):
            for r, off, length, amount in block_items(p, c, x, y):
                if p.resources[r].kind is ResourceKind.POOL:
                    ev = events.setdefault(r, {})
                    ev[s[x] + off] = ev.get(s[x] + off, 0) + amount
                    ev[s[x] + off + length] = ev.get(s[x] + off + length, 0) - amount
    out: dict[str, list[tuple[int, float]]] = {}
    for r, ev in sorted(events.items()):
        res, level, steps = p.resources[r], 0, []
        for t in sorted(ev):
            level += ev[t]
            steps.append((t, level / res.capacity))
        out[res.label or res.name] = steps
    return out


def render_gantt(plan: Plan, path: str | Path) -> Path:
    """Write the chart as PNG or HTML, chosen by the file's suffix."""
    out = Path(path)
    if out.suffix.lower() in (".html", ".htm"):
        return render_html(plan, out)
    if out.suffix.lower() == ".png":
        return render_png(plan, out)
    raise ValueError(f"a Gantt chart is written as .png or .html, not {out.suffix or 'no suffix'!r}")


def render_png(plan: Plan, path: str | Path) -> Path:
    """Write the chart as a PNG (needs matplotlib, the ``plot`` extra)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    ch = _layout(plan)
    colour = {t: _PALETTE[i % len(_PALETTE)] for i, t in enumerate(ch.tasks)}
    height = min(14.0, 2.5 + 0.28 * len(ch.rows))
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(13, height + 2.2), sharex=True, gridspec_kw={"height_ratios": [height, 2.2]}
    )
    day = 86_400.0
    num = mdates.date2num(plan.origin)  # type: ignore[no-untyped-call]

    def x(t: float) -> float:
        return float(num + t / day)

    for row, s, e in ch.shades:
        top.barh(row, (e - s) / day, left=x(s), height=0.9, color="#d9f0d3", zorder=0)
    for b in ch.bars:
        top.barh(
            b.row, max(b.end - b.start, 1) / day, left=x(b.start), height=0.6, color=colour[b.task], zorder=2
        )
    top.set_yticks(range(len(ch.rows)), ch.rows, fontsize=7 if len(ch.rows) > 20 else 9)
    top.invert_yaxis()
    top.set_title(
        f"{plan.solver} plan: {sum(plan.hosts_done_per_window)} hosts, {len(plan.deferred)} deferred",
        pad=14 + 12 * -(-(len(ch.tasks) + 1) // 7),
    )
    handles = [Rectangle((0, 0), 1, 1, color=colour[t]) for t in ch.tasks]
    top.legend([*handles, Rectangle((0, 0), 1, 1, color="#d9f0d3")], [*ch.tasks, "window"], fontsize=8,
               loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=min(7, len(ch.tasks) + 1), frameon=False)  # fmt: skip
    for label, steps in ch.usage.items():
        bottom.step([x(t) for t, _ in steps], [v * 100 for _, v in steps], where="post", label=label)
    bottom.set_ylabel("pool use %")
    bottom.set_ylim(0, 105)
    if ch.usage:
        bottom.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    bottom.set_xlim(x(ch.lo), x(ch.hi))
    bottom.xaxis.set_major_formatter(mdates.DateFormatter("%a %H:%M"))  # type: ignore[no-untyped-call]
    fig.autofmt_xdate()
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def render_html(plan: Plan, path: str | Path) -> Path:
    """Write the chart as one self-contained HTML file (inline SVG, no scripts or remote assets)."""
    out = Path(path)
    out.write_text("\n".join(_html(plan)), encoding="utf-8")
    return out


def _html(plan: Plan) -> Iterator[str]:
    ch = _layout(plan)
    colour = {t: _PALETTE[i % len(_PALETTE)] for i, t in enumerate(ch.tasks)}
    left, width, row_h = 180, 1000, 18
    span = max(1, ch.hi - ch.lo)

    def px(t: int) -> float:
        return left + (t - ch.lo) * width / span

    chart_h = row_h * len(ch.rows)
    use_h = 80 if ch.usage else 0
    total_h = chart_h + use_h + 60
    yield "<!DOCTYPE html><html><head><meta charset='utf-8'><title>sysflow plan</title>"
    yield "<style>body{font-family:sans-serif;font-size:12px} text{font-size:11px}</style></head><body>"
    yield f"<h3>{html.escape(plan.solver)} plan from {plan.origin.isoformat()}</h3>"
    yield f"<p>{sum(plan.hosts_done_per_window)} hosts placed, {len(plan.deferred)} deferred; "
    yield f"from {html.escape(str(plan.at(ch.lo)))} to {html.escape(str(plan.at(ch.hi)))}.</p>"
    yield f"<svg xmlns='http://www.w3.org/2000/svg' width='{left + width + 20}' height='{total_h}'>"
    for i, name in enumerate(ch.rows):
        yield f"<text x='4' y='{i * row_h + 13}'>{html.escape(name)}</text>"
    for row, s, e in ch.shades:
        yield f"<rect x='{px(s):.1f}' y='{row * row_h}' width='{px(e) - px(s):.1f}' height='{row_h - 2}' fill='#d9f0d3'/>"
    for b in ch.bars:
        w = max(1.0, px(b.end) - px(b.start))
        tip = f"{b.label}: {plan.at(b.start):%a %H:%M:%S} - {plan.at(b.end):%H:%M:%S}"
        yield (
            f"<rect x='{px(b.start):.1f}' y='{b.row * row_h + 3}' width='{w:.1f}' height='{row_h - 8}' "
            f"fill='{colour[b.task]}'><title>{html.escape(tip)}</title></rect>"
        )
    yield from _html_usage(ch, px, chart_h + 20, use_h)
    for k, t in enumerate(ch.tasks):
        x = left + 110 * k
        yield f"<rect x='{x}' y='{total_h - 14}' width='10' height='10' fill='{colour[t]}'/>"
        yield f"<text x='{x + 14}' y='{total_h - 5}'>{html.escape(t)}</text>"
    yield "</svg></body></html>"


def _html_usage(ch: _Chart, px: Callable[[int], float], top: int, h: int) -> Iterator[str]:
    for k, (label, steps) in enumerate(ch.usage.items()):
        pts, last = [], 0.0
        for t, v in steps:
            x = px(max(ch.lo, min(ch.hi, t)))
            pts.append(f"{x:.1f},{top + h - last * h:.1f} {x:.1f},{top + h - v * h:.1f}")
            last = v
        stroke = _PALETTE[k % len(_PALETTE)]
        yield f"<polyline fill='none' stroke='{stroke}' points='{' '.join(pts)}'><title>{html.escape(label)}</title></polyline>"
    if ch.usage:
        yield f"<text x='4' y='{top + h // 2}'>pool use (0-100 %)</text>"
