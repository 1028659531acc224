"""Planner scale benchmark: greedy and CP-SAT on seeded nominal and tight fleets (issue 4).

Families, built directly as ``PlanningProblem`` values (seeded):

* nominal: a 5-task chain (means 60/30/300/20/10 s, lognormal per task × group as a duration model
  would estimate them), 500 hosts per group, 3 weekly windows of 2-4 h per group over two weeks,
  2+ datacenters, concurrency 200 global / 50 per group / 100 per datacenter, a 1,000 MB/s uplink per
  datacenter used at 50 MB/s by the 300 s upgrade, canary 1 %, 10 %, rest with a 5-minute gate per group;
* tight: the same with 1,000 hosts per group and 2 windows per week (groups need 2-3 windows).

Rows: ``{"family", "hosts", "solver", "seconds", "hosts_done_first_window", "makespan_s",
"lower_bound_s", "ratio", "excess_s"}`` plus ``cpu_seconds`` (the process's CPU time: wall time on a
shared machine is mostly waiting), ``window_ratio`` and a re-planning row per size (30 % done).
``ratio`` is makespan / lower bound, both measured from the horizon start; ``window_ratio`` and
``excess_s`` measure the same gap in window time (see ``sysflow.planner.bounds``);
``first_window_bound`` is an upper bound on ``hosts_done_first_window``. ``greedy-strict`` rows plan
the same fleet under the previous objective (``first_window_slack=0``: every first-window host counts
before the finish), side by side; ``peak_rss_mb`` is the process's peak so far.

    python benchmarks/planner_scale.py --json out.json [--quick] [--time-limit S] [--sizes 1000,10000]
        [--families nominal,tight] [--per-host]
    python benchmarks/planner_scale.py --json big.json --sizes 100000 --families nominal --greedy-only
"""

from __future__ import annotations

import argparse
import json
import math
import random
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

# Run as a script, Python puts benchmarks/ first on sys.path, where sibling scripts could shadow the
# standard library (benchmarks/calendar.py); put the repository root there instead.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from sysflow.planner.bounds import first_window_bound, lower_bound, quality  # noqa: E402
from sysflow.planner.check import check  # noqa: E402
from sysflow.planner.cpsat import solve_cpsat  # noqa: E402
from sysflow.planner.greedy import greedy  # noqa: E402
from sysflow.planner.problem import Chain, PlanningProblem, Resource, ResourceKind, Use, Window  # noqa: E402
from sysflow.planner.solution import Assignment, hosts_done_per_window  # noqa: E402

TASK_MEANS = (60.0, 30.0, 300.0, 20.0, 10.0)
TASKS = ("precheck", "drain", "upgrade", "reboot", "verify")
DAY, WEEK = 86_400, 7 * 86_400


def _windows(rng: random.Random, per_week: int) -> tuple[Window, ...]:
    days = rng.sample(range(7), per_week)
    out = []
    for day in days:
        start = day * DAY + rng.randrange(0, 20) * 3600
        length = rng.choice((2, 3, 4)) * 3600
        for week in range(2):
            s = start + week * WEEK
            out.append(Window(s, s + length - 600, s + length))
    return tuple(sorted(out, key=lambda w: w.start))


def build(family: str, hosts: int, seed: int = 1, per_host: bool = False) -> PlanningProblem:
    """A seeded instance of ``family`` with ``hosts`` hosts (``per_host``: each host its own durations)."""
    rng = random.Random(seed)
    per_group = 500 if family == "nominal" else 1000
    per_week = 3 if family == "nominal" else 2
    groups = max(1, hosts // per_group)
    dcs = max(2, groups // 5)
    resources = [Resource("global", ResourceKind.POOL, 200)]
    resources += [Resource(f"group:g{g}", ResourceKind.POOL, 50) for g in range(groups)]
    resources += [Resource(f"dc:d{d}", ResourceKind.POOL, 100) for d in range(dcs)]
    resources += [
        Resource(f"uplink:d{d}", ResourceKind.POOL, 1000, label=f"d{d} uplink MB/s") for d in range(dcs)
    ]
    chains = []
    for g in range(groups):
        windows = _windows(rng, per_week)
        durations = tuple(max(1, round(rng.lognormvariate(math.log(m) - 0.125, 0.5))) for m in TASK_MEANS)
        d = g % dcs
        base = (Use(0, 1), Use(1 + g, 1), Use(1 + groups + d, 1))
        uplink = Use(1 + groups + dcs + d, 50)
        uses = tuple((*base, uplink) if t == "upgrade" else base for t in TASKS)
        n = per_group if g < groups - 1 else hosts - per_group * (groups - 1)
        cut = (max(1, n // 100), max(2, n // 100 + n // 10))
        for i in range(n):
            host = f"g{g}-h{i}"
            if per_host:
                durations = tuple(
                    max(1, round(rng.lognormvariate(math.log(m) - 0.125, 0.5))) for m in TASK_MEANS
                )
            wave = 0 if i < cut[0] else 1 if i < cut[1] else 2
            chains.append(
                Chain(
                    host=host,
                    group=f"g{g}",
                    datacenter=f"d{d}",
                    wave=wave,
                    stage=f"g{g}",
                    ops=tuple(f"{t}@{host}" for t in TASKS),
                    tasks=TASKS,
                    durations=durations,
                    windows=windows,
                    uses=uses,
                )
            )
    return PlanningProblem(tuple(chains), tuple(resources), gates=(300, 300))


def _row(
    family: str, p: PlanningProblem, solver: str, seconds: float, a: Assignment, cpu: float
) -> dict[str, Any]:
    """One result row. ``ratio`` is makespan / bound, both from the horizon start; ``window_ratio``
    and ``excess_s`` measure the same gap in window time of the stage furthest from its bound."""
    b = lower_bound(p)
    q = quality(p, a, b)
    done = hosts_done_per_window(p, a)
    return {
        "family": family,
        "hosts": p.hosts,
        "solver": solver,
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu, 3),
        "hosts_done_first_window": done[0] if done else 0,
        "first_window_bound": first_window_bound(p),
        "hosts_done_per_window": done,
        "deferred": len(a.deferred),
        "makespan_s": q.makespan,
        "lower_bound_s": b.makespan,
        "ratio": round(q.makespan / b.makespan, 5) if b.makespan else 1.0,
        "window_ratio": round(q.ratio, 4),
        "excess_s": q.excess_s,
        "violations": len(check(p, a)),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _replan_row(family: str, p: PlanningProblem, a: Assignment) -> dict[str, Any]:
    from sysflow.planner.replan import replan_assignment

    ends = sorted(a.end(c) for c in p.chains if c.host in a.starts)
    now = ends[int(len(ends) * 0.3)] if ends else 0
    t0, c0 = time.perf_counter(), time.process_time()
    r = replan_assignment(p, a, now)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    row = _row(family, p, "replan", seconds, r, cpu)
    row["now_s"] = now
    return row


def run(
    sizes: list[int], time_limit: float, families: list[str], per_host: bool = False, cpsat: bool = True
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for family in families:
        for hosts in sizes:
            p = build(family, hosts, per_host=per_host)
            t0, c0 = time.perf_counter(), time.process_time()
            g = greedy(p)
            rows.append(
                _row(family, p, "greedy", time.perf_counter() - t0, g.assignment, time.process_time() - c0)
            )
            _print(rows[-1])
            # The previous objective, side by side: every first-window host counts before the finish.
            strict = replace(p, first_window_slack=0.0)
            t0, c0 = time.perf_counter(), time.process_time()
            gs = greedy(strict)
            rows.append(
                _row(
                    family,
                    strict,
                    "greedy-strict",
                    time.perf_counter() - t0,
                    gs.assignment,
                    time.process_time() - c0,
                )
            )
            _print(rows[-1])
            if not cpsat:
                continue
            t0, c0 = time.perf_counter(), time.process_time()
            c = solve_cpsat(p, time_limit=time_limit, num_workers=2, random_seed=0, baseline=g)
            wall, cpu = time.perf_counter() - t0 + rows[-1]["seconds"], time.process_time() - c0
            row = _row(family, p, "cpsat", wall, c.assignment, cpu + rows[-1]["cpu_seconds"])
            row.update(cpsat_status=c.status, solver_status=c.solver_status, units=c.units)
            rows.append(row)
            _print(row)
            rows.append(_replan_row(family, p, g.assignment))
            _print(rows[-1])
    return rows


def _print(row: dict[str, Any]) -> None:
    keys = ("family", "hosts", "solver", "seconds", "cpu_seconds", "hosts_done_first_window")
    keys = (*keys, "first_window_bound", "deferred")
    extra = ("makespan_s", "lower_bound_s", "ratio", "window_ratio", "excess_s", "violations", "peak_rss_mb")
    print(
        "  ".join(f"{k}={row[k]}" for k in (*keys, *extra)) + f"  {row.get('solver_status', '')}", flush=True
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--quick", action="store_true", help="H = 1,000 and 10,000 only, 5 s CP-SAT")
    ap.add_argument("--time-limit", type=float, default=None, help="CP-SAT seconds (default 10, quick 5)")
    ap.add_argument("--sizes", type=str, default=None, help="comma-separated host counts")
    ap.add_argument("--families", type=str, default="nominal,tight", help="comma-separated families")
    ap.add_argument("--per-host", action="store_true", help="sample durations per host, not per group")
    ap.add_argument(
        "--greedy-only", action="store_true", help="no CP-SAT and no re-plan rows (100,000 hosts)"
    )
    args = ap.parse_args()
    sizes = [1000, 10000] if args.quick else [1000, 10000, 50000]
    if args.sizes:
        sizes = [int(s) for s in args.sizes.split(",")]
    limit = args.time_limit or (5.0 if args.quick else 10.0)
    rows = run(sizes, limit, args.families.split(","), per_host=args.per_host, cpsat=not args.greedy_only)
    args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
