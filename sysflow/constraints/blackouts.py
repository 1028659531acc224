"""Blackouts from outside sources: public holidays (the ``holidays`` package) and iCalendar files
or URLs (``icalendar``, recurring events expanded by ``recurring_ical_events``), as UTC intervals
over a horizon. A holiday is its whole local day in the spec's zone; an all-day iCalendar event
covers its local days; a timed event its own interval. The ``named_*`` forms keep each
interval's name (the holiday's, the event's ``SUMMARY``) for ``sysflow windows``."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from sysflow.constraints.weekly import DAY, LocalTime, local_seconds, utc_datetime

if TYPE_CHECKING:
    from sysflow.constraints.intervals import FloatArray

__all__ = ["expand_holidays", "expand_ical", "holiday_dates", "named_holidays", "named_ical"]

ICAL_TIMEOUT = 30.0  # seconds to fetch an iCalendar URL


def _holiday_table(where: str, first: date, last: date) -> list[tuple[date, str]]:
    import holidays

    country, _, subdiv = where.partition("-")
    years = range(first.year, last.year + 1)
    table = holidays.country_holidays(country.upper(), subdiv=subdiv.upper() or None, years=years)
    return sorted((d, str(name)) for d, name in table.items() if first <= d <= last)


def holiday_dates(where: str, first: date, last: date) -> list[date]:
    """Public holidays of ``where`` (``NL``, ``US-CA``: country, optional subdivision) in
    ``[first, last]``."""
    return [d for d, _ in _holiday_table(where, first, last)]


def _days(tz: LocalTime, days: list[date]) -> tuple[FloatArray, FloatArray]:
    import numpy as np

    local = np.asarray([local_seconds(datetime.combine(d, time())) for d in days], dtype=np.float64)
    return tz.to_utc(local), tz.to_utc(local + DAY)


def expand_holidays(where: str, tz: LocalTime, lo: float, hi: float) -> tuple[FloatArray, FloatArray]:
    """Each public holiday overlapping ``[lo, hi)`` as its whole local day, in UTC seconds."""
    first = utc_datetime(lo - DAY).date()
    last = utc_datetime(hi + DAY).date()
    return _days(tz, holiday_dates(where, first, last))


def named_holidays(where: str, tz: LocalTime, lo: float, hi: float) -> list[tuple[float, float, str]]:
    """(start, end, name) of each public holiday overlapping ``[lo, hi)``, as in
    :func:`expand_holidays` (the name as the ``holidays`` package gives it, e.g. ``King's Day``)."""
    table = _holiday_table(where, utc_datetime(lo - DAY).date(), utc_datetime(hi + DAY).date())
    starts, ends = _days(tz, [d for d, _ in table])
    return [
        (float(s), float(e), name)
        for s, e, (_, name) in zip(starts, ends, table, strict=True)
        if e > lo and s < hi
    ]


def _read(source: str) -> bytes:
    if source.startswith(("http://", "https://")):
        import urllib.request

        with urllib.request.urlopen(source, timeout=ICAL_TIMEOUT) as response:
            data: bytes = response.read()
            return data
    with open(source, "rb") as handle:
        return handle.read()


def _instant(value: Any, tz: LocalTime) -> float:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return tz.one_to_utc(local_seconds(value))
        return value.astimezone(UTC).timestamp()
    return tz.one_to_utc(local_seconds(datetime.combine(value, time())))


def named_ical(source: str, tz: LocalTime, lo: float, hi: float) -> list[tuple[float, float, str]]:
    """(start, end, summary) of every event (recurrences expanded) of the iCalendar at ``source``
    overlapping ``[lo, hi)``; an event without a ``SUMMARY`` is named by its ``UID``."""
    import icalendar
    import recurring_ical_events  # type: ignore[import-untyped]

    calendar = icalendar.Calendar.from_ical(_read(source))
    start, end = utc_datetime(lo - DAY), utc_datetime(hi + DAY)
    found = []
    for event in recurring_ical_events.of(calendar).between(start, end):
        begin = event["DTSTART"].dt
        finish = event["DTEND"].dt if "DTEND" in event else begin + timedelta(days=1)
        s, e = _instant(begin, tz), _instant(finish, tz)
        if e > lo and s < hi:
            found.append((s, e, str(event.get("SUMMARY") or event.get("UID") or "event")))
    return sorted(found)


def expand_ical(source: str, tz: LocalTime, lo: float, hi: float) -> tuple[FloatArray, FloatArray]:
    """Every event (recurrences expanded) of the iCalendar at ``source`` overlapping ``[lo, hi)``."""
    import numpy as np

    events = named_ical(source, tz, lo, hi)
    starts = np.asarray([s for s, _, _ in events], dtype=np.float64)
    return starts, np.asarray([e for _, e, _ in events], dtype=np.float64)
