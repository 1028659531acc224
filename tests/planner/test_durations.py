"""The duration model: priors, learning, robustness to outliers, quantiles, JSON."""

from __future__ import annotations

import json
import math
from statistics import NormalDist

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
    # the spread shrinks with consistent data: below the prior's (p90 = 1.56 x p50), then toward none
    assert m.estimate("upgrade", "web").p90 < 1.3 * 120.0
    m.learn(("upgrade", "web", 120.0) for _ in range(300))
    assert m.estimate("upgrade", "web").p90 < 1.1 * 120.0


def test_every_measurement_of_a_run_weighs_the_same_whatever_order_they_finish_in() -> None:
    """Short operations finish first and a wave's long tail last: the estimate is the same either way
    (a recency-weighted one would read every wave's tail as the new normal)."""
    durations = [30.0 + 2.0 * i for i in range(100)]
    short_first, long_first = DurationModel(), DurationModel()
    short_first.learn(("t", "g", d) for d in durations)
    long_first.learn(("t", "g", d) for d in reversed(durations))
    assert short_first.seconds("t", "g") == pytest.approx(long_first.seconds("t", "g"), rel=0.02)
    geometric = math.exp(sum(map(math.log, durations)) / len(durations))
    assert short_first.seconds("t", "g") == pytest.approx(geometric, rel=0.05)


def test_a_new_group_starts_from_the_pooled_estimate_as_a_prior_only() -> None:
    m = DurationModel({"t": 100.0})
    m.learn(("t", "fast", 100.0) for _ in range(1000))
    m.learn(("t", "slow", 200.0) for _ in range(50))
    assert m.seconds("t", "slow") == pytest.approx(200.0, rel=0.05)  # not dragged by 1,000 fast ones


def test_history_weighs_little_against_the_run_at_hand() -> None:
    history = DurationModel({"t": 60.0})
    history.learn(("t", "g", 60.0) for _ in range(5000))
    run = history.for_run()
    run.learn(("t", "g", 120.0) for _ in range(100))  # the fleet got slower since
    assert run.seconds("t", "g") > 100.0
    assert history.seconds("t", "g") == pytest.approx(60.0, rel=0.01)  # the saved model is untouched


def test_a_run_caps_historys_weight_but_not_what_it_was_learned_from() -> None:
    history = DurationModel({"t": 60.0})
    history.learn(("t", "g", 60.0 * (1.2 if i % 2 else 0.8)) for i in range(90))
    learned = history.estimate("t", "g")
    assert learned.evidence == pytest.approx(91.0)  # the prior and 90 hosts, equally weighted
    run = history.for_run()
    assert run.estimate("t", "g").n == 20.0  # a learning rate: the run at hand moves it fast
    assert run.estimate("t", "g").evidence == pytest.approx(91.0)  # what the forecast is sure of
    run.observe("t", "g", 60.0)
    after = run.estimate("t", "g")  # 20/21 on the history, 1/21 on the new one: 1 / sum(w**2)
    assert after.evidence == pytest.approx(1 / ((20 / 21) ** 2 / 91.0 + (1 / 21) ** 2))
    assert after.evidence < learned.evidence + 1  # weighted unevenly, the run is worth less than 92


def test_an_estimate_saved_before_it_kept_its_evidence_loads_with_n_for_it() -> None:
    m = DurationModel({"t": 5.0})
    m.learn(("t", "g", 7.0) for _ in range(30))
    back = DurationModel.from_json(m.to_json())
    assert back.estimate("t", "g") == m.estimate("t", "g")
    old = json.loads(m.to_json())
    for e in old["estimates"]:
        del e["evidence"]
    legacy = DurationModel.from_json(json.dumps(old)).estimate("t", "g")
    assert legacy.evidence == legacy.n == m.estimate("t", "g").n


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


def test_a_heavy_tailed_tasks_spread_is_learned_from_the_prior_on() -> None:
    """A run's observations come wave by wave, and in a wave the short operations finish first:
    the first ones a model sees are the fastest. An estimate that still rests on its prior's guess of
    the spread (0.35) cannot tell an outlier, and clipping those at 3 x 0.35 kept the spread learned
    for a task whose log duration has sigma 1.0 at 0.96 for good (every clipped observation kept the
    spread that clipped the next one small). Observations are clipped where the estimate, with its
    own uncertainty, puts a 3-sigma tail: wide while it rests on a few, 3 sigma once on hundreds."""
    z = [NormalDist().inv_cdf((i + 0.5) / 120) for i in range(120)]
    spread = math.sqrt(sum(x * x for x in z) / len(z))  # of the observations' logs (mean 0)
    for k in (7, 13, 37):  # which hosts fall in which wave
        xs = [240.0 * math.exp(z[(i * k) % 120]) for i in range(120)]
        m = DurationModel({"upgrade": 240.0})
        m.learn(("upgrade", "web", x) for x in sorted(xs[:2]) + sorted(xs[2:26]) + sorted(xs[26:]))
        e = m.estimate("upgrade", "web")
        assert e.sigma == pytest.approx(spread, abs=0.015), k
        assert e.p50 == pytest.approx(240.0, rel=0.05), k
    m = DurationModel({"t": 60.0})
    m.learn(("t", "g", 60.0 * math.exp(0.3 * z[(i * 37) % 120])) for i in range(120))
    before = m.estimate("t", "g")
    m.observe("t", "g", 60.0 * 1000)  # a hung command is still clipped
    assert m.estimate("t", "g").sigma < before.sigma * 1.1
