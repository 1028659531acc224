"""``sysflow demo``: the README's main job, on a simulated fleet of 1,000 hosts in three datacenters.

It generates the fleet (:func:`demo_inventory`, written to ``OUT/inventory.yaml``), loads the demo
workflow (``examples/demo/patching.yaml``), prints the capacity forecast (p50 and p90 plans), writes
the Gantt chart of the p50 plan, runs the real engine on the simulator on virtual time with live
progress and an audit log, checks the audit chain, and prints the verification report's summary.
Everything it writes goes to ``OUT`` (default ``sysflow-demo/``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sysflow.model.inventory import Inventory

__all__ = ["DEMO_START", "DEMO_WORKFLOW", "DemoOptions", "demo_command", "demo_inventory", "inventory_yaml"]

Echo = Callable[[str], None]

DEMO_WORKFLOW = Path(__file__).resolve().parents[2] / "examples" / "demo" / "patching.yaml"
DEMO_START = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)  # a Saturday: the Sunday windows open 13 h later
DATACENTERS = ("ams", "fra", "lon")
ROLES = (("web", "web_servers", 0.60), ("db", "db_servers", 0.15), ("cache", "cache_servers", 0.25))


def demo_inventory(hosts: int = 1000, datacenters: Sequence[str] = DATACENTERS) -> Inventory:
    """``hosts`` hosts: 60 % web, 15 % db, 25 % cache servers, spread round-robin over datacenters."""
    if hosts < len(ROLES):
        raise ValueError(f"--hosts must be at least {len(ROLES)}, not {hosts}")
    inv = Inventory()
    sizes = [max(1, round(hosts * share)) for _, _, share in ROLES]
    sizes[0] = hosts - sum(sizes[1:])
    for (prefix, group, _), size in zip(ROLES, sizes, strict=True):
        for i in range(size):
            dc = datacenters[i % len(datacenters)]
            inv.add_host(f"{prefix}{i + 1:04d}.{dc}.example.com", [group], datacenter=dc)
    return inv


def inventory_yaml(inventory: Inventory) -> str:
    """The inventory in Ansible's YAML format (groups with their hosts and host variables)."""
    import yaml

    children: dict[str, Any] = {}
    for group in sorted(inventory.groups):
        members = inventory.group_hosts(group)
        children[group] = {"hosts": {h: dict(inventory.host(h).vars) or None for h in members}}
    return yaml.safe_dump({"all": {"children": children}}, sort_keys=False)


@dataclass(frozen=True)
class DemoOptions:
    """What ``sysflow demo`` runs and where it writes."""

    out: Path = Path("sysflow-demo")
    hosts: int = 1000
    seed: int = 1
    json_lines: bool = False
    is_terminal: bool = False
    workflow: Path = DEMO_WORKFLOW


def _forecast(wf: Any, inv: Inventory, echo: Echo) -> Any:
    from sysflow.cli.plan import forecast_table
    from sysflow.planner.build import plan_pair
    from sysflow.planner.forecast import forecast

    p50, p90 = plan_pair(wf, inv, start=DEMO_START, quantiles=(0.5, 0.9), horizon=timedelta(days=14))
    echo("== forecast (p50 and p90 plans) ==")
    for line in forecast_table(forecast(p50, p90)):
        echo(line)
    return p50


def _verify_audit(path: Path, echo: Echo) -> bool:
    from sysflow.cli.audit import verify_log

    intact, line = verify_log(path)
    echo(f"audit       {line}")
    return intact


def demo_command(opts: DemoOptions, echo: Echo) -> int:
    """Forecast, Gantt chart, simulated run with progress, verification summary; the exit code."""
    from sysflow.audit.log import remove_log
    from sysflow.cli.gantt_files import write_gantt
    from sysflow.cli.progress import choose_mode
    from sysflow.cli.run import RunSetup, SimOptions, exit_code, result_lines, simulate
    from sysflow.cli.timefmt import display_zone
    from sysflow.model.workflow import MaintenanceWorkflow

    opts.out.mkdir(parents=True, exist_ok=True)
    inv = demo_inventory(opts.hosts)
    (opts.out / "inventory.yaml").write_text(inventory_yaml(inv))
    wf = MaintenanceWorkflow.from_file(opts.workflow)
    dcs = sorted({h.datacenter or "-" for h in inv})
    echo(f"demo        {wf.name} on {len(inv)} simulated hosts in {len(dcs)} datacenters ({', '.join(dcs)})")
    echo(f"wrote       {opts.out / 'inventory.yaml'}")
    plan = _forecast(wf, inv, echo)
    gantt = write_gantt(plan, opts.out / "gantt.html", display_zone(None, wf))
    echo(f"wrote       {gantt} (Gantt chart of the p50 plan)")
    echo("== run (simulated, virtual time) ==")
    audit = opts.out / "audit.db"
    remove_log(audit)  # a fresh log each demo: the database and its signed head
    mode = choose_mode(json_lines=opts.json_lines, is_terminal=opts.is_terminal)
    setup = RunSetup(mode=mode, audit=audit, approve_all=True, who="sysflow-demo")
    result = simulate(wf, inv, SimOptions(seed=opts.seed, start=DEMO_START), setup, plan)
    echo("== result ==")
    for line in result_lines(result):
        echo(line)
    _write_report(result, opts.out, echo)
    intact = _verify_audit(audit, echo)
    return exit_code(result) if intact else 1


def _write_report(result: Any, out: Path, echo: Echo) -> None:
    report = result.verification_results
    if report is None:
        return
    (out / "verification.json").write_text(report.to_json())
    (out / "verification.md").write_text(report.to_markdown())
    echo(f"wrote       {out / 'verification.md'} and verification.json")
