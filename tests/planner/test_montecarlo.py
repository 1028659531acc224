"""The forecast's fast model of the engine: a replay on fixed durations behaves as the engine would
(first come first served, windows, wave gates, failures), and the Monte Carlo distribution's
quantiles, intervals and probabilities read what the samples say."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from statistics import NormalDist

import numpy as np
import pytest

from sysflow.planner.build import solve_problem
from sysflow.planner.durations import DurationModel
from sysflow.planner.forecast import binding_constraint, distribution, forecast, plan_order, relaxations
from sysflow.planner.montecarlo import (
    Outcomes,
    Replays,
    TaskSpread,
    ordered_chains,
    replay,
    simulate,
    spreads,
)
from sysflow.planner.problem import Chain, PlanningProblem, Resource, ResourceKind, Use, Window

ORIGIN = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)


def fleet(
    hosts: int = 4,
    *,
    slots: int = 2,
    seconds: int = 10,
    windows: tuple[Window, ...] = (Window(0, 190, 200),),
    waves: int = 1,
    budget: int | None = None,
) -> PlanningProblem:
    """``hosts`` one-task hosts of 10 s sharing a pool of ``slots``; optionally a budget and waves."""
    resources = [Resource("max_parallel_servers", ResourceKind.POOL, slots)]
    if budget is not None:
        resources.append(Resource("disruption_budget[group=web]", ResourceKind.BUDGET, budget))
    chains = tuple(
        Chain(
            host=f"web{i}",
            group="web",
            datacenter="ams",
            wave=i * waves // hosts,
            stage="fleet",
            ops=(f"a@web{i}", f"b@web{i}"),
            tasks=("a", "b"),
            durations=(seconds, seconds),
            windows=windows,
            uses=((Use(0, 1),), (Use(0, 1),)),
            span_uses=(Use(1, 1),) if budget is not None else (),
        )
        for i in range(hosts)
    )
    return PlanningProblem(chains, tuple(resources), gates=(30,) * waves, origin=ORIGIN)


def fixed(
    p: PlanningProblem, seconds: float | None = None, fail_at: int | None = None
) -> tuple[list[float], list[int], list[bool]]:
    n = sum(len(c.ops) for c in p.chains)
    secs = np.array(
        [seconds if seconds is not None else d for c in p.chains for d in c.durations], dtype=float
    )
    fails = np.zeros(n, dtype=bool)
    if fail_at is not None:
        fails[fail_at] = True
    return replay(p, p.chains, secs, fails)


def test_first_come_first_served_per_operation_like_the_engine() -> None:
    # 4 hosts, 2 slots, two 10 s operations each: every host's first operation queues before any
    # second one, so the first two hosts' second operations wait behind the last two hosts' first
    end, window, failed = fixed(fleet())
    assert end == [30.0, 30.0, 40.0, 40.0]
    assert window == [0, 0, 0, 0] and failed == [False] * 4


def test_a_chain_that_does_not_fit_before_the_window_end_waits_for_the_next_window() -> None:
    two = (Window(0, 25, 30), Window(100, 190, 200))
    end, window, _ = fixed(fleet(windows=two))
    # the first pair fits (20 s); the second pair would start at 10 s and need until 30 s + its queue
    assert window.count(0) == 2 and window.count(1) == 2
    assert min(e for e, w in zip(end, window, strict=True) if w == 1) >= 100


def test_the_next_wave_starts_after_the_previous_wave_and_its_gate() -> None:
    end, _, _ = fixed(fleet(hosts=4, slots=4, waves=2))
    assert end[:2] == [20.0, 20.0]
    assert end[2:] == [20.0 + 30 + 20, 20.0 + 30 + 20]


def test_a_budget_is_held_from_the_first_operation_to_the_last() -> None:
    end, _, _ = fixed(fleet(hosts=4, slots=4, budget=1))
    assert sorted(end) == [20.0, 40.0, 60.0, 80.0]


def test_a_failed_operation_ends_the_hosts_chain_and_counts_as_settled() -> None:
    end, window, failed = fixed(fleet(hosts=2, slots=2), fail_at=0)
    assert failed == [True, False]
    assert end[0] == 10.0 and window[0] == -1
    assert window[1] == 0


def test_a_host_no_window_fits_is_deferred_not_finished() -> None:
    end, window, _ = fixed(fleet(windows=(Window(0, 5, 8),)))
    assert all(math.isnan(e) for e in end) and window == [-1] * 4


def test_relaxations_more_slots_or_longer_windows_never_finish_later() -> None:
    p = fleet(hosts=6)
    secs = np.full(12, 10.0)
    no = np.zeros(12, dtype=bool)
    base = max(replay(p, p.chains, secs, no)[0])
    wider = max(replay(p, p.chains, secs, no, capacity={0: 6})[0])
    assert wider < base
    short = fleet(hosts=6, windows=(Window(0, 25, 30), Window(1000, 1090, 1100)))
    late = max(replay(short, short.chains, secs, no)[0])
    stretched = max(replay(short, short.chains, secs, no, stretch=4.0)[0])
    assert stretched < late


def test_samples_spread_as_the_model_says() -> None:
    p = fleet(hosts=8, slots=8)
    tight = simulate(p, [], lambda t, g: TaskSpread(math.log(10), 0.01), samples=50, seed=1)
    assert np.allclose(tight.finish(), 20.0, rtol=0.05)
    wide = simulate(p, [], lambda t, g: TaskSpread(math.log(10), 0.8, mu_sd=0.3), samples=200, seed=1)
    f = wide.finish()
    assert np.quantile(f, 0.9) > 1.5 * np.quantile(f, 0.1)
    failing = simulate(p, [], lambda t, g: TaskSpread(math.log(10), 0.1, fail_p=1.0), samples=5)
    assert failing.failed.all()


@pytest.mark.parametrize("hosts", [25, 400])
def test_a_well_learned_model_forecasts_a_fleets_median_finish_whatever_its_size(hosts: int) -> None:
    """What an earlier run of 400 hosts taught is one uncertain median and spread per task × group,
    shared by every host of this run: the forecast's p50 of the last host's finish stays at the
    median finish of runs drawn from what was learned, for 25 hosts as for 400 (drawing the
    parameters' uncertainty per host instead fattens every host's tail and drifts later with the
    fleet's size), and a run's cap on history's weight does not make it less sure of it."""
    z = [NormalDist().inv_cdf((i + 0.5) / 400) for i in range(400)]
    history = DurationModel({"a": 10.0, "b": 10.0})
    for task in ("a", "b"):
        history.learn((task, "web", 10.0 * math.exp(0.3 * z[(i * 7) % 400])) for i in range(400))
    model = history.for_run()
    p = fleet(hosts=hosts, slots=hosts, windows=(Window(0, 10_000, 10_100),))
    learned = {t: model.estimate(t, "web") for t in ("a", "b")}
    assert all(abs(e.sigma - 0.3) < 0.02 and abs(e.mu - math.log(10.0)) < 0.02 for e in learned.values())
    known = simulate(p, [], lambda t, g: TaskSpread(learned[t].mu, learned[t].sigma), samples=400, seed=7)
    dist = distribution(solve_problem(p), model, samples=200, seed=1)
    assert dist.finish_quantile(0.5) == pytest.approx(float(np.median(known.finish())), rel=0.04)


def test_a_groups_median_and_spread_are_drawn_once_per_sample_for_all_its_hosts() -> None:
    p = fleet(hosts=200, slots=200, windows=(Window(0, 10_000, 10_100),))
    uncertain = TaskSpread(math.log(10), 0.3, mu_sd=0.2, df=5.0)

    def per_sample(out: Outcomes) -> tuple[float, float]:
        """How much the fleet's median and interquartile range (of log end) vary between samples."""
        logs = np.log(out.end)  # every host runs at once: its end is the sum of its two durations
        q1, q2, q3 = np.quantile(logs, [0.25, 0.5, 0.75], axis=1)
        return float(np.std(q2)), float(np.std(q3 - q1) / np.mean(q3 - q1))

    centre, width = per_sample(simulate(p, [], lambda t, g: uncertain, samples=100, seed=2))
    assert centre > 0.1 and width > 0.15  # the drawn mu and sigma move the whole fleet
    centre, width = per_sample(
        simulate(p, [], lambda t, g: TaskSpread(math.log(10), 0.3), samples=100, seed=2)
    )
    assert centre < 0.03 and width < 0.1  # known: every sample's fleet looks alike


def test_retries_replay_failed_attempts_before_success() -> None:
    p = fleet(hosts=8, slots=8)
    once = simulate(p, [], lambda t, g: TaskSpread(math.log(10), 0.01, fail_p=0.5, retries=20), samples=20)
    assert not once.failed.any()
    assert np.median(once.finish()) > 25  # about two attempts per operation, plus their delays


def test_the_distribution_of_a_plan_from_a_learned_model() -> None:
    p = fleet(hosts=10, slots=3, windows=(Window(0, 50, 60), Window(3600, 3690, 3700)))
    plan = solve_problem(p)
    model = DurationModel({"a": 10.0, "b": 10.0})
    for _ in range(30):
        model.observe("a", "web", 10.0)
        model.observe("b", "web", 10.0)
    dist = distribution(plan, model, samples=100, seed=3)
    assert dist.samples == 100 and dist.hosts == 10
    assert dist.finish_quantile(0.1) <= dist.finish_quantile(0.5) <= dist.finish_quantile(0.9)
    lo, hi = dist.done_interval(0.8)
    assert 0 < lo <= hi < 10  # the first window holds some hosts, never all ten
    assert dist.p_all_in_first_window() == 0.0
    assert dist.first_window_end == plan.at(60)
    data = dist.to_dict()
    assert data["finish"]["p50"] is not None and data["groups"]["web"]["p90"] is not None
    assert plan_order(plan)[0] in plan.assignment.starts


def test_the_model_counts_failed_attempts_and_keeps_them_in_json() -> None:
    model = DurationModel()
    before = model.failure_rate("upgrade", "web")
    assert 0 < before < 0.01  # a small prior: nothing observed yet
    model.observe_attempts("upgrade", "web", 100, 10)
    assert model.failure_rate("upgrade", "web") == pytest.approx(10.05 / 120, rel=1e-6)
    assert model.failure_rate("upgrade", "db") == model.failure_rate("upgrade", "web")  # pooled
    again = DurationModel.from_json(model.to_json())
    assert again.failure_rate("upgrade", "web") == model.failure_rate("upgrade", "web")
    spread = spreads(again, {"upgrade": (2, 5.0)})("upgrade", "web")
    assert spread.retries == 2 and spread.retry_delay == 5.0 and spread.fail_p > 0


def test_the_forecast_is_as_unsure_of_a_failure_rate_as_the_attempts_it_was_learned_from() -> None:
    """A rate of 10 % learned from 40 attempts (6 failed) could as well be 5 % or 17 %; the forecast draws it
    per sample from its Beta posterior, so its p90 allows for a fleet that fails more often than the
    point estimate (a serial fleet: every retry adds to the finish). The same rate learned from
    10,000 attempts is known: its p90 is that of the fleet's own luck alone."""
    p = fleet(hosts=100, slots=1, windows=(Window(0, 1_000_000, 1_000_100),))
    plan = solve_problem(p)

    def forecast(attempts: int, failed: int) -> tuple[float, float]:
        model = DurationModel({"a": 10.0, "b": 10.0})
        for task in ("a", "b"):
            model.learn((task, "web", 10.0) for _ in range(30))
            model.observe_attempts(task, "web", attempts, failed)
        assert model.failure_rate("a", "web") == pytest.approx(0.1008, abs=1e-4)
        dist = distribution(plan, model, retries={"a": (2, 1.0), "b": (2, 1.0)}, samples=400, seed=1)
        return dist.finish_quantile(0.5), dist.finish_quantile(0.9)

    few, many = forecast(40, 6), forecast(10_000, 1010)
    assert few[1] - many[1] > 0.4 * (many[1] - many[0])


def constructed(kind: str) -> PlanningProblem:
    """20 hosts of 60 s (10 s download + 50 s upgrade) in one window, bound by one thing each:
    ``bandwidth``: the uplink fits 2 downloads at once; ``budget``: 2 hosts in maintenance at once;
    ``window``: plenty of everything but time: the window (55 s) is shorter than a host's chain."""
    slots = 20
    length = 55 if kind == "window" else 3600
    resources = (
        Resource("max_parallel_servers", ResourceKind.POOL, slots),
        Resource("uplink[datacenter=ams]", ResourceKind.POOL, 100 if kind == "bandwidth" else 1000),
        Resource("disruption_budget[group=web]", ResourceKind.BUDGET, 2 if kind == "budget" else 20),
    )
    chains = tuple(
        Chain(
            host=f"web{i:02d}",
            group="web",
            datacenter="ams",
            wave=0,
            stage="fleet",
            ops=(f"download@web{i:02d}", f"upgrade@web{i:02d}"),
            tasks=("download", "upgrade"),
            durations=(10, 50) if kind != "bandwidth" else (50, 10),
            windows=(Window(0, length - 5, length), Window(86_400, 86_400 + length - 5, 86_400 + length)),
            uses=((Use(0, 1), Use(1, 50)), (Use(0, 1),)),
            span_uses=(Use(2, 1),),
        )
        for i in range(20)
    )
    return PlanningProblem(chains, resources, origin=ORIGIN)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("bandwidth", "uplink"), ("budget", "disruption_budget"), ("window", "maintenance windows")],
)
def test_the_named_bottleneck_is_the_one_whose_relaxation_moves_the_finish_most(
    kind: str, expected: str
) -> None:
    plan = solve_problem(constructed(kind))
    moved = relaxations(plan)
    base = moved.pop("")
    assert binding_constraint(plan) == expected
    assert moved[expected] < base  # relaxing it helps ...
    assert all(moved[expected] <= other for other in moved.values())  # ... and no other helps more
    assert forecast(plan).binding == expected


def uneven(hosts: int = 3) -> PlanningProblem:
    """Hosts whose first operation needs 4 of an uplink of 6 and their second 2, under a budget of 2:
    a new host refused by the uplink while the budget is full holds its place on the budget only,
    so a second operation behind it passes (a doubled budget would make it hold the uplink too)."""
    resources = (
        Resource("uplink", ResourceKind.POOL, 6),
        Resource("disruption_budget", ResourceKind.BUDGET, 2),
    )
    chains = tuple(
        Chain(
            host=f"web{i}",
            group="web",
            datacenter="ams",
            wave=0,
            stage="fleet",
            ops=(f"a@web{i}", f"b@web{i}"),
            tasks=("a", "b"),
            durations=((10, 5), (20, 20))[i % 2],
            windows=(Window(0, 190, 200),),
            uses=((Use(0, 4),), (Use(0, 2),)),
            span_uses=(Use(1, 1),),
        )
        for i in range(hosts)
    )
    return PlanningProblem(chains, resources, origin=ORIGIN)


def crowded_fleets() -> list[PlanningProblem]:
    """The constructed bottlenecks, and fleets bound by slots, a budget, waves or short windows."""
    return [
        uneven(),
        *(constructed(kind) for kind in ("bandwidth", "budget", "window")),
        fleet(hosts=9, slots=2, waves=3),
        fleet(hosts=8, slots=4, budget=2),
        fleet(hosts=8, slots=3, budget=5, windows=(Window(0, 35, 40), Window(500, 535, 540))),
        fleet(hosts=6, slots=6, budget=6),
    ]


@pytest.mark.parametrize("problem", crowded_fleets())
def test_a_constraint_that_never_refused_is_not_replayed_and_nothing_changes(
    problem: PlanningProblem,
) -> None:
    plan = solve_problem(problem)
    assert relaxations(plan) == relaxations(plan, prune=False)


def test_a_replay_knows_which_resources_refused_a_request_at_capacity() -> None:
    def refused(kind: str, capacity: dict[int, float] | None = None) -> frozenset[int]:
        p = constructed(kind)  # resources: 0 slots, 1 uplink, 2 budget
        secs = np.array([d for c in p.chains for d in c.durations], dtype=float)
        return Replays(p, p.chains, secs, np.zeros(len(secs), dtype=bool)).run(capacity=capacity).refused

    assert 1 in refused("bandwidth") and 0 not in refused("bandwidth")
    assert refused("budget") == {2}
    assert refused("budget", {2: 40}) == frozenset()
    assert refused("window") == frozenset()  # only time binds: no capacity is replayed relaxed
    p = uneven()
    secs = np.array([d for c in p.chains for d in c.durations], dtype=float)
    assert 1 in Replays(p, p.chains, secs, np.zeros(len(secs), dtype=bool)).run().refused  # held, not asked


def test_the_replay_of_a_simulated_runs_own_durations_ends_every_host_when_the_engine_did() -> None:
    """The forecast's replay is the engine's model: fed the durations a seeded run on the simulator
    actually drew (waves, the pause between them, the per-group limit, a datacenter pool, a cutoff),
    it ends every host at the instant the engine ended it. What the forecast still gets wrong is then
    in the sampled durations, not in how the plan is executed (benchmarks/forecast_calibration.py
    --replay-check checks the same on every calibration run)."""
    from sysflow.engine.engine import Engine
    from sysflow.model.inventory import Inventory
    from sysflow.model.workflow import MaintenanceWorkflow
    from sysflow.sim import SimFleet, SimProfile, SimTransport, current_virtual_clock, run_virtual

    start = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    inv = Inventory()
    for i in range(24):
        group = "db" if i % 4 == 0 else "web"
        inv.add_host(f"{group}{i:02d}", [group], datacenter="ams" if i % 2 else "fra")
    steps = (("pre", 30.0), ("fetch", 60.0), ("upgrade", 240.0), ("verify", 10.0))
    tasks = [
        {
            "id": name,
            "run": f"step-{name}",
            "expected_duration": f"{seconds:g}s",
            "depends_on": [steps[k - 1][0]] if k else [],
            **({"resources": {"uplink": 50}} if name == "fetch" else {}),
        }
        for k, (name, seconds) in enumerate(steps)
    ]
    wf = MaintenanceWorkflow.model_validate(
        {
            "name": "replay-vs-engine",
            "tasks": tasks,
            "rollout": {"strategy": "rolling", "serial": [2, "25%", "100%"], "pause_between_waves": "2m"},
            "windows": {"timezone": "UTC", "cutoff": "5m", "groups": {"web": "Sunday 01:00-05:00", "db": "Sunday 01:00-05:00"}},
            "parallelism": {
                "max_parallel_servers": 8,
                "max_parallel_per_group": 6,
                "pools": [{"name": "uplink", "capacity": 100, "scope": "datacenter"}],
            },
        }
    )  # fmt: skip
    profile = SimProfile.model_validate(
        {
            "default_rules": False,
            "rules": [{"name": n, "match": f"^step-{n}$", "duration": "1s"} for n, _ in steps],
            "durations": {n: {"*": {"lognormal": {"mean": s * 1.08, "sigma": 0.4}}} for n, s in steps},
        }
    )

    async def run(seed: int) -> tuple[dict[str, float], dict[str, float]]:
        clock = current_virtual_clock()
        transport = SimTransport(SimFleet(inv, profile, seed=seed, start=clock.start), clock)
        engine = Engine(inv, transport=transport, clock=clock)
        prepared = engine.prepare(wf)
        result = await engine.drive(prepared)
        plan = prepared.plan
        assert plan is not None
        ends: dict[str, float] = {}
        for r in result.ops.values():
            assert r.end is not None
            ends[r.host] = max(ends.get(r.host, -math.inf), (r.end - plan.origin).total_seconds())
        drawn = {(rec.host, rec.command): rec.duration for rec in transport.trace}
        chains = ordered_chains(plan.problem, plan_order(plan))
        secs = np.array([drawn[(c.host, f"step-{t}")] for c in chains for t in c.tasks])
        end, _, _ = replay(plan.problem, chains, secs, np.zeros(len(secs), dtype=bool))
        return ends, {c.host: e for c, e in zip(chains, end, strict=True)}

    for seed in range(3):
        engine_ends, replayed = run_virtual(run(seed), start=start)
        assert replayed.keys() == engine_ends.keys()
        for host, t in engine_ends.items():
            assert replayed[host] == pytest.approx(t, abs=1e-3), (seed, host)


def test_the_replay_of_a_run_whose_hosts_straddle_the_cutoff_ends_every_host_when_the_engine_did() -> None:
    """Hosts still working at the cutoff wait for the next window (a week later), and there they
    compete for the uplink (one download per datacenter at a time): which of them the window's first
    slots go to decides when each ends. The engine does not serve them in the order they began to
    wait: each sleeps until the window's start on a clock read in whole microseconds, so their timers
    fall due in the order of where each began to wait between two microseconds. The replay follows
    that rule (before, first come first served, it ended some hosts minutes off the engine)."""
    from sysflow.engine.engine import Engine
    from sysflow.model.inventory import Inventory
    from sysflow.model.workflow import MaintenanceWorkflow
    from sysflow.sim import SimFleet, SimProfile, SimTransport, current_virtual_clock, run_virtual

    inv = Inventory()
    for i in range(8):
        inv.add_host(f"web{i:02d}", ["web"], datacenter="ams" if i % 2 else "fra")
    steps = (("pre", 200.0, 0.1), ("fetch", 60.0, 0.4), ("upgrade", 240.0, 0.4), ("verify", 10.0, 0.4))
    tasks = [
        {
            "id": name,
            "run": f"step-{name}",
            "expected_duration": f"{seconds:g}s",
            "depends_on": [steps[k - 1][0]] if k else [],
            **({"resources": {"uplink": 50}} if name == "fetch" else {}),
        }
        for k, (name, seconds, _) in enumerate(steps)
    ]
    wf = MaintenanceWorkflow.model_validate(
        {
            "name": "straddle",
            "tasks": tasks,
            "rollout": {"strategy": "rolling", "serial": ["100%"]},
            "windows": {"timezone": "UTC", "cutoff": "9m", "groups": {"web": "Sunday 01:00-01:12"}},
            "parallelism": {"max_parallel_servers": 8, "pools": [{"name": "uplink", "capacity": 100, "scope": "datacenter"}]},
        }
    )  # fmt: skip
    profile = SimProfile.model_validate(
        {
            "default_rules": False,
            "rules": [{"name": n, "match": f"^step-{n}$", "duration": "1s"} for n, _, _ in steps],
            "durations": {n: {"*": {"lognormal": {"mean": s, "sigma": sg}}} for n, s, sg in steps},
        }
    )

    async def run(seed: int) -> tuple[dict[str, float], dict[str, float], int]:
        clock = current_virtual_clock()
        transport = SimTransport(SimFleet(inv, profile, seed=seed, start=clock.start), clock)
        engine = Engine(inv, transport=transport, clock=clock)
        prepared = engine.prepare(wf)
        result = await engine.drive(prepared)
        plan = prepared.plan
        assert plan is not None
        ends: dict[str, float] = {}
        for r in result.ops.values():
            assert r.end is not None
            ends[r.host] = max(ends.get(r.host, -math.inf), (r.end - plan.origin).total_seconds())
        drawn = {(rec.host, rec.command): rec.duration for rec in transport.trace}
        chains = ordered_chains(plan.problem, plan_order(plan))
        secs = np.array([drawn[(c.host, f"step-{t}")] for c in chains for t in c.tasks])
        end, window, _ = replay(plan.problem, chains, secs, np.zeros(len(secs), dtype=bool))
        return ends, {c.host: e for c, e in zip(chains, end, strict=True)}, min(window)

    start = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    for seed in range(6):
        engine_ends, replayed, first = run_virtual(run(seed), start=start)
        assert first >= 1  # nobody finished in the first window: every host straddled its cutoff
        assert replayed.keys() == engine_ends.keys()
        for host, t in engine_ends.items():
            assert replayed[host] == pytest.approx(t, abs=1e-3), (seed, host)
