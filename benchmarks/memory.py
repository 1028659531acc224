"""Benchmark: peak memory (RSS) of a simulated run through the CLI, one fresh process per size.

Runs ``sysflow sim examples/demo/patching.yaml --hosts N`` (the demo workflow on the generated
three-datacenter fleet, the real engine on virtual time) for each size and reads the child's peak
resident set from ``wait4`` (``ru_maxrss``). Targets: 1,000 hosts < 100 MB, 10,000 hosts < 400 MB.

A run of ``--baseline`` hosts (default 10) is measured first: its peak is what any run pays (the
interpreter, the imported modules, the CLI), and each size's ``over_baseline_mb`` is what its fleet
adds (plans, records, simulated hosts, the peaks of re-planning).

    python benchmarks/memory.py [--sizes 1000,10000] [--baseline 10] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET_MB = {1000: 100, 10_000: 400}


def measure(hosts: int) -> dict[str, Any]:
    argv = [sys.executable, "-m", "sysflow", "sim", str(ROOT / "examples/demo/patching.yaml")]
    argv += ["--hosts", str(hosts), "--no-approve"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    return {
        "hosts": hosts,
        "exit": os.waitstatus_to_exitcode(status),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux: kilobytes
        "target_mb": TARGET_MB.get(hosts),
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "stderr_tail": stderr.strip().splitlines()[-1:] if stderr.strip() else [],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--baseline", type=int, default=10, help="hosts of the fixed-cost run (0: none)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    base = measure(args.baseline) if args.baseline else None
    rows = [measure(int(n)) for n in args.sizes.split(",")]
    if base is not None:
        print(
            f"sim {base['hosts']:>6} hosts  peak RSS {base['peak_rss_mb']:>7.1f} MB (imports and fixed cost)"
        )
        for r in rows:
            r["over_baseline_mb"] = round(r["peak_rss_mb"] - base["peak_rss_mb"], 1)
    for r in rows:
        notes = [f"target < {r['target_mb']} MB"] if r["target_mb"] else []
        notes += [f"{r['over_baseline_mb']:.1f} over baseline"] if "over_baseline_mb" in r else []
        print(
            f"sim {r['hosts']:>6} hosts  peak RSS {r['peak_rss_mb']:>7.1f} MB ({', '.join(notes)})"
            f"  {r['wall_s']:>6.2f} s wall  {r['cpu_s']:>6.2f} s CPU  exit {r['exit']}"
        )
    if args.json:
        doc = {"benchmark": "memory", "baseline": base, "rows": rows}
        args.json.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
