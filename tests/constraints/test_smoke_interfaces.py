"""The public interfaces import and answer the simplest questions."""

from __future__ import annotations

from datetime import UTC, datetime

from sysflow.clock import ManualClock
from sysflow.constraints import Admission, Calendar, Grant, Limits
from sysflow.planner.graph import Operation


def test_calendar_and_admission_basics() -> None:
    cal = Calendar.build({"groups": {"web": "Sunday 01:00-03:00"}}, start=datetime(2026, 11, 22, tzinfo=UTC))
    assert cal.is_open("web", datetime(2026, 11, 22, 2, tzinfo=UTC))
    assert not cal.is_open("web", datetime(2026, 11, 22, 3, tzinfo=UTC))
    op = Operation("t@h", "h", "t", 0, 0, "web", ("web",), None, None, "true", 1.0)
    limits = Limits.from_ops({"max_parallel_servers": 1}, [op])
    admission = Admission(limits, ManualClock())
    grant = admission.try_acquire(op)
    assert isinstance(grant, Grant)
    admission.release(grant)
