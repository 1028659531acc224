"""Profiles: what users write, validation, and duration distributions that match their spec."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError
from scipy import stats

from sysflow.sim.profile import Empirical, Fixed, LogNormal, Rule, SimProfile

N = 4000


def _samples(dist: LogNormal | Fixed | Empirical, seed: str = "ks") -> list[float]:
    rng = random.Random(seed)
    return [dist.sample(rng) for _ in range(N)]


def test_lognormal_matches_its_distribution() -> None:
    dist = LogNormal(mean=120, sigma=0.5)
    values = _samples(dist)
    ref = stats.lognorm(s=0.5, scale=math.exp(dist.mu))
    result = stats.kstest(values, ref.cdf)
    assert result.pvalue > 0.01
    assert ref.mean() == pytest.approx(120)
    assert sum(values) / N == pytest.approx(120, rel=0.05)


def test_lognormal_is_not_a_different_one() -> None:
    values = _samples(LogNormal(mean=120, sigma=0.5))
    wrong = stats.lognorm(s=0.5, scale=math.exp(math.log(150) - 0.125))
    assert stats.kstest(values, wrong.cdf).pvalue < 1e-6


def test_empirical_resamples_the_recorded_values() -> None:
    recorded = [float(x) for x in range(10, 60, 5)]
    values = _samples(Empirical(samples=tuple(recorded)))
    assert set(values) == set(recorded)
    result = stats.chisquare([values.count(v) for v in recorded])
    assert result.pvalue > 0.01


def test_fixed_and_degenerate_lognormal() -> None:
    rng = random.Random(0)
    assert Fixed(seconds="2m").sample(rng) == 120.0
    assert Fixed(seconds=3).mean == 3.0
    assert LogNormal(mean=0, sigma=1).sample(rng) == 0.0
    assert LogNormal(mean=0, sigma=1).mu == -math.inf
    assert Empirical(samples=(1, 3)).mean == 2.0


def test_distribution_shorthands() -> None:
    p = SimProfile.model_validate(
        {
            "rules": [{"name": "x", "match": "foo", "duration": {"lognormal": {"mean": "2m", "sigma": 0.4}}}],
            "durations": {
                "x": "30s",
                "y": {"web": {"empirical": [1, 2]}, "*": 5, "db": {"fixed": "1m"}},
                "z": {"kind": "fixed", "seconds": 7},
            },
        }
    )
    assert p.rules[0].duration == LogNormal(mean=120, sigma=0.4)
    assert p.durations["x"] == {"*": Fixed(seconds=30)}
    assert p.durations["y"] == {
        "web": Empirical(samples=(1, 2)),
        "*": Fixed(seconds=5),
        "db": Fixed(seconds=60),
    }
    assert p.durations["z"] == {"*": Fixed(seconds=7)}


def test_partition_times_are_instants_or_offsets() -> None:
    p = SimProfile.model_validate(
        {
            "partitions": [
                {"datacenter": "ams", "start": 3600, "end": "2h"},
                {"hosts": "web*", "start": "2026-01-04T01:00:00Z", "end": "2026-01-04T02:00:00+00:00"},
            ]
        }
    )
    assert (p.partitions[0].start, p.partitions[0].end) == (3600.0, 7200.0)
    assert p.partitions[1].start == datetime(2026, 1, 4, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"rules": [{"name": "x", "match": "("}]}, "bad regex"),
        ({"partitions": [{"datacenter": "a", "segment": "b", "start": 0, "end": 1}]}, "exactly one"),
        ({"failure_probability": {"x": 1.5}}, "within 0..1"),
        ({"hosts": [{"hosts": "web*", "slow": 0}]}, "greater than 0"),
        ({"bogus": 1}, "Extra inputs"),
        ({"durations": {"x": {"lognormal": 5}}}, "validation error"),
        ({"durations": 5}, "valid dictionary"),
        ({"durations": {"x": {"lognormal": {"mean": 5, "sigma": -1}}}}, "greater than or equal"),
    ],
)
def test_invalid_profiles_are_refused(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SimProfile.model_validate(data)


def test_load_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "profile.yaml"
    path.write_text(
        """
durations:
  upgrade_packages:
    web: {lognormal: {mean: 3m, sigma: 0.3}}
    "*": 2m
failure_probability: {upgrade_packages: 0.05}
hosts:
  - {hosts: "web1", unreachable: refused}
  - {hosts: "db*", slow: 2.5}
  - {hosts: "web2", flap: {up: 10m, down: 1m}}
  - {hosts: "web3", hang: "apt-get"}
partitions:
  - {datacenter: fra, start: 1h, end: 1h30m}
rules:
  - {name: deploy, match: "^deploy ", duration: 45s, stdout: "deployed on {host}\\n"}
""",
        encoding="utf-8",
    )
    p = SimProfile.load(path)
    assert p.durations["upgrade_packages"]["web"] == LogNormal(mean=180, sigma=0.3)
    assert p.hosts[2].flap is not None
    assert p.hosts[2].flap.down == 60
    assert p.partitions[0].end == 5400
    assert p.rules == [
        Rule(name="deploy", match="^deploy ", duration=Fixed(seconds=45), stdout="deployed on {host}\n")
    ]
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    assert SimProfile.load(empty) == SimProfile()


def test_json_schema_is_published() -> None:
    schema = SimProfile.model_json_schema()
    assert "rules" in schema["properties"]


def test_the_documented_example_loads(tmp_path: Path) -> None:
    import sysflow.sim.profile as module

    doc = module.__doc__ or ""
    example = doc.split("::\n", 1)[1]
    path = tmp_path / "example.yaml"
    path.write_text(example, encoding="utf-8")
    p = SimProfile.load(path)
    assert p.rules[0].match == r"^deploy (?P<app>\w+)"
    assert p.rules[0].stdout == "{app} on {host}\n"
    assert p.durations["backup"] == {"*": Empirical(samples=(21, 25.5, 31, 40))}
    assert p.hosts[3].hang == "apt-get"
