"""Calendar benchmark: build calendars of 1,000 and 10,000 window specs over a year, then query.

Specs are mixed: 70 % weekly strings (random days and hours, some crossing midnight), 30 % cron +
duration (weekly and daily patterns), spread over 20 IANA time zones (most with daylight saving),
five specs per group, plus 12 blackouts (one-off dates and a recurring weekly freeze). The horizon
is one year. Queries: 1,000,000 ``is_open(group, t)`` at random groups and instants.

Targets (issue 3): 10,000 specs over a year built in under 1 s; 1,000,000 queries in under 2 s.

Wall and CPU (process) time are both reported: on a shared machine the wall figure includes time
spent waiting for a core.

    python benchmarks/calendar.py [--quick] [--json FILE] [--seed N]
"""

from __future__ import annotations

import sys

if __name__ != "__main__":
    # Every script in benchmarks/ runs with this directory first on sys.path, so the standard
    # library's ``import calendar`` (done by email, http.cookiejar, pydantic...) finds this file.
    # Hand the importer the real module: importlib returns whatever sys.modules holds afterwards.
    import importlib.util
    import sysconfig
    from pathlib import Path as _Path

    _spec = importlib.util.spec_from_file_location(
        "calendar", _Path(sysconfig.get_paths()["stdlib"]) / "calendar.py"
    )
    assert _spec is not None and _spec.loader is not None
    _real = importlib.util.module_from_spec(_spec)
    sys.modules["calendar"] = _real
    _spec.loader.exec_module(_real)

import argparse
import json
import platform
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sysflow.model.windows import WindowsConfig

ZONES = [
    "UTC", "Europe/Amsterdam", "Europe/London", "Europe/Berlin", "Europe/Helsinki", "Europe/Lisbon",
    "America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles", "America/Sao_Paulo",
    "America/Santiago", "Asia/Tokyo", "Asia/Kolkata", "Asia/Singapore", "Asia/Tehran",
    "Australia/Sydney", "Australia/Lord_Howe", "Pacific/Auckland", "Africa/Cairo",
]  # fmt: skip
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
START = datetime(2026, 1, 1, tzinfo=UTC)
HORIZON = timedelta(days=365)


def weekly(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.15:
        days = "daily"
    elif kind < 0.35:
        days = "Mon-Fri"
    elif kind < 0.5:
        days = ",".join(sorted(rng.sample(DAYS, 2), key=DAYS.index))
    else:
        days = rng.choice(DAYS)
    start = rng.randrange(0, 24 * 4) * 15
    length = rng.choice([60, 120, 180, 240, 360])
    end = (start + length) % 1440
    return f"{days} {start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"


def cron(rng: random.Random) -> dict[str, Any]:
    dow = rng.choice(["*", "SUN", "SAT", "1-5", "0,6", "3"])
    return {
        "cron": f"{rng.choice([0, 30])} {rng.randrange(24)} * * {dow}",
        "duration": rng.choice(["1h", "2h", "3h"]),
    }


def config(n_specs: int, rng: random.Random) -> WindowsConfig:
    from sysflow.model.windows import WindowsConfig  # here, not at the top: see the import shim

    groups: dict[str, list[Any]] = {}
    for i in range(n_specs):
        spec: dict[str, Any] = {"weekly": weekly(rng)} if rng.random() < 0.7 else cron(rng)
        spec["timezone"] = rng.choice(ZONES)
        if rng.random() < 0.3:
            spec["cutoff"] = "15m"
        groups.setdefault(f"g{i // 5}", []).append(spec)
    blackouts: list[Any] = [f"2026-{m:02d}-{rng.randrange(1, 28):02d}" for m in range(1, 12)]
    blackouts.append({"weekly": "Wed 12:00-12:30", "timezone": "Europe/Amsterdam"})
    return WindowsConfig.model_validate({"timezone": "UTC", "groups": groups, "blackouts": blackouts})


def run(n_specs: int, n_queries: int, seed: int, repeats: int) -> dict[str, Any]:
    from sysflow.constraints import Calendar

    rng = random.Random(seed)
    cfg = config(n_specs, rng)
    builds, build_cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        cal = Calendar.build(cfg, start=START, horizon=HORIZON)
        builds.append(time.perf_counter() - t0)
        build_cpu.append(time.process_time() - c0)
    groups = cal.groups
    span = HORIZON.total_seconds()
    probes = [(rng.choice(groups), START + timedelta(seconds=rng.random() * span)) for _ in range(n_queries)]
    is_open = cal.is_open
    t0, c0 = time.perf_counter(), time.process_time()
    hits = sum(1 for g, t in probes if is_open(g, t))
    query = time.perf_counter() - t0
    query_cpu = time.process_time() - c0
    windows = sum(len(cal.windows(g, START, START + HORIZON)) for g in groups)
    return {
        "specs": n_specs,
        "groups": len(groups),
        "windows": windows,
        "build_s_median": statistics.median(builds),
        "build_s_min": min(builds),
        "build_cpu_s_median": statistics.median(build_cpu),
        "queries": n_queries,
        "query_s": query,
        "query_cpu_s": query_cpu,
        "queries_per_s": n_queries / query,
        "open_fraction": hits / n_queries,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 queries and one build per size")
    parser.add_argument("--json", type=Path, help="write results here")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    n_queries = 100_000 if args.quick else 1_000_000
    repeats = 1 if args.quick else 3
    rows = [run(n, n_queries, args.seed, repeats) for n in (1_000, 10_000)]
    head = ("specs", "groups", "windows", "build s", "build cpu", "queries", "query s", "query cpu", "q/s")
    print(" ".join(f"{h:>10}" for h in head))
    for r in rows:
        print(
            f"{r['specs']:>10} {r['groups']:>10} {r['windows']:>10} {r['build_s_median']:>10.3f} "
            f"{r['build_cpu_s_median']:>10.3f} {r['queries']:>10} {r['query_s']:>10.3f} "
            f"{r['query_cpu_s']:>10.3f} {r['queries_per_s']:>10,.0f}"
        )
    big = rows[-1]
    scale = 1_000_000 / big["queries"]
    verdict = {
        "build_10000_under_1s (wall)": big["build_s_median"] < 1.0,
        "build_10000_under_1s (cpu)": big["build_cpu_s_median"] < 1.0,
        "1M_queries_under_2s (wall)": big["query_s"] * scale < 2.0,
        "1M_queries_under_2s (cpu)": big["query_cpu_s"] * scale < 2.0,
    }
    print(f"targets: {verdict}")
    if args.json:
        meta = {"python": platform.python_version(), "machine": platform.machine(), "quick": args.quick}
        args.json.write_text(
            json.dumps({"benchmark": "calendar", "meta": meta, "rows": rows, "targets": verdict}, indent=2)
        )


if __name__ == "__main__":
    main()
