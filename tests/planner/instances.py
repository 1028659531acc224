"""Random small planning problems for the planner's tests (plain ``random`` and hypothesis)."""

from __future__ import annotations

import random

from hypothesis import strategies as st

from sysflow.planner.problem import Chain, PlanningProblem, Resource, ResourceKind, Use, Window


def random_problem(seed: int, *, hosts: int = 6, split: bool = False, horizon: int = 60) -> PlanningProblem:
    """A small instance with two groups, their own windows, a pool, a rate, a budget and waves."""
    rng = random.Random(seed)
    resources = (
        Resource("global", ResourceKind.POOL, rng.randint(1, 3)),
        Resource("bw", ResourceKind.POOL, rng.randint(2, 4), label="uplink"),
        Resource("rate", ResourceKind.RATE, rng.randint(1, 2), period=rng.randint(1, 3)),
        Resource("budget-a", ResourceKind.BUDGET, rng.randint(1, 2)),
        Resource("budget-b", ResourceKind.BUDGET, rng.randint(1, 2)),
    )
    windows = {g: _windows(rng, horizon) for g in ("a", "b")}
    fleet = rng.random() < 0.5  # one wave barrier across groups, or one per group
    chains = []
    for i in range(hosts):
        g = "a" if i % 2 == 0 else "b"
        n = rng.randint(1, 3)
        durations = tuple(rng.randint(0, 6) for _ in range(n))
        uses = tuple(
            (Use(0, 1), Use(1, rng.randint(0, 2)), *((Use(2, 1),) if j == 0 else ())) for j in range(n)
        )
        chains.append(
            Chain(
                host=f"h{i}",
                group=g,
                datacenter="dc1",
                wave=rng.choice((0, 0, 1)),
                stage="fleet" if fleet else g,
                ops=tuple(f"t{j}@h{i}" for j in range(n)),
                tasks=tuple(f"t{j}" for j in range(n)),
                durations=durations,
                windows=windows[g],
                uses=uses,
                span_uses=(Use(3 if g == "a" else 4, 1),),
                release=rng.choice((0, 0, 0, 3)),
            )
        )
    return PlanningProblem(tuple(chains), resources, gates=(rng.randint(0, 4),), split_chains=split)


def _windows(rng: random.Random, horizon: int) -> tuple[Window, ...]:
    out, t = [], rng.randint(0, 5)
    while t < horizon - 4:
        length = rng.randint(4, 14)
        cutoff = t + rng.randint(max(0, length - 4), length)
        out.append(Window(t, cutoff, t + length))
        t += length + rng.randint(1, 10)
    return tuple(out)


@st.composite
def problems(draw: st.DrawFn, max_hosts: int = 6) -> PlanningProblem:
    """Hypothesis strategy over :func:`random_problem`."""
    seed = draw(st.integers(0, 2**32 - 1))
    hosts = draw(st.integers(1, max_hosts))
    split = draw(st.booleans())
    return random_problem(seed, hosts=hosts, split=split)
