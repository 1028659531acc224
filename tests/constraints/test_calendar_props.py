"""Property: ``Calendar.is_open`` agrees with a brute-force, minute-by-minute check.

The brute force enumerates every local day with plain ``datetime`` + ``zoneinfo`` (fold=0, the
documented rule), independent of the calendar's vectorised zone tables and interval algebra.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from sysflow.constraints import Calendar
from sysflow.errors import ConstraintError
from sysflow.model.windows import DAY_NAMES, parse_weekly

ZONES = ["UTC", "Europe/Amsterdam", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu"]
# days around the 2026 transitions of those zones, and an ordinary one
STARTS = [date(2026, 3, 7), date(2026, 3, 27), date(2026, 4, 4), date(2026, 6, 10), date(2026, 10, 3),
          date(2026, 10, 24), date(2026, 10, 31)]  # fmt: skip

clock = st.tuples(st.integers(0, 23), st.sampled_from([0, 15, 30, 45, 59]))


@st.composite
def weekly(draw: st.DrawFn) -> str:
    days = draw(st.lists(st.sampled_from(DAY_NAMES), min_size=1, max_size=3, unique=True))
    (h1, m1), (h2, m2) = draw(clock), draw(clock)
    if (h1, m1) == (h2, m2):
        h2 = (h2 + 1) % 24
    return f"{','.join(d[:3].title() for d in days)} {h1:02d}:{m1:02d}-{h2:02d}:{m2:02d}"


def brute_intervals(spec: str, zone: str, first: date, last: date) -> list[tuple[datetime, datetime]]:
    rule = parse_weekly(spec)
    tz = ZoneInfo(zone)
    out = []
    day = first
    while day <= last:
        if day.weekday() in rule.days:
            midnight = datetime.combine(day, time())
            s = (midnight + timedelta(minutes=rule.start_minute)).replace(tzinfo=tz, fold=0)
            e = (midnight + timedelta(minutes=rule.end_minute)).replace(tzinfo=tz, fold=0)
            out.append((s.astimezone(UTC), e.astimezone(UTC)))
        day += timedelta(days=1)
    return out


@settings(max_examples=60, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    start=st.sampled_from(STARTS),
    specs=st.lists(weekly(), min_size=1, max_size=3),
    blackouts=st.lists(weekly(), max_size=2),
)
def test_is_open_matches_brute_force(zone: str, start: date, specs: list[str], blackouts: list[str]) -> None:
    lo = datetime.combine(start, time(), UTC)
    hi = lo + timedelta(days=3)
    config = {"timezone": zone, "groups": {"g": specs}, "blackouts": blackouts}
    try:
        cal = Calendar.build(config, start=lo, end=hi)
    except ConstraintError as exc:  # blackouts may swallow a spec: an error, and correct only then
        message = str(exc)
        assert "empty after blackouts" in message
        return
    first, last = start - timedelta(days=3), start + timedelta(days=4)
    windows = [w for s in specs for w in brute_intervals(s, zone, first, last)]
    frozen = [w for s in blackouts for w in brute_intervals(s, zone, first, last)]
    t = lo
    while t < hi:
        expected = any(s <= t < e for s, e in windows) and not any(s <= t < e for s, e in frozen)
        assert cal.is_open("g", t) == expected, (t, specs, blackouts)
        t += timedelta(minutes=1)
