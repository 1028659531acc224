"""Metric checks are validated where they are written."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sysflow.model.analysis import MetricCheck


def test_a_metric_check_needs_a_bound_and_a_consistent_range() -> None:
    assert MetricCheck(name="lag", command="replica-lag", max=5).count == 3
    with pytest.raises(ValidationError, match="needs min and/or max"):
        MetricCheck(name="lag", command="replica-lag")
    with pytest.raises(ValidationError, match=r"min 10\.0 is above max 5\.0"):
        MetricCheck(name="lag", command="replica-lag", min=10, max=5)
    with pytest.raises(ValidationError, match="interval"):
        MetricCheck(name="lag", command="replica-lag", max=5, interval="soon")
