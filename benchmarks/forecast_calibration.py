"""Is the forecast calibrated? Seeded runs of the real engine on the simulator, each forecast first.

Families (each a fleet, a workflow and a simulator profile; the duration model the forecast uses is
what sysflow would have: the workflow's priors plus what an earlier run on the same fleet taught it):

* ``nominal``: log-normal durations (sigma 0.4), priors right, the window roomy;
* ``heavy``: heavy-tailed durations (sigma 1.0 on the long task);
* ``slow_group``: one group 1.5× slower than its prior (the earlier run saw it);
* ``failures``: 3 % of attempts fail, tasks retry twice;
* ``short_window``: a window too short for everyone (hosts spill into the next week's window).

For each run: the forecast (Monte Carlo over the plan, before the run), then the real engine on the
simulator with its own seed. Each forecast uses the model an earlier run of its own taught (a
different seed per forecast). That is what calibration means for a forecast that learns: its
quantiles include its uncertainty about what was learned (the medians and spreads an earlier run
showed are themselves a draw), so "the finish is <= p50 half the time" is a promise averaged over
what earlier runs happen to teach as well as over the run itself. With one fixed training run for
every forecast (``--shared-training``) the coverage is conditional on that one draw of what was
learned: given one training run, the chance that a run finishes by the p50 ranges over training
runs with a standard deviation of about 0.16 (every family), so that mode measures the luck of one
training run as much as the forecast. Reported per family: the fraction of runs whose actual finish
is <= the forecast p90 (target 0.85-0.95) and <= p50 (0.40-0.60), and whose hosts done in the first
window fall inside the forecast's 80 % interval (>= 0.75); plus a reliability diagram (PNG).

It also times a forecast of ``--speed-hosts`` hosts × 5 tasks (plan, Monte Carlo, binding constraint).

``--replay-check`` also replays each run's own durations (the simulator's trace) through the
forecast's replay model and reports how far its finish is from the engine's: 0 says the forecast
executes the plan as the engine does, so a miscalibration is in the sampled durations. Where hosts
still queued for admission at a cutoff wait for the next window together (short_window), the engine
wakes them in its timer heap's order and the replay draws that order: single runs differ (either
way), the median difference stays near 0.

    python benchmarks/forecast_calibration.py [--runs 40] [--hosts 120] [--shared-training]
        [--replay-check] [--json out.json] [--png out.png]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

# Run as a script, this directory is sys.path[0]; its other scripts (calendar.py) would shadow stdlib.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


from sysflow.engine.engine import Engine  # noqa: E402
from sysflow.engine.result import RunResult  # noqa: E402
from sysflow.model.inventory import Inventory  # noqa: E402
from sysflow.model.workflow import MaintenanceWorkflow  # noqa: E402
from sysflow.planner.durations import DurationModel  # noqa: E402
from sysflow.planner.forecast import Distribution, distribution, plan_order  # noqa: E402
from sysflow.planner.montecarlo import ordered_chains, replay  # noqa: E402
from sysflow.planner.plan import Plan  # noqa: E402
from sysflow.sim import SimFleet, SimProfile, SimTransport, current_virtual_clock, run_virtual  # noqa: E402

START = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)  # Saturday; the Sunday window opens 13 h later
TASKS = (("precheck", 30.0), ("download", 60.0), ("upgrade", 240.0), ("restart", 20.0), ("verify", 10.0))
QUANTILES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass(frozen=True)
class Family:
    name: str
    sigma: float = 0.4  # of every task's log duration
    upgrade_sigma: float | None = None  # of the long task's, when heavier
    slow: float = 1.0  # the db group's durations against its prior
    fail: float = 0.0  # probability one attempt fails
    window: str = "Sunday 01:00-05:00"


FAMILIES = {
    "nominal": Family("nominal"),
    "heavy": Family("heavy", upgrade_sigma=1.0),
    "slow_group": Family("slow_group", slow=1.5),
    "failures": Family("failures", fail=0.03),
    "short_window": Family("short_window", window="Sunday 01:00-01:40"),
}


def inventory(hosts: int) -> Inventory:
    inv = Inventory()
    for i in range(hosts):
        group = "db" if i % 4 == 0 else "web"
        inv.add_host(f"{group}{i:04d}", [group], datacenter="ams" if i % 2 else "fra")
    return inv


def workflow(fam: Family, scale: int = 1) -> MaintenanceWorkflow:
    """The family's 5-task rolling workflow; ``scale`` multiplies every limit (for large fleets)."""
    tasks = []
    prev: list[str] = []
    for name, seconds in TASKS:
        task: dict[str, Any] = {"id": name, "run": f"step-{name}", "expected_duration": f"{seconds:g}s"}
        task.update(depends_on=prev, timeout="2h")
        if fam.fail:
            task["retries"] = 2
        if name == "download":
            task["resources"] = {"uplink": 50}
        tasks.append(task)
        prev = [name]
    return MaintenanceWorkflow.model_validate(
        {
            "name": f"calib-{fam.name}",
            "tasks": tasks,
            "rollout": {"strategy": "rolling", "serial": [2, "20%", "100%"], "pause_between_waves": "2m"},
            "windows": {"timezone": "UTC", "cutoff": "5m", "groups": {"web": fam.window, "db": fam.window}},
            "parallelism": {
                "max_parallel_servers": 40 * scale,
                "max_parallel_per_group": 30 * scale,
                "pools": [{"name": "uplink", "capacity": 500 * scale, "scope": "datacenter"}],
            },
        }
    )


def _lognormal(mean_median: float, sigma: float) -> dict[str, Any]:
    """A distribution whose median is ``mean_median`` (the simulator takes the mean)."""
    return {"lognormal": {"mean": mean_median * math.exp(sigma**2 / 2), "sigma": sigma}}


def profile(fam: Family) -> SimProfile:
    rules, durations, failures = [], {}, {}
    for name, seconds in TASKS:
        sigma = fam.upgrade_sigma if (fam.upgrade_sigma and name == "upgrade") else fam.sigma
        rules.append({"name": name, "match": f"^step-{name}$", "duration": "1s"})
        durations[name] = {"web": _lognormal(seconds, sigma), "db": _lognormal(seconds * fam.slow, sigma)}
        if fam.fail:
            failures[name] = fam.fail
    return SimProfile.model_validate(
        {"default_rules": False, "rules": rules, "durations": durations, "failure_probability": failures}
    )


async def _engine_run(
    wf: MaintenanceWorkflow,
    inv: Inventory,
    prof: SimProfile,
    seed: int,
    model: DurationModel | None,
    samples: int,
    check: bool = False,
) -> tuple[RunResult, Distribution | None, DurationModel | None, float | None]:
    clock = current_virtual_clock()
    transport = SimTransport(SimFleet(inv, prof, seed=seed, start=clock.start), clock, record=check)
    engine = Engine(inv, transport=transport, clock=clock, durations=model)
    run = engine.prepare(wf)
    dist = None
    if model is not None and run.plan is not None:
        dist = distribution(
            run.plan, run.durations or model, retries=_retries(wf), samples=samples, seed=seed
        )
    result = await engine.drive(run)
    replayed = _replayed_finish(run.plan, transport) if check and run.plan is not None else None
    return result, dist, run.durations, replayed


def _replayed_finish(plan: Plan, transport: SimTransport) -> float | None:
    """The finish (seconds from START) the forecast's replay model gives on the durations this run
    drew: each operation from its first attempt's start to its last attempt's end (retries and their
    delays included, as the Monte Carlo draws them), failed when its last attempt failed. None when
    an operation of a host that had not failed never ran."""
    span: dict[tuple[str, str], tuple[float, float, bool]] = {}
    for rec in transport.trace:
        first = span.get((rec.host, rec.command), (rec.start, rec.end, False))[0]
        span[(rec.host, rec.command)] = (first, rec.end, rec.exit_status != 0 or rec.error is not None)
    chains = ordered_chains(plan.problem, plan_order(plan))
    secs: list[float] = []
    fails: list[bool] = []
    for c in chains:
        stopped = False  # after a host's failed operation the rest never ran: any duration does
        for t in c.tasks:
            r = span.get((c.host, f"step-{t}"))
            if r is None and not stopped:
                return None
            secs.append(r[1] - r[0] if r is not None else 0.0)
            fails.append(r is not None and r[2])
            stopped = stopped or fails[-1]
    end, _, _ = replay(plan.problem, chains, np.array(secs), np.array(fails, dtype=bool))
    return (plan.origin - START).total_seconds() + max(e for e in end if not math.isnan(e))


def _retries(wf: MaintenanceWorkflow) -> dict[str, tuple[int, float]]:
    return {t.id: (t.retries, 1.0) for t in wf.tasks}


def actual(result: RunResult, first_window_end: datetime) -> tuple[float, int]:
    ends = [r.end for r in result.ops.values() if r.end is not None]
    finish = (max(ends) - START).total_seconds() if ends else math.inf
    last: dict[str, datetime] = {}
    for r in result.ops.values():
        if r.end is not None:
            last[r.host] = max(last.get(r.host, r.end), r.end)
    done = {h for h, t in last.items() if t <= first_window_end}
    complete = {r.host for r in result.ops.values()} - {
        r.host for r in result.ops.values() if r.state.value != "succeeded"
    }
    return finish, len(done & complete)


def _learned(wf: MaintenanceWorkflow, inv: Inventory, prof: SimProfile, seed: int) -> DurationModel:
    """What an earlier run on the same fleet taught the duration model (sysflow keeps it in the store)."""
    _, _, model, _ = run_virtual(_engine_run(wf, inv, prof, seed, None, 0), start=START)
    assert model is not None
    return model


def run_family(
    fam: Family, runs: int, hosts: int, samples: int, shared: bool = False, check: bool = False
) -> dict[str, Any]:
    """``runs`` forecasts, each followed by the real run. Each learns from an earlier run of its own
    (seed ``10_000 + seed``), so their coverage averages over what earlier runs teach, as the
    forecast's stated uncertainty does; or all from the same one (``shared``, seed 10,000), which is
    conditional on what that run happened to teach."""
    wf, inv, prof = workflow(fam), inventory(hosts), profile(fam)
    model = _learned(wf, inv, prof, 10_000)
    rows = []
    for seed in range(runs):
        if not shared and seed:
            model = _learned(wf, inv, prof, 10_000 + seed)
        t0 = time.perf_counter()
        result, dist, _, replayed = run_virtual(
            _engine_run(wf, inv, prof, seed, model, samples, check), start=START
        )
        assert dist is not None
        t1 = time.perf_counter()
        first_end = dist.first_window_end
        finish, done = actual(result, first_end)
        rows.append(
            {
                "seed": seed,
                "finish_s": finish,
                "forecast_s": {str(q): dist.finish_quantile(q) for q in QUANTILES},
                "done_first_window": done,
                "done_interval": list(dist.done_interval(0.8)),
                "seconds": round(t1 - t0, 3),
                **({"replayed_finish_s": replayed} if check else {}),
            }
        )
    return _summary(fam.name, rows)


def _summary(name: str, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows)
    cover = {str(q): sum(r["finish_s"] <= r["forecast_s"][str(q)] for r in rows) / n for q in QUANTILES}
    inside = sum(r["done_interval"][0] <= r["done_first_window"] <= r["done_interval"][1] for r in rows) / n
    checked = [r["finish_s"] - r["replayed_finish_s"] for r in rows if r.get("replayed_finish_s") is not None]
    replay_check = {
        "runs": len(checked),
        "differ": sum(abs(d) > 1e-3 for d in checked),
        "max_abs_s": max((abs(d) for d in checked), default=0.0),
        "median_s": statistics.median(checked) if checked else 0.0,
    }
    return {
        "family": name,
        "runs": n,
        **({"replay_check": replay_check} if any("replayed_finish_s" in r for r in rows) else {}),
        "le_p90": cover["0.9"],
        "le_p50": cover["0.5"],
        "done_in_80pct_interval": inside,
        "coverage": cover,
        "median_run_s": statistics.median(r["seconds"] for r in rows),
        "rows": rows,
    }


def diagram(summaries: Sequence[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 6))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect")
    ax.axhspan(0.85, 0.95, xmin=0.85, xmax=0.95, color="green", alpha=0.15)
    for s in summaries:
        ax.plot(QUANTILES, [s["coverage"][str(q)] for q in QUANTILES], marker="o", label=s["family"])
    ax.set_xlabel("forecast quantile of the finish")
    ax.set_ylabel("fraction of runs finished by it")
    ax.set_title(f"Forecast reliability ({sum(s['runs'] for s in summaries)} simulated runs)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def speed(hosts: int) -> dict[str, Any]:
    """Wall seconds of a forecast of ``hosts`` hosts × 5 tasks: plan, Monte Carlo, binding constraint."""
    from sysflow.planner.build import plan_pair
    from sysflow.planner.forecast import binding_constraint, samples_for, task_retries

    fam = FAMILIES["nominal"]
    wf, inv = workflow(fam, scale=max(1, hosts // 1000)), inventory(hosts)
    model = DurationModel().with_priors({t.id: t.estimate for t in wf.tasks})
    t0 = time.perf_counter()
    (p50,) = plan_pair(wf, inv, start=START, quantiles=(0.5,), durations=model)
    t1 = time.perf_counter()
    n = samples_for(p50)
    dist = distribution(p50, model, retries=task_retries(wf), samples=n)
    t2 = time.perf_counter()
    binding = binding_constraint(p50)
    t3 = time.perf_counter()
    row = {
        "hosts": hosts,
        "operations": sum(len(c.ops) for c in p50.problem.chains),
        "plan_s": round(t1 - t0, 3),
        "monte_carlo_s": round(t2 - t1, 3),
        "samples": n,
        "binding_s": round(t3 - t2, 3),
        "binding": binding,
        "total_s": round(t3 - t0, 3),
        "finish_p50": str(dist.finish_at(0.5)),
        "finish_p90": str(dist.finish_at(0.9)),
    }
    print("speed " + "  ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=40, help="runs per family (5 families)")
    ap.add_argument("--hosts", type=int, default=120)
    ap.add_argument("--samples", type=int, default=200, help="Monte Carlo samples per forecast")
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--speed-hosts", type=int, default=10_000, help="the forecast speed row (0: skip)")
    ap.add_argument(
        "--shared-training", action="store_true",
        help="every forecast learns from the same earlier run (default: each from one of its own)",
    )  # fmt: skip
    ap.add_argument(
        "--replay-check", action="store_true",
        help="also replay each run's own durations through the forecast's model (engine - replay)",
    )  # fmt: skip
    ap.add_argument("--json", type=Path, default=Path("forecast_calibration.json"))
    ap.add_argument("--png", type=Path, default=Path("forecast_calibration.png"))
    args = ap.parse_args()
    out: list[dict[str, Any]] = []
    speed_row = speed(args.speed_hosts) if args.speed_hosts else None
    for name in args.families.split(","):
        s = run_family(
            FAMILIES[name], args.runs, args.hosts, args.samples, args.shared_training, args.replay_check
        )
        out.append(s)
        check = s.get("replay_check")
        extra = (
            f"  replay of the run's own durations: {check['differ']}/{check['runs']} differ, "
            f"engine - replay median {check['median_s']:+.1f} s, max |.| {check['max_abs_s']:.1f} s"
            if check
            else ""
        )
        print(
            f"{name:<13} runs={s['runs']}  finish<=p90 {s['le_p90']:.2f}  finish<=p50 {s['le_p50']:.2f}  "
            f"done-in-window inside 80% interval {s['done_in_80pct_interval']:.2f}  "
            f"(median {s['median_run_s']:.2f} s per forecast+run){extra}",
            flush=True,
        )
    args.json.write_text(json.dumps({"speed": speed_row, "families": out}, indent=1))
    diagram(out, args.png)
    print(f"wrote {args.json} and {args.png}")


if __name__ == "__main__":
    main()
