"""Times as a person reads them: in the zone of the workflow's windows (or ``--tz``), labelled.

Windows are written in a zone (``Europe/Amsterdam``); printing UTC beside them makes a window look an
hour off. One ``DisplayZone`` is chosen per command and every human line formats through it; JSON
output stays UTC ISO 8601.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["DisplayZone", "display_zone", "parse_tz", "workflow_zones"]


def parse_tz(name: str) -> ZoneInfo:
    """The IANA zone ``name``; ``ValueError`` with one line when it is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"--tz: unknown time zone {name!r} (an IANA name such as Europe/Amsterdam or UTC)"
        ) from None


def workflow_zones(workflow: Any) -> list[str]:
    """The zones a workflow's windows are written in, in order of first use (default zone first)."""
    cfg = getattr(workflow, "windows", None)
    if cfg is None:
        return []
    zones = [spec.timezone or cfg.timezone for specs in cfg.groups.values() for spec in specs]
    return list(dict.fromkeys(zones or [cfg.timezone]))


@dataclass(frozen=True)
class DisplayZone:
    """The zone times are shown in, its IANA name, and whether every time needs its zone label."""

    zone: tzinfo
    name: str
    mixed: bool = False  # the windows use several zones

    def local(self, when: datetime) -> datetime:
        """``when`` (naive = UTC) in this zone."""
        return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(self.zone)

    def fmt(self, when: datetime, *, seconds: bool = False, day: bool = True) -> str:
        """``2026-12-08 02:00 CET``: date (unless ``day`` is false), time, zone abbreviation."""
        t = self.local(when)
        clock = f"{t:%H:%M:%S}" if seconds else f"{t:%H:%M}"
        return f"{t:%Y-%m-%d} {clock} {t:%Z}" if day else f"{clock} {t:%Z}"

    def header(self) -> str:
        """The line that names the zone, for the top of a table or chart."""
        extra = " (the windows use several zones)" if self.mixed else ""
        return f"times in {self.name}{extra}"


def display_zone(tz: str | None = None, workflow: Any = None) -> DisplayZone:
    """``--tz`` if given, else the zone of the workflow's windows (the first one if several), else local."""
    if tz:
        return DisplayZone(parse_tz(tz), tz)
    zones = workflow_zones(workflow) if workflow is not None else []
    if zones:
        return DisplayZone(ZoneInfo(zones[0]), zones[0], mixed=len(zones) > 1)
    local = datetime.now().astimezone().tzinfo or UTC
    return DisplayZone(local, str(datetime.now(local).tzname() or "local time"))
