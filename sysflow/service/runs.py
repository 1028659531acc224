"""Reading runs from the run store for the API and the console: lists, detail, hosts, outputs.

Everything here reads the store (the one place every controller writes), so runs started by the
CLI, the scheduler or another service show as well as the service's own.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from sysflow.engine.result import OpRecord
from sysflow.engine.states import OpState

__all__ = ["OUTPUT_TAIL", "host_detail", "run_detail", "run_list"]

OUTPUT_TAIL = 2000  # characters of stdout and stderr the API returns per operation


def run_list(store: Path, *, status: str | None = None, workflow: str | None = None) -> list[dict[str, Any]]:
    """Every run (newest first), optionally of one status or workflow."""
    from sysflow.cli.control import ControlError, run_views

    try:
        views = run_views(store)
    except ControlError:
        return []
    found = [v.to_dict() for v in reversed(views)]
    return [
        r
        for r in found
        if (not status or r["status"] == status) and (not workflow or r["workflow"] == workflow)
    ]


def _op(rec: OpRecord, planned: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "op": rec.op_id, "host": rec.host, "task": rec.task, "wave": rec.wave + 1, "state": rec.state.value,
        "start": rec.start.isoformat() if rec.start else None, "end": rec.end.isoformat() if rec.end else None,
        "duration": rec.duration, "exit_status": rec.exit_status, "error": rec.error or None,
        "attempts": rec.attempts, "stdout": rec.stdout[-OUTPUT_TAIL:], "stderr": rec.stderr[-OUTPUT_TAIL:],
        "planned_start": planned["start"] if planned else None, "planned_end": planned["end"] if planned else None,
        "group": planned.get("group") if planned else None,
        "window_start": planned.get("window_start") if planned else None,
        "window_end": planned.get("window_end") if planned else None,
    }  # fmt: skip


def _planned(store: Any, run_id: str) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """The first plan's operations by id (the forecast), and every plan version with its reason."""
    plans = store.plans(run_id)
    if not plans:
        return {}, []
    first = json.loads(plans[0][2])
    ops = {str(o["op"]): o for o in first.get("ops", [])}
    return ops, [{"version": v, "reason": r} for v, r, _ in plans]


def host_state(records: list[OpRecord]) -> tuple[str, str | None]:
    """A host's state for the grid, and what it is doing (its running task)."""
    states = {r.state for r in records}
    running = [r.task for r in records if r.state is OpState.RUNNING]
    if running:
        return "running", running[0]
    for bad in (OpState.FAILED, OpState.UNKNOWN, OpState.ROLLED_BACK):
        if bad in states:
            return bad.value, None
    if states <= {OpState.SUCCEEDED, OpState.SKIPPED}:
        return ("succeeded" if OpState.SUCCEEDED in states else "skipped"), None
    return ("pending" if states == {OpState.PENDING} else "in_progress"), None


def run_detail(store_path: Path, run_id: str) -> dict[str, Any]:
    """A run: its status, waves with counts, hosts (state, current task, failing output), operations
    with timings and output tails, gates, and the forecast (first plan) beside the actual times."""
    from sysflow.cli.control import run_status_lines, run_views
    from sysflow.engine.store import RunStore

    view = run_views(store_path, run_id)[0]
    hosts_view = json.loads(run_status_lines(store_path, run_id, as_json=True)[0])["hosts"]
    with RunStore(store_path) as store:
        records = list(store.ops(run_id).values())
        planned, plans = _planned(store, run_id)
        gates = store.gates(run_id)
    by_host: dict[str, list[OpRecord]] = {}
    for rec in records:
        by_host.setdefault(rec.host, []).append(rec)
    waves: dict[int, Counter[str]] = {}
    for rec in records:
        waves.setdefault(rec.wave + 1, Counter())[rec.state.value] += 1
    hosts = []
    for hv in hosts_view:
        state, doing = host_state(by_host.get(hv["host"], []))
        failing = [r for r in by_host.get(hv["host"], []) if r.state in (OpState.FAILED, OpState.UNKNOWN)]
        hosts.append({**hv, "state": state, "doing": doing,
                      "stderr": failing[0].stderr[-OUTPUT_TAIL:] if failing else "",
                      "error": failing[0].error if failing else None})  # fmt: skip
    return {
        "run": view.to_dict(),
        "waves": [{"wave": w, "ops": dict(sorted(c.items()))} for w, c in sorted(waves.items())],
        "hosts": hosts,
        "gates": [{"wave": w + 1, "kind": k, "passed": p, "reasons": r} for (w, k), (p, r) in sorted(gates.items())],
        "plans": plans,
        "ops": [_op(r, planned.get(r.op_id)) for r in sorted(records, key=lambda r: (r.wave, r.host, r.op_id))],
    }  # fmt: skip


def host_detail(store_path: Path, run_id: str, host: str) -> dict[str, Any]:
    """One host of a run (a short name finds its full one, as ``sysflow status RUN --host``): its
    operations with timings, the first plan's times and window, and output tails."""
    from sysflow.cli.control import run_status_lines
    from sysflow.engine.store import RunStore

    found: dict[str, Any] = json.loads(run_status_lines(store_path, run_id, host=host, as_json=True)[0])
    with RunStore(store_path) as store:
        records = {r.op_id: r for r in store.ops(run_id).values() if r.host == found["host"]}
        planned, _ = _planned(store, run_id)
    found["ops"] = [
        {**op, **_op(records[op["op"]], planned.get(op["op"]))} if op["op"] in records else op
        for op in found["ops"]
    ]
    return found
