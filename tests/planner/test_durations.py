"""The duration model: priors, learning, robustness to outliers, quantiles, JSON."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sysflow.planner.durations import DEFAULT_SECONDS, DurationModel, Estimate


def test_prior_then_default() -> None:
    m = DurationModel({"upgrade": 300.0})
    assert m.seconds("upgrade", "web") == pytest.approx(300.0)
    assert m.seconds("other", "web") == pytest.approx(DEFAULT_SECONDS)
    assert m.seconds("upgrade", "web", 0.9) > 300.0
    m.set_prior("other", 10.0)
    assert m.estimate("other", "db").p50 == pytest.approx(10.0)


def test_learns_per_group_and_pools_for_unseen_groups() -> None:
    m = DurationModel({"upgrade": 300.0})
    m.learn(("upgrade", "web", 120.0) for _ in range(30))
    assert m.seconds("upgrade", "web") == pytest.approx(120.0, rel=0.05)
    assert m.seconds("upgrade", "db") == pytest.approx(120.0, rel=0.05)  # pooled over groups
    assert m.estimate("upgrade", "web").p90 < 140.0  # the spread shrinks with consistent data


def test_one_outlier_moves_the_estimate_by_a_bounded_factor() -> None:
    m = DurationModel({"t": 60.0})
    m.learn(("t", "g", 60.0) for _ in range(50))
    before = m.seconds("t", "g")
    m.observe("t", "g", 60.0 * 1000)  # a hung command
    assert m.seconds("t", "g") < before * 1.5


def test_json_round_trip_and_rejects_other_data() -> None:
    m = DurationModel({"t": 5.0})
    m.observe("t", "g", 7.0)
    back = DurationModel.from_json(m.to_json())
    assert back.seconds("t", "g", 0.9) == pytest.approx(m.seconds("t", "g", 0.9))
    assert back.priors == {"t": 5.0}
    with pytest.raises(ValueError):
        DurationModel.from_json('{"version": 2}')


def test_quantile_bounds() -> None:
    e = Estimate(math.log(10.0), 0.5, 1.0)
    with pytest.raises(ValueError):
        e.quantile(1.0)
    assert e.quantile(0.1) < e.p50 < e.p90


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.001, 1e6), min_size=1, max_size=40))
def test_estimates_stay_positive_and_ordered(samples: list[float]) -> None:
    m = DurationModel()
    m.learn(("t", "g", s) for s in samples)
    e = m.estimate("t", "g")
    assert 0 < e.quantile(0.5) <= e.quantile(0.9)
    assert e.sigma > 0
