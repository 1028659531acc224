"""The solver-neutral planning problem, in integer seconds from a horizon start.

Every scheduler (greedy, CP-SAT), the lower bound and the checker read this one frozen value, so
they agree on what a constraint means. ``build.build_problem`` derives it from an ``OpGraph``, the
calendar and the limits; tests and benchmarks build it directly.

Model, in the words the schedulers use:

* a **chain** is one host's operations in order (``durations``), placed inside one of the host's
  ``windows``: every operation starts at or after the window start and at or before its cutoff, and
  ends at or before the window end. By default a chain is one contiguous block inside one window; with
  ``split_chains`` each operation is its own block (in order, possibly in later windows);
* a **resource** is a capacity shared over time: a ``POOL`` is used for an operation's duration
  (concurrency slots, MB/s), a ``RATE`` is used for ``period`` seconds from an operation's start
  (at most ``capacity`` starts in any ``period`` seconds; spacing is a rate of 1), a ``BUDGET`` is used
  for the host's whole span, first start to last end (hosts in maintenance at once);
* **wave barriers**: within a ``stage`` (a group, or the whole fleet), no chain of wave ``w + 1`` starts
  before every chain of the earlier waves has ended plus ``gates[w]`` seconds; a host of a later wave
  is deferred when an earlier wave of its stage is not complete.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from functools import cached_property
from typing import NamedTuple

__all__ = [
    "Busy",
    "Chain",
    "PlanningProblem",
    "Resource",
    "ResourceKind",
    "Use",
    "Window",
    "remaining_problem",
]


class ResourceKind(enum.Enum):
    """How long a demand holds a resource."""

    POOL = "pool"  # for the operation's duration
    RATE = "rate"  # for ``period`` seconds from the operation's start
    BUDGET = "budget"  # for the host's span, first start to last end


@dataclass(frozen=True, slots=True)
class Resource:
    """A capacity shared over time; ``period`` is the sliding window of a ``RATE``."""

    name: str
    kind: ResourceKind
    capacity: int
    period: int = 0
    label: str = ""  # what an administrator reads, e.g. "ams uplink (MB/s)"

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError(f"resource {self.name}: capacity must be >= 1")
        if self.kind is ResourceKind.RATE and self.period < 1:
            raise ValueError(f"rate {self.name}: period must be >= 1 s")


@dataclass(frozen=True, slots=True)
class Window:
    """One maintenance window: operations start in ``[start, cutoff]`` and end by ``end``."""

    start: int
    cutoff: int
    end: int

    def __post_init__(self) -> None:
        if not self.start <= self.cutoff <= self.end:
            raise ValueError(f"window needs start <= cutoff <= end: {self}")


class Use(NamedTuple):
    """``amount`` of resource ``resource`` (index into ``PlanningProblem.resources``).

    A named tuple rather than a dataclass: chains are hashed as cache keys by the schedulers.
    """

    resource: int
    amount: int


@dataclass(frozen=True, slots=True)
class Busy:
    """Usage already committed (operations done or running when re-planning)."""

    resource: int
    start: int
    length: int
    amount: int


@dataclass(frozen=True)
class Chain:
    """One host's operations in order, with where and what they may use.

    ``uses[i]`` are the ``POOL`` and ``RATE`` demands of operation ``i``; ``span_uses`` the ``BUDGET``
    demands of the whole host. ``weight`` is the number of identical hosts the chain stands for (1,
    except inside CP-SAT's decomposition). ``release`` is the earliest start of its first operation.
    """

    host: str
    group: str
    datacenter: str | None
    wave: int
    stage: str
    ops: tuple[str, ...]
    tasks: tuple[str, ...]
    durations: tuple[int, ...]
    windows: tuple[Window, ...]
    uses: tuple[tuple[Use, ...], ...] = ()
    span_uses: tuple[Use, ...] = ()
    weight: int = 1
    release: int = 0

    def __post_init__(self) -> None:
        n = len(self.ops)
        if n == 0 or len(self.tasks) != n or len(self.durations) != n:
            raise ValueError(f"chain {self.host}: ops, tasks and durations must have one entry each")
        if self.uses and len(self.uses) != n:
            raise ValueError(f"chain {self.host}: uses must have one entry per operation")
        if any(d < 0 for d in self.durations):
            raise ValueError(f"chain {self.host}: durations must be >= 0")

    @cached_property
    def offsets(self) -> tuple[int, ...]:
        """Start of each operation relative to the chain start, when run as one block."""
        out, t = [], 0
        for d in self.durations:
            out.append(t)
            t += d
        return tuple(out)

    @property
    def total(self) -> int:
        """Length of the chain run as one block."""
        return sum(self.durations)

    def op_uses(self, i: int) -> tuple[Use, ...]:
        """The POOL and RATE demands of operation ``i``."""
        return self.uses[i] if self.uses else ()

    def with_durations(self, durations: tuple[int, ...]) -> Chain:
        """This chain with other ``durations`` (re-planning re-estimates thousands of chains: only
        what changed is validated, unlike ``dataclasses.replace``)."""
        if len(durations) != len(self.ops) or (durations and min(durations) < 0):
            raise ValueError(f"chain {self.host}: durations must be one per operation, >= 0")
        return self._copy(durations=durations)

    def with_release(self, release: int) -> Chain:
        """This chain with another ``release`` (its earliest first start)."""
        return self if release == self.release else self._copy(release=release)

    def _copy(self, **changes: object) -> Chain:
        new = object.__new__(Chain)
        state = new.__dict__  # the fields only: cached values (offsets) are derived from them
        for name in _CHAIN_FIELDS:
            state[name] = self.__dict__[name]
        state.update(changes)
        return new


_CHAIN_FIELDS = tuple(f.name for f in fields(Chain))


@dataclass(frozen=True)
class PlanningProblem:
    """Everything a scheduler needs, and nothing about how it was derived.

    ``gates[w]`` is the time between the end of wave ``w`` and the start of wave ``w + 1`` within a
    stage; ``origin`` is the wall-clock time of second 0 (None in synthetic instances);
    ``first_window_slack`` is the share of the fleet the objective lets move to its next window when
    that finishes the plan sooner (see :func:`~sysflow.planner.solution.score`; 0: never).
    """

    chains: tuple[Chain, ...]
    resources: tuple[Resource, ...] = ()
    gates: tuple[int, ...] = ()
    split_chains: bool = False
    origin: datetime | None = None
    background: tuple[Busy, ...] = field(default=())
    first_window_slack: float = 0.01

    def __post_init__(self) -> None:
        hosts = [c.host for c in self.chains]
        if len(set(hosts)) != len(hosts):
            raise ValueError("every host has exactly one chain")
        for c in self.chains:
            for use in (u for us in c.uses for u in us):
                self._check_use(c, use, ResourceKind.BUDGET, False)
            for use in c.span_uses:
                self._check_use(c, use, ResourceKind.BUDGET, True)

    def derived(
        self, chains: tuple[Chain, ...], background: tuple[Busy, ...] | None = None
    ) -> PlanningProblem:
        """This problem with other ``chains`` (hosts of this one, their uses unchanged: re-planning's
        remaining and re-estimated problems), without validating every chain again."""
        new = object.__new__(PlanningProblem)
        state = new.__dict__  # the fields only: cached values (by_host, ...) are derived from them
        for f in fields(self):
            state[f.name] = self.__dict__[f.name]
        state["chains"] = chains
        if background is not None:
            state["background"] = background
        return new

    def _check_use(self, chain: Chain, use: Use, kind: ResourceKind, must_be: bool) -> None:
        if not 0 <= use.resource < len(self.resources):
            raise ValueError(f"chain {chain.host}: unknown resource index {use.resource}")
        if (self.resources[use.resource].kind is kind) != must_be:
            raise ValueError(f"chain {chain.host}: budgets go in span_uses, pools and rates in uses")
        if use.amount < 0:
            raise ValueError(f"chain {chain.host}: a demand must be >= 0")

    @cached_property
    def by_host(self) -> Mapping[str, Chain]:
        return {c.host: c for c in self.chains}

    @property
    def hosts(self) -> int:
        """Number of hosts (chain weights summed)."""
        return sum(c.weight for c in self.chains)

    @property
    def horizon(self) -> int:
        """The end of the last window of any chain."""
        return max((w.end for c in self.chains for w in c.windows), default=0)

    @cached_property
    def first_window_step(self) -> int:
        """Hosts done in their first window count in steps of this many (1: every host counts)."""
        return max(1, int(self.hosts * self.first_window_slack))

    @property
    def max_windows(self) -> int:
        return max((len(c.windows) for c in self.chains), default=0)

    def gate(self, wave: int) -> int:
        """Seconds between the end of ``wave`` and the start of the next wave."""
        return self.gates[wave] if 0 <= wave < len(self.gates) else 0

    def stage_waves(self) -> Mapping[str, Sequence[int]]:
        """For each stage, its waves in order."""
        out: dict[str, set[int]] = {}
        for c in self.chains:
            out.setdefault(c.stage, set()).add(c.wave)
        return {k: sorted(v) for k, v in out.items()}


def _busy(problem: PlanningProblem, c: Chain, s: tuple[int, ...]) -> list[Busy]:
    out: list[Busy] = []
    for i, start in enumerate(s):
        for u in c.op_uses(i):
            res = problem.resources[u.resource]
            length = res.period if res.kind is ResourceKind.RATE else c.durations[i]
            out.append(Busy(u.resource, start, length, u.amount))
    end = s[-1] + c.durations[-1]
    out.extend(Busy(u.resource, s[0], end - s[0], u.amount) for u in c.span_uses)
    return [b for b in out if b.length > 0 and b.amount > 0]


def _releases(problem: PlanningProblem, fixed: Mapping[str, tuple[int, ...]]) -> dict[tuple[str, int], int]:
    """Per (stage, wave) of the fixed hosts, the earliest start their end allows for later waves."""
    out: dict[tuple[str, int], int] = {}
    for c in problem.chains:
        s = fixed.get(c.host)
        if s is not None:
            key = (c.stage, c.wave)
            out[key] = max(out.get(key, 0), s[-1] + c.durations[-1] + problem.gate(c.wave))
    return out


def remaining_problem(
    problem: PlanningProblem, fixed: Mapping[str, tuple[int, ...]], now: int
) -> PlanningProblem:
    """The problem of the hosts not in ``fixed``, starting at ``now``, around the fixed hosts' usage."""
    rel = _releases(problem, fixed)
    chains = []
    background = list(problem.background)
    for c in problem.chains:
        if c.host in fixed:  # what ended by now cannot meet anything placed from now on
            background.extend(b for b in _busy(problem, c, fixed[c.host]) if b.start + b.length > now)
            continue
        earlier = (t for (stage, wave), t in rel.items() if stage == c.stage and wave < c.wave)
        chains.append(c.with_release(max(c.release, now, *earlier)))
    return problem.derived(tuple(chains), tuple(background))
