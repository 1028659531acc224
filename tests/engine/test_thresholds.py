"""Failure thresholds count like AWS MaxErrors: exceeded when failures go above the threshold."""

from __future__ import annotations

import pytest

from sysflow.engine.thresholds import allowed_failures, exceeded


@pytest.mark.parametrize(
    ("failures", "threshold", "total", "stop"),
    [
        (1, 0, 10, True),  # max_failures 0: the first failure stops
        (1, 1, 10, False),
        (2, 1, 10, True),
        (1, "10%", 10, False),  # 10 % of 10 = 1 tolerated
        (2, "10%", 10, True),
        (1, "10%", 9, True),  # 10 % of 9 rounds down to 0
        (5, None, 10, False),  # no threshold
        (3, "3", 10, False),
    ],
)
def test_threshold_table(failures: int, threshold: int | str | None, total: int, stop: bool) -> None:
    assert exceeded(failures, threshold, total) is stop


def test_allowed_failures_of_a_percentage_rounds_down() -> None:
    assert allowed_failures("25%", 10) == 2
    assert allowed_failures(None, 10) is None
