"""``sysflow schedule export --systemd DIR``: a ``.service`` and ``.timer`` pair per schedule.

For administrators who prefer systemd timers to a resident ``sysflow scheduler``. The timer only
*wakes* the service; the service runs ``sysflow scheduler --once --schedule NAME``, which computes
the schedule's real occurrences (blackouts, DST, n-th window of the month), claims them in the run
store and applies the missed-run policy exactly as the resident scheduler does. So a timer that
fires when nothing is due does nothing, and the timer and a resident scheduler can even coexist.
One difference remains: systemd skips a cron wall time inside a spring-forward gap (the resident
scheduler fires just after the gap, as the constraints layer reads such times); the next timer then
finds that occurrence missed and applies the missed-run policy.

``OnCalendar=`` is written in the schedule's time zone (cron: the schedule's zone; windows: each
window spec's zone): weekly window specs become ``Sun *-*-* 01:00:00 Europe/Amsterdam``, the n-th
weekday of the month ``Sun *-*-01..07 ...`` (first) ... ``Sun *-*~07/1 ...`` (last), cron fields
their systemd equivalents. ``Persistent=true`` for ``catch_up`` and ``run_next_window`` (systemd
fires a missed timer at boot, and the service applies the policy), ``false`` for ``skip``. With
``run_next_window`` the timer also fires at every window of the group, so a postponed run starts.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path

from sysflow.errors import ConstraintError
from sysflow.model.windows import DAY_NAMES, WindowsConfig, WindowSpec
from sysflow.schedule.model import MissedPolicy, Schedule
from sysflow.schedule.recurrence import Recurrence

__all__ = ["cron_to_calendar", "export_systemd", "on_calendar", "unit_files", "unit_name"]

_SYSTEMD_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_NTH_DAYS = {
    "first": "-*-01..07",
    "second": "-*-08..14",
    "third": "-*-15..21",
    "fourth": "-*-22..28",
    "last": "-*~07/1",
}
_CRON_DOW = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
_CRON_ATOM = re.compile(r"^(\*|\w+)(?:-(\w+))?(?:/(\d+))?$")


def unit_name(schedule: str) -> str:
    return f"sysflow-schedule-{schedule}"


def export_systemd(
    schedules: Sequence[Schedule], directory: str | Path, *, state: str | Path, command: Sequence[str]
) -> list[Path]:
    """Write ``<unit>.service`` and ``<unit>.timer`` for each schedule into ``directory``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for s in schedules:
        for filename, text in unit_files(s, state=state, command=command).items():
            path = out / filename
            path.write_text(text)
            written.append(path)
    return written


def unit_files(schedule: Schedule, *, state: str | Path, command: Sequence[str]) -> dict[str, str]:
    """The service and timer text of one schedule, by file name."""
    from sysflow.model.workflow import MaintenanceWorkflow

    windows = MaintenanceWorkflow.from_json(schedule.workflow_json).windows
    name, rec = unit_name(schedule.name), schedule.spec.recurrence
    argv = [
        *command,
        "scheduler",
        "--once",
        "--schedule",
        schedule.name,
        "--state",
        str(Path(state).resolve()),
    ]
    service = (
        "[Unit]\n"
        f"Description=sysflow schedule {schedule.name}: {rec.describe()}\n"
        "Wants=network-online.target\nAfter=network-online.target\n\n"
        "[Service]\nType=oneshot\n"
        f"WorkingDirectory={Path(state).resolve().parent}\n"
        f"ExecStart={shlex.join(argv)}\n"
    )
    persistent = "false" if schedule.spec.missed is MissedPolicy.SKIP else "true"
    calendars = on_calendar(rec, windows, every_window=schedule.spec.missed is MissedPolicy.RUN_NEXT_WINDOW)
    timer = (
        "[Unit]\n"
        f"Description=Timer of sysflow schedule {schedule.name}: {rec.describe()}\n\n"
        "[Timer]\n"
        + "".join(f"OnCalendar={c}\n" for c in calendars)
        + f"Persistent={persistent}\nAccuracySec=1s\nUnit={name}.service\n\n"
        "[Install]\nWantedBy=timers.target\n"
    )
    return {f"{name}.service": service, f"{name}.timer": timer}


def on_calendar(rec: Recurrence, windows: WindowsConfig, *, every_window: bool = False) -> list[str]:
    """``OnCalendar=`` expressions that fire at (at least) every occurrence of ``rec``."""
    if rec.cron is not None:
        return [cron_to_calendar(rec.cron, rec.timezone)]
    group = str(rec.group)
    specs = windows.groups.get(group)
    if not specs:
        raise ConstraintError(f"group {group!r} has no windows to export")
    out: list[str] = []
    for spec in specs:
        tz = spec.timezone or windows.timezone
        if rec.nth is not None:
            out.extend(_spec_calendar(spec, tz, nth=(rec.nth, str(rec.weekday))))
        if rec.nth is None or every_window:
            out.extend(_spec_calendar(spec, tz))
    return sorted(set(out), key=out.index)


def _spec_calendar(spec: WindowSpec, tz: str, *, nth: tuple[str, str] | None = None) -> list[str]:
    rule = spec.rule
    if rule is not None:
        days = sorted(rule.days)
        dom = "-*-*"
        if nth is not None:
            wanted = next(i for i, d in enumerate(DAY_NAMES) if nth[1].lower() in (d, d[:3]))
            if wanted not in days:
                return []
            days, dom = [wanted], _NTH_DAYS[nth[0]]
        hh, mm = divmod(rule.start_minute, 60)
        return [f"{','.join(_SYSTEMD_DAYS[d] for d in days)} *{dom} {hh:02d}:{mm:02d}:00 {tz}"]
    if spec.cron is not None:
        return [cron_to_calendar(spec.cron, tz)]
    if spec.start is not None:
        start = spec.start
        zone = tz if start.tzinfo is None else "UTC"
        when = start if start.tzinfo is None else start.astimezone(UTC)
        return [f"{when:%Y-%m-%d %H:%M:%S} {zone}"]
    return []  # pragma: no cover - a spec is one of the three forms


def cron_to_calendar(expr: str, tz: str) -> str:
    """A 5-field cron expression (or 6, seconds last) as a systemd calendar expression in ``tz``."""
    fields = expr.split()
    if len(fields) not in (5, 6):
        raise ConstraintError(f"cron {expr!r}: expected 5 or 6 fields")
    minute, hour, dom, month, dow = fields[:5]
    second = fields[5] if len(fields) == 6 else "0"
    if dom != "*" and dow != "*":
        raise ConstraintError(
            f"cron {expr!r}: day-of-month OR day-of-week has no systemd equivalent; use two schedules"
        )
    day_part = "" if dow == "*" else ",".join(_dow(a, expr) for a in dow.split(",")) + " "
    return (
        f"{day_part}*-{_field(month, expr)}-{_field(dom, expr)} "
        f"{_field(hour, expr)}:{_field(minute, expr)}:{_field(second, expr)} {tz}"
    )


def _field(text: str, expr: str) -> str:
    return ",".join(_atom(a, expr) for a in text.split(","))


def _atom(atom: str, expr: str) -> str:
    m = _CRON_ATOM.match(atom)
    if m is None or not all(p is None or p.isdigit() or p == "*" for p in m.groups()):
        raise ConstraintError(f"cron {expr!r}: {atom!r} has no systemd equivalent")
    lo, hi, step = m.groups()
    if lo == "*":
        return "*" if step is None else f"0/{step}" if hi is None else atom
    if hi is not None and step is not None:
        raise ConstraintError(f"cron {expr!r}: a stepped range {atom!r} has no systemd equivalent")
    base = lo if hi is None else f"{lo}..{hi}"
    return base if step is None else f"{base}/{step}"


def _dow(atom: str, expr: str) -> str:
    parts = atom.split("-")
    if len(parts) > 2 or "/" in atom:
        raise ConstraintError(f"cron {expr!r}: day of week {atom!r} has no systemd equivalent")
    days = [(_cron_day(p, expr) - 1) % 7 for p in parts]  # systemd order: Monday is 0
    if len(days) == 1:
        return _SYSTEMD_DAYS[days[0]]
    lo, hi = _cron_day(parts[0], expr), int(parts[1]) if parts[1].isdigit() else _cron_day(parts[1], expr)
    if days[0] <= days[1]:
        return f"{_SYSTEMD_DAYS[days[0]]}..{_SYSTEMD_DAYS[days[1]]}"
    return ",".join(_SYSTEMD_DAYS[(d - 1) % 7] for d in range(lo, hi + 1))  # wraps past Sunday


def _cron_day(text: str, expr: str) -> int:
    key = text.strip().lower()
    if key.isalpha() and key[:3] in _CRON_DOW:
        return _CRON_DOW[key[:3]]
    if key.isdigit() and int(key) <= 7:
        return int(key) % 7
    raise ConstraintError(f"cron {expr!r}: unknown day of week {text!r}")
