"""A copy operation's transfer rate comes from the bandwidth pools it uses, as admission counts them:
its task's demand (else the pool's default), only where the pool applies, the smallest of several;
pools of other units (slots) and shell tasks are left alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from sysflow.model.inventory import Inventory
from sysflow.model.parallelism import PoolSpec
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.planner.bandwidth import Bandwidth, bytes_per_second
from sysflow.planner.compile import compile_workflow


@pytest.mark.parametrize(
    ("unit", "rate"),
    [
        ("Mbit/s", 125_000),
        ("Mbps", 125_000),
        ("mbps", 125_000),
        ("Mb/s", 125_000),
        ("Gbit/s", 125_000_000),
        ("kbit/s", 125),
        ("bit/s", 0.125),
        ("MB/s", 1_000_000),
        ("MBps", 1_000_000),
        ("bytes/s", 1),
        ("KiB/s", 1024),
        ("MiB/s", 1024**2),
        ("Mibit/s", 1024**2 / 8),
        (" GB/s ", 1e9),
    ],
)
def test_rate_units(unit: str, rate: float) -> None:
    assert bytes_per_second(unit) == pytest.approx(rate)


@pytest.mark.parametrize("unit", [None, "", "slots", "MB", "Mbit", "per second", "xMB/s"])
def test_other_units_are_not_bandwidth(unit: str | None) -> None:
    assert bytes_per_second(unit) is None


def test_the_rate_is_the_demand_times_the_unit_the_smallest_of_the_pools_used() -> None:
    bw = Bandwidth(
        [
            PoolSpec(name="uplink", capacity=1000, unit="Mbit/s"),
            PoolSpec(name="dc_link", capacity=50, unit="MB/s", groups=["fra"], default_demand=5),
            PoolSpec(name="slots", capacity=10, unit="slots", default_demand=1),
        ]
    )
    assert [p.name for p, _ in bw.pools] == ["uplink", "dc_link"]
    assert bw.rate({"uplink": 100}, ["ams"]) == 12_500_000  # 100 Mbit/s
    assert bw.rate({"uplink": 100}, ["fra"]) == 5_000_000  # dc_link's default 5 MB/s is smaller
    assert bw.rate({"uplink": 100, "dc_link": 20}, ["fra"]) == 12_500_000
    assert bw.rate({}, ["ams"]) is None  # no bandwidth pool applies: unbounded
    assert bw.rate({"uplink": 0}, ["ams"]) is None  # zero demand: the pool is not used


def _workflow(src: Path, pools: list[dict[str, object]], resources: dict[str, float]) -> MaintenanceWorkflow:
    wf = MaintenanceWorkflow("push")
    wf.add_task("cfg", copy={"src": str(src), "dest": "/etc/app.conf"}, resources=resources)
    wf.add_task("restart", "echo restart", depends_on=["cfg"], resources=resources)
    wf.set_parallelization({"pools": pools})
    return wf


def _inventory() -> Inventory:
    inventory = Inventory()
    inventory.add_group("fra", ["web1", "web2"])
    inventory.add_group("ams", ["web3"])
    return inventory


def test_compiled_copy_operations_carry_their_rate(tmp_path: Path) -> None:
    src = tmp_path / "app.conf"
    src.write_text("port = 8080\n")
    pools: list[dict[str, object]] = [
        {"name": "uplink", "capacity": 1000, "unit": "Mbit/s"},
        {"name": "fra_link", "capacity": 100, "unit": "Mbit/s", "groups": ["fra"], "default_demand": 10},
    ]
    graph = compile_workflow(_workflow(src, pools, {"uplink": 200}), _inventory())
    rates = {op.host: op.upload.rate for op in graph.ops.values() if op.upload is not None}
    assert rates == {"web1": 1_250_000, "web2": 1_250_000, "web3": 25_000_000}  # fra: 10 of fra_link
    assert all(op.upload is None for op in graph.ops.values() if op.task == "restart")
    upload = graph.ops["cfg@web1"].upload
    assert upload is not None and upload.size == src.stat().st_size


def test_without_a_bandwidth_pool_a_copy_is_unbounded(tmp_path: Path) -> None:
    src = tmp_path / "app.conf"
    src.write_text("port = 8080\n")
    graph = compile_workflow(_workflow(src, [{"name": "slots", "capacity": 2}], {"slots": 1}), _inventory())
    uploads = [op.upload for op in graph.ops.values() if op.upload is not None]
    assert len(uploads) == 3 and all(u.rate is None for u in uploads)
