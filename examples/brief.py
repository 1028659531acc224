"""The product brief's Python example, as written, plus a dry run: compile the plan and print it.

    python examples/brief.py            # build and compile; print waves and operations per host
    python examples/brief.py --execute  # also run it (needs real hosts and a key; see the README)

The hosts are placeholders under example.com, so only the dry run works out of the box.
"""

from __future__ import annotations

import sys

import sysflow
from sysflow.planner.compile import compile_workflow


def build() -> tuple[sysflow.Inventory, sysflow.MaintenanceWorkflow]:
    """The brief's inventory and workflow, line for line."""
    inventory = sysflow.Inventory()
    inventory.add_group("web_servers", ["web01.example.com", "web02.example.com", "web03.example.com"])
    inventory.add_group("db_servers", ["db01.example.com", "db02.example.com"])
    inventory.add_group("cache_servers", ["cache01.example.com", "cache02.example.com"])
    workflow = sysflow.MaintenanceWorkflow("os_patching")
    workflow.add_task("backup", "tar -czf /backup/$(hostname)-$(date +%Y%m%d).tar.gz /etc", targets=["*"])
    workflow.add_task("update_repos", "apt-get update", targets=["*"])
    workflow.add_task("upgrade_packages", "apt-get -y upgrade", targets=["*"], depends_on=["update_repos"])
    workflow.add_task("restart_services", "systemctl restart nginx", targets=["web_servers"], depends_on=["upgrade_packages"])  # fmt: skip
    workflow.add_task("verify_web", "curl -s http://localhost/health | grep -q 'OK'", targets=["web_servers"], depends_on=["restart_services"])  # fmt: skip
    workflow.set_progressive_execution({
        "groups": [["web01.example.com"], ["web02.example.com", "web03.example.com"], ["db_servers"], ["cache_servers"]],
        "verification_tasks": ["verify_web"],
        "auto_rollback": True,
    })  # fmt: skip
    workflow.add_verification("verify_package_versions", {
        "before_tasks": ["backup"], "after_tasks": ["upgrade_packages"],
        "commands": {"package_versions": "dpkg -l | grep -E 'openssl|bash|kernel'"},
        "comparisons": {"package_versions": {"type": "regex_match", "pattern": r"ii\s+openssl\s+(\S+)", "expected_change": "version_increase"}},
    })  # fmt: skip
    workflow.set_maintenance_window({"web_servers": "Sunday 01:00-03:00", "db_servers": "Sunday 03:00-05:00", "cache_servers": "Sunday 01:00-05:00"})  # fmt: skip
    workflow.set_parallelization({"max_parallel_servers": 10, "max_parallel_per_group": 5, "delay_between_servers": "2s"})  # fmt: skip
    return inventory, workflow


def main() -> None:
    inventory, workflow = build()
    graph = compile_workflow(workflow, inventory)
    print(f"{workflow.name}: {len(graph)} operations on {len(graph.hosts)} hosts in {len(graph.waves)} waves")
    for n, hosts in enumerate(graph.waves, start=1):
        for host in hosts:
            print(f"  wave {n}  {host:22} {' -> '.join(op.task for op in graph.chain(host))}")
    if "--execute" in sys.argv:
        auth = sysflow.SSHAuth.from_keyfile("/path/to/private_key")
        engine = sysflow.Engine(inventory, auth)
        result = engine.execute(
            workflow
        )  # result.status, .successful_servers, .failed_servers, .verification_results
        print(result.status, result.successful_servers, result.failed_servers)


if __name__ == "__main__":
    main()
