"""What the forecast knows of one task on one group: the learned log-normal, how sure it is of it,
and the failure rate; drawn once per Monte Carlo sample for all the group's hosts (montecarlo.py)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sysflow.planner.durations import DurationModel

__all__ = ["MIN_T_SAMPLES", "TaskSpread", "spreads"]

MIN_T_SAMPLES = 10  # observations from which a learned spread is uncertain (fewer: a guess)


@dataclass(frozen=True, slots=True)
class TaskSpread:
    """What one task takes on one group: log-normal ``mu``/``sigma`` per host, ``mu_sd`` the
    uncertainty of ``mu`` itself (at ``sigma``), ``df`` the degrees of freedom ``sigma`` was estimated
    with (``inf``: known), the failure probability of one attempt, retries and their delay.

    Per sample the group's ``sigma`` is drawn as ``sigma * sqrt(df / chi2(df))`` and its ``mu`` as
    ``mu + mu_sd * (drawn sigma / sigma) * N(0, 1)`` (the posterior of a normal's mean and spread),
    and its failure probability from ``Beta(fail_p * fail_n, (1 - fail_p) * fail_n)`` (``fail_n``:
    the attempts the rate rests on, ``inf``: known), once for all its hosts; each host's log
    duration and attempts are then drawn with them."""

    mu: float
    sigma: float
    mu_sd: float = 0.0
    df: float = math.inf  # degrees of freedom of sigma's estimate (inf: not uncertain)
    fail_p: float = 0.0
    retries: int = 0
    retry_delay: float = 1.0
    fail_n: float = math.inf  # attempts (with the prior's pseudo-attempts) fail_p was learned from


def spreads(
    model: DurationModel, tasks: Mapping[str, tuple[int, float]] | None = None
) -> Callable[[str, str], TaskSpread]:
    """Each task × group's spread from the duration model: its log-normal, the uncertainty of its
    median (``sigma / sqrt(evidence)``) and of its spread (the sum of squares ``evidence * sigma**2``
    over ``evidence - 1`` degrees of freedom; a prior's or a guess from fewer than ``MIN_T_SAMPLES``
    observations is taken as it is), its learned failure rate with the attempts it rests on (drawn
    per sample from its Beta posterior), and the task's ``(retries, retry
    delay)``. ``evidence`` is what the estimate was learned from (all the history's hosts), not the
    cap a run puts on history's weight."""
    known = dict(tasks or {})

    def spread(task: str, group: str) -> TaskSpread:
        e = model.estimate(task, group)
        retries, delay = known.get(task, (0, 1.0))
        failed, succeeded = model.failure_posterior(task, group)
        fail, fail_n = failed / (failed + succeeded), failed + succeeded
        n = max(e.evidence, 1.0)
        if n < MIN_T_SAMPLES:  # a prior's sigma is a guess, not a sample's
            return TaskSpread(e.mu, e.sigma, e.sigma / math.sqrt(n), math.inf, fail, retries, delay, fail_n)
        # the estimate's variance is the mean square about its mean (over n): the sum of squares it
        # stands for, n * sigma**2, is spread over n - 1 degrees of freedom
        sigma = e.sigma * math.sqrt(n / (n - 1.0))
        return TaskSpread(e.mu, sigma, sigma / math.sqrt(n), n - 1.0, fail, retries, delay, fail_n)

    return spread
