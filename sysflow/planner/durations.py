"""How long a task takes on a group's hosts: priors, history and the running run, with quantiles.

Estimates are kept per task × group as a log-normal: the mean and variance of ``log(seconds)``. Log
space makes one 10× outlier move the estimate by a bounded factor, and each observation is also
clipped before it is folded in, so a hung command does not wreck the forecast: where the current
estimate, with the uncertainty of its own spread, puts the tail a normal has beyond ``CLIP_SIGMAS``
(a Student-t's; about ``CLIP_SIGMAS`` sigma once it rests on hundreds of observations, nothing
clipped while it rests on fewer than five, whose spread is still mostly the prior's guess). A prior (``expected_duration`` from the workflow, or
``DEFAULT_SECONDS``) counts as ``PRIOR_WEIGHT`` observations.

Within a run every observation weighs the same (a running mean, not a recency-weighted one): short
operations finish first and a wave's long tail last, so weighting the latest finishers more would
read every wave boundary as "slower than planned". History (the model saved after earlier runs,
:meth:`DurationModel.for_run`) counts as at most ``HISTORY_WEIGHT`` observations when a run starts,
so a fleet that changed since is learned within the run. That cap is a learning rate, not what was
seen: each estimate also keeps its ``evidence``, the effective number of observations behind its
median (``1 / sum of squared weights`` of the running mean, which the cap does not shrink), and the
forecast's uncertainty about the median and spread comes from that. The model serialises to JSON.

It also counts attempts and failed attempts per task × group, so a forecast can replay retries and
failures at the rate the fleet showed (a Beta(0.05, 19.95) prior: 0.25 % until something is observed,
worth 20 attempts, so the ~100 attempts of a small fleet's run outweigh it; a prior worth 200 attempts
held a fleet's 3 % at about 1 % and the forecast's finish early).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from statistics import NormalDist
from typing import Any

__all__ = ["DEFAULT_SECONDS", "DurationModel", "Estimate"]

DEFAULT_SECONDS = 60.0  # a task with neither prior nor history: one minute
PRIOR_SIGMA = 0.35  # spread of a prior in log space (p90 ≈ 1.56 × p50)
PRIOR_WEIGHT = 1.0  # a prior counts as one observation: the first measurement outweighs a guess
HISTORY_WEIGHT = 20.0  # at the start of a run, what earlier runs learned counts as this many observations
MEMORY = 100_000  # an estimate averages over at most about this many of the latest observations
CLIP_SIGMAS = 3.0  # observations further than this from the estimate are clipped (once it is sure of sigma)
MIN_CLIP_DF = 4.0  # an estimate from fewer observations (and its prior) clips nothing
MIN_SIGMA = 0.05
_ANY = "*"
FAIL_PRIOR = (0.05, 19.95)  # pseudo-counts (failed, succeeded) of attempts: 0.25 % until observed


@dataclass(frozen=True, slots=True)
class Estimate:
    """A log-normal estimate: ``mu`` and ``sigma`` of log seconds, from ``n`` observations.

    ``n`` sets how far the next observation moves the estimate (``1 / (n + 1)``; capped when a run
    starts from history). ``evidence`` is how many observations the estimate is worth as evidence:
    ``1 / sum(w**2)`` over the weights ``w`` of the observations averaged into ``mu`` (``n`` for a
    plain running mean; a cap on ``n`` leaves it alone). Negative (the default): ``n``."""

    mu: float
    sigma: float
    n: float
    evidence: float = -1.0

    def __post_init__(self) -> None:
        if self.evidence < 0:
            object.__setattr__(self, "evidence", self.n)

    def quantile(self, q: float) -> float:
        """Seconds at quantile ``q`` (0 < q < 1)."""
        if not 0.0 < q < 1.0:
            raise ValueError(f"a quantile lies strictly between 0 and 1: {q}")
        return math.exp(self.mu + self.sigma * NormalDist().inv_cdf(q))

    @property
    def p50(self) -> float:
        return math.exp(self.mu)

    @property
    def p90(self) -> float:
        return self.quantile(0.9)

    def update(self, seconds: float) -> Estimate:
        """The estimate after one more observation (clipped, then folded into the running mean)."""
        x = math.log(max(seconds, 1e-3))
        bound = _clip_bound(self.evidence) * self.sigma
        x = min(max(x, self.mu - bound), self.mu + bound)
        n = self.n + 1
        a = max(1.0 / MEMORY, 1.0 / n)
        mu = self.mu + a * (x - self.mu)
        var = (1 - a) * (self.sigma**2 + a * (x - self.mu) ** 2)
        evidence = 1.0 / ((1 - a) ** 2 / max(self.evidence, 1e-9) + a * a)
        return Estimate(mu, max(MIN_SIGMA, math.sqrt(var)), n, evidence)


def _clip_bound(evidence: float) -> float:
    """How many ``sigma`` from ``mu`` an observation may lie before it is clipped: where a Student-t
    with ``evidence - 1`` degrees of freedom puts the tail a normal has beyond ``CLIP_SIGMAS`` (the
    next observation's predictive distribution when ``sigma`` itself was estimated from that few),
    times the predictive spread's ``sqrt(1 + 1/evidence)``. About ``CLIP_SIGMAS`` once the estimate
    rests on a few hundred observations; wider before, and no clipping from fewer than
    ``MIN_CLIP_DF + 1``: a spread that is still mostly the prior's guess cannot tell an outlier, and
    clipping at it made a heavy-tailed task (sigma 1.0) look as narrow as its prior (0.35) forever,
    every clipped early observation keeping the spread that clipped the next one small. The quantile
    is the Cornish-Fisher expansion of the t's (within 3 % from 4 degrees of freedom)."""
    df = evidence - 1.0
    if df < MIN_CLIP_DF:
        return math.inf
    z = CLIP_SIGMAS
    t = (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )
    return t * math.sqrt(1.0 + 1.0 / evidence)


def _prior(seconds: float | None) -> Estimate:
    base = seconds if seconds and seconds > 0 else DEFAULT_SECONDS
    return Estimate(math.log(base), PRIOR_SIGMA, PRIOR_WEIGHT)


class DurationModel:
    """Per task × group duration estimates with p50/p90; learns from observations.

    ``estimate(task, group)`` looks up, in order: this task on this group, this task on any group
    (pooled observations), the task's prior, ``DEFAULT_SECONDS``.
    """

    def __init__(self, priors: Mapping[str, float] | None = None) -> None:
        self._priors: dict[str, float] = dict(priors or {})
        self._est: dict[tuple[str, str], Estimate] = {}
        self._attempts: dict[tuple[str, str], tuple[float, float]] = {}  # (attempts, failed attempts)

    @property
    def priors(self) -> Mapping[str, float]:
        return dict(self._priors)

    def with_priors(self, priors: Mapping[str, float]) -> DurationModel:
        """A copy in which tasks without a prior take theirs from ``priors``."""
        copy = DurationModel({**priors, **self._priors})
        copy._est = dict(self._est)
        copy._attempts = dict(self._attempts)
        return copy

    def for_run(self) -> DurationModel:
        """A copy to learn one run with: history weighs at most ``HISTORY_WEIGHT`` observations
        against the run's own (its ``evidence``, what a forecast is sure of, stays)."""
        copy = DurationModel(self._priors)
        copy._est = {k: replace(e, n=min(e.n, HISTORY_WEIGHT)) for k, e in self._est.items()}
        copy._attempts = dict(self._attempts)
        return copy

    def set_prior(self, task: str, seconds: float) -> None:
        """The expected duration of ``task`` before anything was observed."""
        self._priors[task] = seconds

    def observe(self, task: str, group: str, seconds: float) -> None:
        """Fold in one measured duration (from history or from the running run)."""
        for key in ((task, group), (task, _ANY)):
            current = self._est.get(key)
            if current is None:  # a group's first measurement: what the others learned is its prior
                start = self._get(key)
                weight = min(start.n, PRIOR_WEIGHT)
                current = replace(start, n=weight, evidence=min(start.evidence, weight))
            self._est[key] = current.update(seconds)

    def observe_attempts(self, task: str, group: str, attempts: int, failed: int) -> None:
        """Count ``attempts`` tries of an operation of which ``failed`` failed (retries included)."""
        for key in ((task, group), (task, _ANY)):
            n, f = self._attempts.get(key, (0.0, 0.0))
            self._attempts[key] = (n + attempts, f + failed)

    def failure_rate(self, task: str, group: str) -> float:
        """The probability that one attempt of ``task`` on ``group`` fails, as observed so far."""
        failed, succeeded = self.failure_posterior(task, group)
        return failed / (failed + succeeded)

    def failure_posterior(self, task: str, group: str) -> tuple[float, float]:
        """What is known of that probability: the Beta posterior's ``(failed, succeeded)``
        pseudo-counts, the prior's plus the attempts observed (their sum is the number of attempts
        the rate rests on: a few failures among a hundred attempts leave it uncertain)."""
        n, f = self._attempts.get((task, group)) or self._attempts.get((task, _ANY)) or (0.0, 0.0)
        a, b = FAIL_PRIOR
        return f + a, n - f + b

    def learn(self, records: Iterable[tuple[str, str, float]]) -> None:
        """Fold in ``(task, group, seconds)`` records, e.g. from earlier runs."""
        for task, group, seconds in records:
            self.observe(task, group, seconds)

    def _get(self, key: tuple[str, str], prior: float | None = None) -> Estimate:
        got = self._est.get(key) or self._est.get((key[0], _ANY))
        return got or _prior(self._priors.get(key[0], prior))

    def estimate(self, task: str, group: str) -> Estimate:
        """The current estimate for ``task`` on ``group``."""
        return self._get((task, group))

    def seconds(self, task: str, group: str, quantile: float = 0.5, *, prior: float | None = None) -> float:
        """Predicted seconds at ``quantile`` (0.5 = p50, 0.9 = p90); ``prior``: the expected seconds
        when neither this model nor its priors know ``task``."""
        return self._get((task, group), prior).quantile(quantile)

    def to_json(self) -> str:
        """Everything needed to continue later, as JSON."""
        data: dict[str, Any] = {
            "version": 1,
            "priors": self._priors,
            "estimates": [
                {"task": t, "group": g, "mu": e.mu, "sigma": e.sigma, "n": e.n, "evidence": e.evidence}
                for (t, g), e in sorted(self._est.items())
            ],
            "attempts": [
                {"task": t, "group": g, "attempts": n, "failed": f}
                for (t, g), (n, f) in sorted(self._attempts.items())
            ],
        }
        return json.dumps(data, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DurationModel:
        """A model saved by :meth:`to_json` (one saved before estimates kept their ``evidence``
        takes ``n`` for it)."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("version") != 1:
            raise ValueError("not a sysflow duration model (version 1)")
        model = cls({str(k): float(v) for k, v in data.get("priors", {}).items()})
        for e in data.get("estimates", []):
            n = float(e["n"])
            model._est[(str(e["task"]), str(e["group"]))] = Estimate(
                float(e["mu"]), float(e["sigma"]), n, float(e.get("evidence", n))
            )
        for a in data.get("attempts", []):
            model._attempts[(str(a["task"]), str(a["group"]))] = (float(a["attempts"]), float(a["failed"]))
        return model
