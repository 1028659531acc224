"""Failure thresholds counted as AWS Systems Manager counts ``MaxErrors``.

A threshold is a count (``2``) or a percentage of the hosts concerned (``"10%"``, rounded down).
It is *exceeded* when failures go above it: with ``max_failures: 0`` the first failure stops the
rollout; with ``1`` the second does.
"""

from __future__ import annotations

import math

__all__ = ["allowed_failures", "exceeded"]


def allowed_failures(threshold: int | str | None, total: int) -> int | None:
    """How many failures are tolerated among ``total`` hosts; None means no limit."""
    if threshold is None:
        return None
    if isinstance(threshold, int):
        return threshold
    text = threshold.strip()
    if text.endswith("%"):
        return math.floor(total * float(text[:-1]) / 100.0)
    return int(text)


def exceeded(failures: int, threshold: int | str | None, total: int) -> bool:
    """True when ``failures`` among ``total`` hosts go beyond ``threshold``."""
    allowed = allowed_failures(threshold, total)
    return allowed is not None and failures > allowed
