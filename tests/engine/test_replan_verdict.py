"""Which violations reject a re-plan: only what the re-planned part breaks. A started host's own
violations (measured gaps, overruns) are facts, and so is a shared-limit violation that the started
hosts alone already cause; a new shared-limit violation rejects the plan."""

from __future__ import annotations

from typing import Any

from sysflow.engine.adaptive import _new_violations
from sysflow.planner.check import Violation, ViolationKind
from sysflow.planner.solution import Assignment


class _Plan:
    problem = None

    def __init__(self) -> None:
        self.assignment = Assignment({"done1": (0,), "new1": (10,)}, {})


def _checker(full: list[Violation], fixed_only: list[Violation]) -> Any:
    """A check that finds ``full`` in the whole plan and ``fixed_only`` when only started hosts remain."""

    def check(problem: object, plan: object, *, skip_hosts: Any = (), after: Any = None) -> list[Violation]:
        a = plan if isinstance(plan, Assignment) else plan.assignment
        found = fixed_only if "new1" not in a.starts else full
        return [v for v in found if v.host is None or v.host not in skip_hosts]  # as check() does

    return check


GAP = Violation(ViolationKind.ORDER, "update starts at 252, previous ends 203", "done1")
OLD_POOL = Violation(ViolationKind.CAPACITY, "pool 'global' over capacity at 40")
NEW_POOL = Violation(ViolationKind.CAPACITY, "pool 'global' over capacity at 90")
NEW_WINDOW = Violation(ViolationKind.WINDOW, "starts after the cutoff", "new1")


def test_a_started_hosts_own_violations_never_reject_a_replan() -> None:
    assert _new_violations(_checker([GAP], []), _Plan(), {"done1"}) == []  # type: ignore[arg-type]


def test_a_shared_limit_the_started_hosts_already_break_is_not_the_replans() -> None:
    check = _checker([GAP, OLD_POOL], [OLD_POOL])
    assert _new_violations(check, _Plan(), {"done1"}) == []  # type: ignore[arg-type]


def test_new_violations_of_the_replanned_part_reject_it() -> None:
    check = _checker([GAP, OLD_POOL, NEW_POOL, NEW_WINDOW], [OLD_POOL])
    assert _new_violations(check, _Plan(), {"done1"}) == [NEW_POOL, NEW_WINDOW]  # type: ignore[arg-type]
