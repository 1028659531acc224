"""Maintenance windows and calendars, capacity pools, rate limits, disruption budgets, admission.

One definition, two uses: the planner encodes these objects as CP-SAT constraints, the engine
enforces the same objects at run time.

Public objects:

* :class:`Calendar` (``calendar``): a ``WindowsConfig`` expanded into concrete UTC windows per
  group over a horizon; ``is_open``, ``can_start``, ``current``, ``next_open``, ``remaining``,
  ``windows``; per host (intersection of its windowed groups) ``host_windows``, ``host_is_open``...
* :class:`Window`, :class:`Remaining`: a concrete window (``start``, ``end``, ``cutoff_at``,
  ``label``) and the time left in one.
* :class:`Limits` (``capacity``): a ``ParallelismConfig`` as concrete instances
  (:class:`PoolInstance`, :class:`RateInstance`, :class:`BudgetInstance`, :class:`MinSpacing`) with
  per-operation lookups ``usage``, ``rate_keys``, ``budget_keys``, ``spacing``; :class:`OpLike` is
  what they read of an operation.
* :class:`Admission` (``admission``): runtime admission over a ``Limits``: ``try_acquire`` →
  :class:`Grant` | :class:`Denied`, ``acquire``, ``release``, ``host_done``, ``set_capacity``.
* :func:`load_windows`, :func:`parse_weekly` / :class:`WeeklyRule`: specs from user data.

Malformed specs raise :class:`sysflow.errors.ConstraintError` naming the spec and its source.
"""

from sysflow.constraints.admission import Admission, Denied, Grant
from sysflow.constraints.calendar import DEFAULT_HORIZON, Calendar, Remaining, Window
from sysflow.constraints.capacity import (
    BudgetInstance,
    LimitKind,
    Limits,
    MinSpacing,
    OpLike,
    OpNeeds,
    PoolInstance,
    RateInstance,
)
from sysflow.constraints.specs import load_windows
from sysflow.model.windows import WeeklyRule, parse_weekly

__all__ = [
    "DEFAULT_HORIZON",
    "Admission",
    "BudgetInstance",
    "Calendar",
    "Denied",
    "Grant",
    "LimitKind",
    "Limits",
    "MinSpacing",
    "OpLike",
    "OpNeeds",
    "PoolInstance",
    "RateInstance",
    "Remaining",
    "WeeklyRule",
    "Window",
    "load_windows",
    "parse_weekly",
]
