"""The Gantt chart of a plan as one self-contained HTML page (inline SVG, CSS and JS; nothing remote).

A time axis labelled in the display zone, one lane per host (or per datacenter / group / wave with
ops-in-flight density beyond a few hundred hosts), shaded windows, a legend per task, a tooltip per
bar, and zoom: mouse wheel, drag to pan, +/-/fit buttons.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from datetime import datetime, timedelta

from sysflow.cli.timefmt import DisplayZone
from sysflow.cli.views import plural
from sysflow.planner.gantt import GanttChart, gantt_chart
from sysflow.planner.plan import Plan

__all__ = ["gantt_html", "tick_times"]

LABEL_W = 230  # px of the lane-name column
_STEPS = (60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800)
_WINDOW_FILL = "#e3f2dc"


def tick_times(lo: datetime, hi: datetime, zone: DisplayZone, most: int = 12) -> list[datetime]:
    """Round local times between ``lo`` and ``hi`` (at most ``most``), a whole step apart."""
    span = (hi - lo).total_seconds()
    step = next((s for s in _STEPS if span / s <= most), _STEPS[-1])
    offset = zone.local(lo).utcoffset() or timedelta(0)
    first = (int(lo.timestamp() + offset.total_seconds()) // step + 1) * step - offset.total_seconds()
    out, t = [], first
    while t <= hi.timestamp():
        out.append(datetime.fromtimestamp(t, tz=lo.tzinfo))
        t += step
    return out


def gantt_html(plan: Plan, zone: DisplayZone) -> str:
    """The whole page as text."""
    return "\n".join(_page(plan, gantt_chart(plan), zone))


def _tick_label(when: datetime, zone: DisplayZone, span_s: float) -> str:
    t = zone.local(when)
    return f"{t:%a %d %b %H:%M %Z}" if span_s > 86400 else f"{t:%a %H:%M %Z}"


def _page(plan: Plan, ch: GanttChart, zone: DisplayZone) -> Iterator[str]:
    lane_h = 22 if ch.mode == "host" and len(ch.lanes) <= 40 else (14 if ch.mode == "host" else 44)
    height = lane_h * len(ch.lanes)
    placed = len({b.host for b in ch.bars})
    title = f"sysflow plan: {placed} hosts, {len(plan.deferred)} deferred ({plan.solver})"
    yield "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
    yield f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
    yield f"<h2>{html.escape(title)}</h2>"
    yield (
        f"<p class='sub'>{html.escape(zone.header())} &middot; from {html.escape(zone.fmt(plan.at(ch.lo)))} "
        f"to {html.escape(zone.fmt(plan.at(ch.hi)))} &middot; "
        + (
            "one lane per host"
            if ch.mode == "host"
            else "one lane per datacenter / group / wave: operations in flight"
        )
        + "</p>"
    )
    yield "<div class='bar'><button id='zin'>+</button><button id='zout'>&minus;</button>"
    yield "<button id='fit'>fit</button><span class='hint'>wheel to zoom, drag to pan</span></div>"
    yield "<div id='legend'>" + "".join(_legend(ch)) + "</div>"
    yield f"<div id='axis' style='margin-left:{LABEL_W}px'>"
    span = ch.hi - ch.lo
    for t in tick_times(plan.at(ch.lo), plan.at(ch.hi), zone):
        pct = 100 * (t - plan.at(ch.lo)).total_seconds() / span
        yield f"<div class='tick' style='left:{pct:.3f}%'>{html.escape(_tick_label(t, zone, span))}</div>"
    yield "</div><div id='rows'>"
    yield f"<svg id='names' width='{LABEL_W}' height='{height}'>"
    for i, name in enumerate(ch.lanes):
        extra = f" ({plural(ch.hosts_per_lane[i], 'host')})" if ch.mode == "group" else ""
        y = i * lane_h + lane_h / 2 + 4
        yield f"<text class='lane' x='4' y='{y:.0f}'>{html.escape(name + extra)}</text>"
    yield "</svg>"
    yield f"<svg id='plot' viewBox='0 0 {span} {height}' preserveAspectRatio='none' height='{height}'>"
    yield from _plot(plan, ch, zone, lane_h)
    yield "</svg></div>"
    yield from _pools(ch)
    data = {"lo": plan.at(ch.lo).timestamp(), "span": span, "h": height, "tz": zone.name}
    yield f"<script>const G={json.dumps(data)};{_JS}</script></body></html>"


def _legend(ch: GanttChart) -> Iterator[str]:
    for t in ch.tasks:
        yield f"<span class='key'><i style='background:{ch.colour(t)}'></i>{html.escape(t)}</span>"
    yield f"<span class='key window'><i style='background:{_WINDOW_FILL}'></i>maintenance window</span>"


def _plot(plan: Plan, ch: GanttChart, zone: DisplayZone, lane_h: int) -> Iterator[str]:
    for lane, s, e in ch.shades:
        yield f"<rect x='{s - ch.lo}' y='{lane * lane_h}' width='{e - s}' height='{lane_h - 1}' fill='{_WINDOW_FILL}'/>"
    for i in range(1, len(ch.lanes)):
        yield f"<line x1='0' x2='{ch.hi - ch.lo}' y1='{i * lane_h}' y2='{i * lane_h}' class='sep'/>"
    if ch.mode == "host":
        for b in ch.bars:
            tip = f"{b.host} · {b.task} · {zone.fmt(plan.at(b.start), seconds=True)} – {zone.fmt(plan.at(b.end), seconds=True, day=False)} · wave {b.wave + 1}"
            yield (
                f"<rect class='op' x='{b.start - ch.lo}' y='{b.lane * lane_h + 3}' width='{max(1, b.end - b.start)}' "
                f"height='{lane_h - 7}' fill='{ch.colour(b.task)}'><title>{html.escape(tip)}</title></rect>"
            )
        return
    yield from _density(ch, lane_h)


def _density(ch: GanttChart, lane_h: int) -> Iterator[str]:
    w = ch.bin_s
    for lane, per_task in enumerate(ch.density):
        n = len(next(iter(per_task.values()), []))
        peak = max((sum(s[k] for s in per_task.values()) for k in range(n)), default=0.0) or 1.0
        base = [0.0] * n
        bottom = (lane + 1) * lane_h - 2
        scale = (lane_h - 6) / peak
        for task, series in per_task.items():
            top = [b + v for b, v in zip(base, series, strict=True)]
            up = [
                f"{k * w:.0f},{bottom - top[k] * scale:.1f} {(k + 1) * w:.0f},{bottom - top[k] * scale:.1f}"
                for k in range(n)
            ]
            down = [
                f"{(k + 1) * w:.0f},{bottom - base[k] * scale:.1f} {k * w:.0f},{bottom - base[k] * scale:.1f}"
                for k in reversed(range(n))
            ]
            tip = f"{ch.lanes[lane]}: {task}, up to {max(series):.0f} in flight (lane peak {peak:.0f})"
            yield f"<polygon class='density' fill='{ch.colour(task)}' points='{' '.join(up + down)}'><title>{html.escape(tip)}</title></polygon>"
            base = top


def _pools(ch: GanttChart) -> Iterator[str]:
    if not ch.usage:
        return
    h, span = 36, ch.hi - ch.lo
    yield "<h3>pool use (share of capacity)</h3>"
    for label, steps in ch.usage.items():
        pts, last = [], 0.0
        for t, v in steps:  # a step line: hold the last level until the next change
            pts += [f"{t - ch.lo},{h - last * (h - 2):.1f}", f"{t - ch.lo},{h - v * (h - 2):.1f}"]
            last = v
        peak = max((v for _, v in steps), default=0.0)
        yield (
            f"<div class='pool'><span style='width:{LABEL_W}px'>{html.escape(label)} (peak {peak:.0%})</span>"
            f"<svg class='poolplot' viewBox='0 0 {span} {h}' preserveAspectRatio='none' height='{h}'>"
            f"<rect width='{span}' height='{h}' fill='#f4f4f4'/><polyline fill='none' stroke='#4e79a7' "
            f"stroke-width='2' vector-effect='non-scaling-stroke' points='{' '.join(pts)}'/></svg></div>"
        )


_CSS = """
body{font-family:system-ui,sans-serif;font-size:13px;margin:12px;color:#222}
h2{margin:0 0 2px;font-size:17px} h3{font-size:13px;margin:14px 0 4px} .sub{margin:0 0 8px;color:#555}
.bar button{font-size:14px;min-width:34px;margin-right:4px} .hint{color:#777;margin-left:8px}
#legend{display:flex;flex-wrap:wrap;gap:6px 18px;margin:8px 0}
.key{display:inline-flex;align-items:center;white-space:nowrap} .key i{width:14px;height:14px;margin-right:6px;display:inline-block;border:1px solid #0002}
#axis{position:relative;height:22px;border-bottom:1px solid #999;position:sticky;top:0;background:#fff;z-index:2;overflow:hidden}
.tick{position:absolute;bottom:2px;transform:translateX(-50%);white-space:nowrap;font-size:11px;color:#333}
.tick:after{content:'';position:absolute;left:50%;bottom:-3px;height:4px;border-left:1px solid #999}
#rows{display:flex} #plot,.poolplot{flex:1;width:calc(100% - 230px);cursor:grab;display:block}
.lane{font-size:11px} .sep{stroke:#eee;vector-effect:non-scaling-stroke}
.op:hover,.density:hover{opacity:.75} .pool{display:flex;align-items:center} .pool span{flex:none;font-size:11px;overflow-wrap:anywhere;padding-right:6px;box-sizing:border-box}
"""

_JS = """
(function(){
const plot=document.getElementById('plot'),axis=document.getElementById('axis');
const pools=[...document.querySelectorAll('.poolplot')];
let v0=0,v1=G.span;
const steps=[60,300,600,900,1800,3600,7200,10800,21600,43200,86400,172800,604800];
const fmt=new Intl.DateTimeFormat('en-GB',{timeZone:G.tz,weekday:'short',hour:'2-digit',minute:'2-digit',timeZoneName:'short'});
const fmtd=new Intl.DateTimeFormat('en-GB',{timeZone:G.tz,weekday:'short',day:'2-digit',month:'short',hour:'2-digit',minute:'2-digit',timeZoneName:'short'});
const fo=new Intl.DateTimeFormat('en-US',{timeZone:G.tz,timeZoneName:'longOffset'});
function offset(t){const z=(fo.formatToParts(new Date(t*1000)).find(x=>x.type==='timeZoneName')||{}).value||'';
  const m=z.match(/([+-])(\\d+)(?::(\\d+))?/);return m?(m[1]==='-'?-1:1)*(+m[2]*3600+(+(m[3]||0))*60):0;}
function ticks(){const span=v1-v0,step=steps.find(s=>span/s<=12)||steps[steps.length-1];
  const a=G.lo+v0,off=offset(a);let t=(Math.floor((a+off)/step)+1)*step-off;const f=span>86400?fmtd:fmt;let h='';
  for(;t<=G.lo+v1;t+=step){h+=`<div class="tick" style="left:${(100*(t-a)/span).toFixed(3)}%">${f.format(new Date(t*1000)).replace(",","")}</div>`;}
  axis.innerHTML=h;}
function apply(){v0=Math.max(0,v0);v1=Math.min(G.span,v1);if(v1-v0<30){v1=v0+30;}
  const vb=`${v0} 0 ${v1-v0} `;plot.setAttribute('viewBox',vb+G.h);
  pools.forEach(p=>p.setAttribute('viewBox',vb+p.viewBox.baseVal.height));ticks();}
function zoom(k,at){const x=v0+(v1-v0)*at;v0=x-(x-v0)*k;v1=x+(v1-x)*k;apply();}
plot.addEventListener('wheel',e=>{e.preventDefault();const r=plot.getBoundingClientRect();zoom(e.deltaY<0?0.8:1.25,(e.clientX-r.left)/r.width);},{passive:false});
let drag=null;plot.addEventListener('mousedown',e=>{drag={x:e.clientX,a:v0,b:v1};});
window.addEventListener('mouseup',()=>{drag=null;});
window.addEventListener('mousemove',e=>{if(!drag)return;const d=(e.clientX-drag.x)/plot.getBoundingClientRect().width*(drag.b-drag.a);
  v0=drag.a-d;v1=drag.b-d;if(v0<0){v1-=v0;v0=0;}if(v1>G.span){v0-=v1-G.span;v1=G.span;}apply();});
document.getElementById('zin').onclick=()=>zoom(0.5,0.5);document.getElementById('zout').onclick=()=>zoom(2,0.5);
document.getElementById('fit').onclick=()=>{v0=0;v1=G.span;apply();};
})();
"""
