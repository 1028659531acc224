"""What a scheduler returns, in the problem's integer seconds, and how solutions are compared.

An :class:`Assignment` gives each placed host the start of every operation, and each deferred host a
reason. :func:`score` is the objective every solver optimises and every comparison uses:
lexicographically, the most hosts done by the end of the first window of their group, counted in
steps of ``problem.first_window_step`` (1 % of the fleet by default); then the most hosts placed at
all (a deferred host is not done sooner for being left out: without this level, deferring the last
hosts of a plan shortened its makespan and scored better); then the earliest finish of the placed
hosts (makespan: a plan that leaves 20 hosts to next week's window is worse than one that moves 45 of
10,000 hosts to their group's second window this week and finishes days sooner); then the most hosts
done by the first window exactly, by the second window, ...; then the smallest total completion time
(sum over placed hosts of their last end). With a slack of 0 it is the plain lexicographic order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sysflow.planner.problem import Chain, PlanningProblem, ResourceKind, Window

__all__ = [
    "Assignment",
    "Score",
    "block_items",
    "blocks",
    "done_window",
    "hosts_done_per_window",
    "latest_start",
    "score",
]


@dataclass(frozen=True)
class Assignment:
    """Operation starts per placed host; a reason per deferred host."""

    starts: Mapping[str, tuple[int, ...]]
    deferred: Mapping[str, str] = field(default_factory=dict)

    def end(self, chain: Chain) -> int:
        """When the host's last operation ends."""
        s = self.starts[chain.host]
        return s[-1] + chain.durations[-1]


@dataclass(frozen=True, order=True)
class Score:
    """Smaller is better: ``(-steps done by window 0, -placed, makespan, -done by window 0, -done by
    window 1, ..., total completion)``."""

    key: tuple[int, ...]

    @property
    def done_by_window(self) -> tuple[int, ...]:
        return tuple(-k for k in self.key[3:-1]) if len(self.key) > 3 else ()

    @property
    def placed(self) -> int:
        return -self.key[1] if len(self.key) > 3 else 0

    @property
    def makespan(self) -> int:
        return self.key[2] if len(self.key) > 3 else 0

    @property
    def total_completion(self) -> int:
        return self.key[-1]


def blocks(chain: Chain, split: bool) -> list[tuple[int, int]]:
    """Operation index ranges ``[a, b)`` that run back to back: the whole chain, or one per op."""
    n = len(chain.ops)
    return [(i, i + 1) for i in range(n)] if split else [(0, n)]


def block_items(problem: PlanningProblem, chain: Chain, a: int, b: int) -> list[tuple[int, int, int, int]]:
    """What the block ``[a, b)`` holds, as ``(resource, offset in block, length, amount)``.

    Consecutive operations holding the same pool with the same amount are merged into one item, so a
    chain that holds a concurrency slot throughout costs one item, not one per operation. In one-block
    mode the host's budgets are held by the block for its whole length.
    """
    base = chain.offsets[a]
    out: list[tuple[int, int, int, int]] = []
    last: dict[tuple[int, int], int] = {}  # (pool, amount) -> index in out of its latest item
    for i in range(a, b):
        off, d = chain.offsets[i] - base, chain.durations[i]
        for u in chain.op_uses(i):
            res = problem.resources[u.resource]
            if res.kind is ResourceKind.RATE:
                out.append((u.resource, off, res.period, u.amount))
                continue
            j = last.get((u.resource, u.amount))
            if j is not None and out[j][1] + out[j][2] == off:
                out[j] = (u.resource, out[j][1], out[j][2] + d, u.amount)
            else:
                last[(u.resource, u.amount)] = len(out)
                out.append((u.resource, off, d, u.amount))
    if not problem.split_chains:
        out.extend((u.resource, 0, chain.total, u.amount) for u in chain.span_uses)
    return [it for it in out if it[2] > 0 and it[3] > 0]


def latest_start(chain: Chain, a: int, b: int, w: Window) -> int:
    """Latest start of the block ``[a, b)`` of ``chain`` in window ``w`` (may be < ``w.start``)."""
    length = sum(chain.durations[a:b])
    last_off = length - chain.durations[b - 1]
    return min(w.cutoff - last_off, w.end - length)


def done_window(chain: Chain, last_start: int) -> int:
    """Index of the window in which the chain's last block, starting at ``last_start``, runs."""
    for k, w in enumerate(chain.windows):
        if w.start <= last_start <= w.cutoff:
            return k
    raise ValueError(f"{chain.host}: start {last_start} is in none of its windows")


def score(problem: PlanningProblem, a: Assignment) -> Score:
    """The objective value of ``a`` (see module docstring); works on weighted chains too."""
    k_max = problem.max_windows
    per_window = [0] * k_max
    total = makespan = 0
    for c in problem.chains:
        s = a.starts.get(c.host)
        if s is None:
            continue
        per_window[done_window(c, s[-1])] += c.weight
        end = s[-1] + c.durations[-1]
        total += c.weight * end
        makespan = max(makespan, end)
    cumulative, acc = [], 0
    for n in per_window:
        acc += n
        cumulative.append(-acc)
    if not cumulative:
        return Score((total,))
    steps = -(-cumulative[0] // problem.first_window_step)
    return Score((steps, cumulative[-1], makespan, *cumulative, total))


def hosts_done_per_window(problem: PlanningProblem, a: Assignment) -> list[int]:
    """How many hosts finish in their k-th window, for each k."""
    out = [0] * problem.max_windows
    for c in problem.chains:
        s = a.starts.get(c.host)
        if s is not None:
            out[done_window(c, s[-1])] += c.weight
    return out
