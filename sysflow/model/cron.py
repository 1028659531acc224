"""The one import of the cron library, so that choosing another is a change here only.

croniter (maintained at pallets-eco since 6.0, after its original repository was flagged
unmaintained on PyPI) is chosen over cronsim because it evaluates AWS Systems Manager's forms that
patch windows use: ``TUE#2`` (the n-th weekday of the month) and ``L`` (the last day of the month).
SSM and Quartz write the month's last Friday as ``5L`` or ``FRIL`` in the day-of-week field,
croniter as ``L5``: :func:`ssm_form` rewrites the former, and the :class:`croniter` exported here
applies it to every expression it parses or validates. Callers import it lazily (inside
functions), so only workflows with cron windows pay for it.
"""

from __future__ import annotations

import re
from typing import Any

from croniter import CroniterBadDateError
from croniter import croniter as _croniter

__all__ = ["CroniterBadDateError", "croniter", "ssm_form"]

_DAYS = {name: i for i, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
_LAST_WEEKDAY = re.compile(r"^(?P<day>[0-7]|[A-Za-z]{3})L$")


def _last(token: str) -> str:
    m = _LAST_WEEKDAY.match(token)
    if m is None:
        return token
    day = m["day"]
    number = _DAYS.get(day.lower()) if day.isalpha() else int(day) % 7
    return token if number is None else f"L{number}"


def ssm_form(expr: str) -> str:
    """``0 21 * * 5L`` / ``0 21 * * FRIL`` (the month's last Friday, as SSM and Quartz write it)
    → croniter's ``0 21 * * L5``; any other expression unchanged."""
    fields = expr.split()
    if len(fields) < 5 or "L" not in fields[4].upper():
        return expr
    fields[4] = ",".join(_last(token) for token in fields[4].split(","))
    return " ".join(fields)


class croniter(_croniter):  # croniter's own name, so callers need not change
    """croniter reading SSM's last-weekday form too (see :func:`ssm_form`)."""

    def __init__(self, expr_format: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(ssm_form(expr_format), *args, **kwargs)

    @classmethod
    def is_valid(cls, expression: str, *args: Any, **kwargs: Any) -> bool:
        return bool(_croniter.is_valid(ssm_form(expression), *args, **kwargs))
