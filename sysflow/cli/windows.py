"""``sysflow windows FILE``: each group's concrete maintenance windows over a span of days, with
the blackouts (public holidays, iCalendar freezes, dates) removed, and every removed piece named
by its source. ``sysflow patch windows`` is this same command.

FILE is a workflow (its ``windows:`` section is read) or a file holding only that section. With
``-i INVENTORY`` the groups are checked against the inventory, each line says how many hosts follow
those windows, and hosts in several windowed groups get their intersection.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo

import typer

from sysflow.cli.inputs import TzOpt

if TYPE_CHECKING:
    from sysflow.constraints.calendar import Window
    from sysflow.constraints.window_view import Blackout, GroupView, WindowsView

__all__ = ["DEFAULT_DAYS", "render_text", "view_json", "windows_command"]

DEFAULT_DAYS = 35  # five weeks: every weekly window at least four times, a monthly one at least once


def _span(start: datetime, end: datetime, zone: ZoneInfo) -> str:
    s, e = start.astimezone(zone), end.astimezone(zone)
    tail = f"{e:%H:%M}" if e.date() == s.date() else f"{e:%a %Y-%m-%d %H:%M}"
    return f"{s:%a %Y-%m-%d %H:%M} - {tail}"


def _lines_of(view: GroupView, zone: ZoneInfo) -> list[str]:
    """A group's windows and removed pieces, in time order."""
    rows: list[tuple[datetime, int, str]] = [
        (w.start, 0, f"  {_span(w.start, w.end, zone)}") for w in view.windows
    ]
    rows += [
        (b.start, 1, f"  removed {_span(b.start, b.end, zone)}  {b.name}  [{b.source}]") for b in view.removed
    ]
    return [text for _, _, text in sorted(rows)]


def render_text(view: WindowsView, zone: ZoneInfo) -> list[str]:
    """The human form: a header, each group's windows with what blackouts removed, the default
    and every blackout met in the span."""
    last = (view.end - timedelta(seconds=1)).astimezone(zone)
    first = view.start.astimezone(zone)
    lines = [f"windows {first:%Y-%m-%d} .. {last:%Y-%m-%d} ({zone.key}), blackouts removed"]
    for group in view.groups:
        count = "" if group.hosts is None else f" ({group.hosts} host{'s' if group.hosts != 1 else ''})"
        lines.append(f"{group.group}{count}:")
        lines.extend(_lines_of(group, zone) or ["  (no window in this span)"])
    if view.other_hosts is None or view.other_hosts:
        who = "other hosts" if view.other_hosts is None else f"other hosts ({view.other_hosts})"
        rule = "always open outside blackouts" if view.default == "always" else "never open"
        lines.append(f"{who}: {rule} (windows.default: {view.default})")
    lines.append("blackouts:" if view.blackouts else "blackouts: none in this span")
    lines += [f"  {_span(b.start, b.end, zone)}  {b.name}  [{b.source}]" for b in view.blackouts]
    return lines


def _window_dict(w: Window, zone: ZoneInfo) -> dict[str, str]:
    return {
        "start": w.start.astimezone(zone).isoformat(),
        "end": w.end.astimezone(zone).isoformat(),
        "cutoff_at": w.cutoff_at.astimezone(zone).isoformat(),
    }


def _blackout_dict(b: Blackout, zone: ZoneInfo) -> dict[str, str]:
    return b.to_dict() | {
        "start": b.start.astimezone(zone).isoformat(),
        "end": b.end.astimezone(zone).isoformat(),
    }


def view_json(view: WindowsView, zone: ZoneInfo) -> dict[str, Any]:
    """The machine form (times ISO 8601 in ``zone``)."""
    return {
        "timezone": zone.key,
        "windows_timezone": view.timezone,
        "start": view.start.astimezone(zone).isoformat(),
        "end": view.end.astimezone(zone).isoformat(),
        "default": view.default,
        "other_hosts": view.other_hosts,
        "groups": [
            {
                "group": g.group,
                "hosts": g.hosts,
                "windows": [_window_dict(w, zone) for w in g.windows],
                "removed": [_blackout_dict(b, zone) for b in g.removed],
            }
            for g in view.groups
        ],
        "blackouts": [_blackout_dict(b, zone) for b in view.blackouts],
    }


def _build(
    path: Path, inventory: Path | None, first: str | None, days: int, tz: str | None
) -> tuple[WindowsView, ZoneInfo]:
    from sysflow.cli.exec import _windows_file
    from sysflow.cli.timefmt import parse_tz
    from sysflow.constraints.specs import load_windows
    from sysflow.constraints.window_view import day_span, windows_view

    if days < 1:
        raise ValueError(f"--days must be at least 1 (got {days})")
    config = load_windows(_windows_file(path), location=str(path))
    zone = parse_tz(tz or config.timezone)
    day = date.fromisoformat(first) if first else datetime.now(UTC).astimezone(zone).date()
    start, end = day_span(day, days, zone.key)
    if inventory is None:
        return windows_view(config, start, end, location=str(path)), zone
    from sysflow.model.inventory import Inventory

    inv = Inventory.load(inventory)
    host_groups = {h.name: inv.host_groups(h.name) for h in inv}
    view = windows_view(
        config, start, end, host_groups=host_groups, known_groups=inv.group_names(), location=str(path)
    )
    return view, zone


def windows_command(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="WORKFLOW_OR_WINDOWS_FILE",
            help="A workflow (its windows: section) or a file holding a windows: section.",
        ),
    ],
    inventory: Annotated[
        Path | None,
        typer.Option("--inventory", "-i", help="Check groups against it; count hosts; show intersections."),
    ] = None,
    first: Annotated[
        str | None, typer.Option("--from", "--start", help="First day (YYYY-MM-DD; default today).")
    ] = None,
    days: Annotated[int, typer.Option("--days", help="How many days to show.")] = DEFAULT_DAYS,
    tz: TzOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """The concrete windows per group, blackouts removed; each removed interval is named by its
    source (holiday name, iCalendar event summary, explicit date)."""
    from sysflow.cli.commands import guard

    with guard("windows"):
        view, zone = _build(file, inventory, first, days, tz)
        if json_out:
            typer.echo(json.dumps(view_json(view, zone), indent=2))
        else:
            typer.echo("\n".join(render_text(view, zone)))
