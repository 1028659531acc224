"""What ``sysflow windows`` shows: each group's concrete windows over a span, after blackouts, and
every piece a blackout removed from them, named by its source (a holiday's name, an iCalendar
event's summary, an explicit date or interval, a recurring blackout's spec).

The windows are the :class:`~sysflow.constraints.calendar.Calendar`'s (the same intervals the
planner and the engine use); the removed pieces are where the same windows built without blackouts
meet each named blackout. Pure: configuration in, a :class:`WindowsView` out (an iCalendar URL is
the one read).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sysflow.clock import utc
from sysflow.constraints.calendar import Calendar, Window
from sysflow.constraints.specs import SpecExpander, SpecSource, load_windows
from sysflow.constraints.weekly import utc_datetime
from sysflow.model.windows import WindowsConfig, WindowSpec

__all__ = ["Blackout", "GroupView", "WindowsView", "day_span", "named_blackouts", "windows_view"]


@dataclass(frozen=True, slots=True)
class Blackout:
    """One concrete blackout interval: ``name`` says what it is (``King's Day``, ``Change
    freeze``, ``2026-12-24``), ``source`` which blackout spec produced it."""

    start: datetime
    end: datetime
    name: str
    source: str

    def to_dict(self) -> dict[str, str]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "name": self.name,
            "source": self.source,
        }


@dataclass(frozen=True, slots=True)
class GroupView:
    """A group's (or an intersection of groups') windows after blackouts, and what was removed."""

    group: str
    windows: tuple[Window, ...]
    removed: tuple[Blackout, ...]
    hosts: int | None = None  # with an inventory: how many hosts follow these windows


@dataclass(frozen=True, slots=True)
class WindowsView:
    """Every group's windows over ``[start, end)``, the blackouts met there, and the default."""

    timezone: str
    start: datetime
    end: datetime
    default: str
    groups: tuple[GroupView, ...]
    blackouts: tuple[Blackout, ...]
    other_hosts: int | None = None  # with an inventory: hosts in no windowed group (the default)


def _source(spec: WindowSpec) -> str:
    text = spec.describe()
    if spec.holidays is not None:
        text = f"holidays {spec.holidays}"
    elif spec.start is not None and spec.end is not None:
        midnight = datetime.min.time()
        whole = spec.start.timetz().replace(tzinfo=None) == spec.end.timetz().replace(tzinfo=None) == midnight
        text = "explicit date" if whole else "explicit interval"
    return f"{text} ({spec.reason})" if spec.reason else text


def _one_off_name(spec: WindowSpec, s: datetime, e: datetime, zone: str) -> str:
    from zoneinfo import ZoneInfo

    local_s, local_e = s.astimezone(ZoneInfo(zone)), e.astimezone(ZoneInfo(zone))
    whole = local_s.time() == local_e.time() == datetime.min.time()
    if whole and local_e.date() - local_s.date() == timedelta(days=1):
        return local_s.date().isoformat()
    if whole:
        return f"{local_s.date()} - {local_e.date() - timedelta(days=1)}"
    return spec.describe()


def _named(
    spec: WindowSpec, source: SpecSource, expander: SpecExpander, default_tz: str
) -> list[tuple[float, float, str]]:
    from sysflow.constraints.blackouts import named_holidays, named_ical

    zone = spec.timezone or default_tz
    tz = expander.zone(zone, source)
    if spec.holidays is not None:
        return named_holidays(spec.holidays, tz, expander.lo, expander.hi)
    if spec.ical is not None:
        return named_ical(spec.ical, tz, expander.lo, expander.hi)
    starts, ends = expander.expand(spec, source)
    found = []
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        name = spec.reason or spec.describe()
        if spec.start is not None:
            name = _one_off_name(spec, utc_datetime(s), utc_datetime(e), zone)
        found.append((float(s), float(e), name))
    return found


def named_blackouts(
    config: WindowsConfig | Mapping[str, Any], start: datetime, end: datetime, *, location: str | None = None
) -> list[Blackout]:
    """Every blackout interval overlapping ``[start, end)``, named, sorted by start."""
    cfg = load_windows(config, location=location)
    lo, hi = utc(start).timestamp(), utc(end).timestamp()
    expander = SpecExpander(lo, hi, default_tz=cfg.timezone, location=location)
    found = [
        Blackout(utc_datetime(s), utc_datetime(e), name, _source(spec))
        for i, spec in enumerate(cfg.blackouts)
        for s, e, name in _named(spec, SpecSource("blackouts", i, location), expander, cfg.timezone)
        if e > lo and s < hi
    ]
    return sorted(found, key=lambda b: (b.start, b.end, b.name))


def _removed(raw: Sequence[Window], blackouts: Sequence[Blackout]) -> tuple[Blackout, ...]:
    """Where each raw window meets each blackout: the piece removed, named by the blackout."""
    pieces = [
        Blackout(max(w.start, b.start), min(w.end, b.end), b.name, b.source)
        for w in raw
        for b in blackouts
        if b.start < w.end and w.start < b.end
    ]
    return tuple(sorted(set(pieces), key=lambda b: (b.start, b.end, b.name)))


def _host_keys(calendar: Calendar, host_groups: Mapping[str, Collection[str]]) -> dict[tuple[str, ...], int]:
    keys: dict[tuple[str, ...], int] = {}
    for groups in host_groups.values():
        key = calendar.host_key(groups)
        keys[key] = keys.get(key, 0) + 1
    return keys


def windows_view(
    config: WindowsConfig | Mapping[str, Any],
    start: datetime,
    end: datetime,
    *,
    host_groups: Mapping[str, Collection[str]] | None = None,
    known_groups: Collection[str] | None = None,
    location: str | None = None,
) -> WindowsView:
    """The windows of every group over ``[start, end)`` with the blackouts removed and named.

    ``host_groups`` (host → its groups, from an inventory) counts the hosts each group's windows
    apply to and adds the intersections that hosts in several windowed groups follow;
    ``known_groups`` (the inventory's) refuses windows of unknown groups. Raises
    ``ConstraintError`` as :meth:`Calendar.build` does.
    """
    cfg = load_windows(config, location=location)
    known = known_groups
    built = Calendar.build(cfg, start=start, end=end, known_groups=known, location=location)
    bare = Calendar.build(cfg.model_copy(update={"blackouts": []}), start=start, end=end, location=location)
    blackouts = named_blackouts(cfg, start, end, location=location)
    keys = _host_keys(built, host_groups) if host_groups is not None else {}
    views = []
    for key in sorted({(g,) for g in built.groups} | {k for k in keys if len(k) > 1}):
        windows = built.host_windows(key, start, end)
        removed = _removed(bare.host_windows(key, start, end), blackouts)
        count = None if host_groups is None else keys.get(key, 0)
        views.append(GroupView(" ∩ ".join(key), tuple(windows), removed, count))
    return WindowsView(
        cfg.timezone, utc(start), utc(end), cfg.default, tuple(views), tuple(blackouts),
        None if host_groups is None else keys.get((), 0),
    )  # fmt: skip


def day_span(first: date, days: int, zone: str) -> tuple[datetime, datetime]:
    """``[first 00:00, first + days 00:00)`` local to ``zone``, in UTC."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(zone)
    begin = datetime.combine(first, datetime.min.time(), tz)
    end = datetime.combine(first + timedelta(days=days), datetime.min.time(), tz)
    return utc(begin), utc(end)
