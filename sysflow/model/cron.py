"""The one import of the cron library, so that choosing another is a change here only.

croniter (maintained at pallets-eco since 6.0, after its original repository was flagged
unmaintained on PyPI) is chosen over cronsim because it evaluates AWS Systems Manager's forms that
patch windows use: ``TUE#2`` (the n-th weekday of the month) and ``L`` (the last day, or ``5L``
the last Friday), and iterates from any start. Callers import it lazily (inside functions), so
only workflows with cron windows pay for it.
"""

from __future__ import annotations

from croniter import CroniterBadDateError, croniter

__all__ = ["CroniterBadDateError", "croniter"]
