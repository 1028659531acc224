"""Benchmark: load and validate a 60,000-host inventory (the size of the largest public Ansible
scale-test inventories), from a static YAML file, a static INI file and a dynamic inventory script.

Each inventory has 60 groups under 3 parents and per-host variables (``ansible_host``, ``rack``);
the script prints the whole listing with ``_meta.hostvars`` in one ``--list``, as a CMDB-backed
script does. "Load" is :func:`sysflow.sources.load_inventory` on the directory; "validate" is what
``sysflow validate`` checks of an inventory (connection variables and secrets) plus every host's
merged variables. Median wall and CPU seconds over ``--repeats``; CPU counts this process and the
children it waited for (the script), so it holds on a shared machine. Target: < 5 s each.

    python benchmarks/inventory_sources.py [--hosts N] [--repeats N] [--json FILE]
"""

from __future__ import annotations

import sys

sys.path[:] = [p for p in sys.path if p not in ("", __file__.rpartition("/")[0] or ".")]

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import yaml  # noqa: E402

from sysflow.model.inventory import Inventory  # noqa: E402
from sysflow.sources import DynamicReader, load_inventory  # noqa: E402

GROUPS = 60
PARENTS = 3


def listing(hosts: int) -> dict[str, Any]:
    """An Ansible ``--list`` answer: groups, parents and ``_meta.hostvars``."""
    out: dict[str, Any] = {"_meta": {"hostvars": {}}}
    for g in range(GROUPS):
        out[f"group{g:02d}"] = {"hosts": [], "vars": {"datacenter": f"dc{g % PARENTS}"}}
    for p in range(PARENTS):
        out[f"region{p}"] = {"children": [f"group{g:02d}" for g in range(p, GROUPS, PARENTS)]}
    for i in range(hosts):
        name = f"h{i:06d}.example.com"
        out[f"group{i % GROUPS:02d}"]["hosts"].append(name)
        out["_meta"]["hostvars"][name] = {
            "ansible_host": f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
            "rack": i // 40,
        }
    return out


def yaml_inventory(data: dict[str, Any]) -> dict[str, Any]:
    hostvars = data["_meta"]["hostvars"]
    children: dict[str, Any] = {}
    for name, body in data.items():
        if name.startswith("group"):
            children[name] = {"hosts": {h: hostvars[h] for h in body["hosts"]}, "vars": body["vars"]}
    regions = {
        k: {"children": dict.fromkeys(v["children"])} for k, v in data.items() if k.startswith("region")
    }
    return {"all": {"children": {**children, **regions}}}


def ini_inventory(data: dict[str, Any]) -> str:
    hostvars, lines = data["_meta"]["hostvars"], []
    for name, body in data.items():
        if name.startswith("group"):
            lines.append(f"[{name}]")
            lines += [" ".join([h, *(f"{k}={v}" for k, v in hostvars[h].items())]) for h in body["hosts"]]
            lines += [f"[{name}:vars]", *(f"{k}={v}" for k, v in body["vars"].items())]
        elif name.startswith("region"):
            lines += [f"[{name}:children]", *body["children"]]
    return "\n".join(lines) + "\n"


def write(root: Path, hosts: int) -> tuple[Path, Path, Path]:
    data = listing(hosts)
    static = root / "static"
    static.mkdir()
    (static / "hosts.yml").write_text(yaml.safe_dump(yaml_inventory(data), sort_keys=False))
    ini = root / "ini"
    ini.mkdir()
    (ini / "hosts.ini").write_text(ini_inventory(data))
    dynamic = root / "dynamic"
    dynamic.mkdir()
    (root / "data.json.src").write_text(json.dumps(data))  # outside the inventory directory
    script = dynamic / "cmdb.py"
    script.write_text(
        f"#!{sys.executable}\nimport sys\nsys.stdout.write(open({str(root / 'data.json.src')!r}).read())\n"
    )
    script.chmod(0o755)
    return static, ini, dynamic


def validate(inventory: Inventory) -> int:
    problems = inventory.connection_problems() + inventory.secret_problems()
    assert not problems, problems[:3]
    return len(inventory.all_host_vars())


def _cpu() -> float:
    """CPU seconds of this process and of the children it waited for (an inventory script)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def measure(path: Path, hosts: int, repeats: int) -> dict[str, Any]:
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), _cpu()
        inventory = load_inventory(path, DynamicReader(cache_dir=path.parent / "cache"))
        count = validate(inventory)
        wall.append(time.perf_counter() - start)
        cpu.append(_cpu() - start_cpu)
        assert count == hosts, (count, hosts)
    return {
        "hosts": hosts,
        "seconds": round(statistics.median(wall), 3),
        "cpu_seconds": round(statistics.median(cpu), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=60_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=Path("inventory_sources.json"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        static, ini, dynamic = write(Path(tmp), args.hosts)
        for kind, path in (("static YAML", static), ("static INI", ini), ("inventory script", dynamic)):
            rows.append({"source": kind, **measure(path, args.hosts, args.repeats)})
    print(f"{'source':<18} {'hosts':>8} {'wall s':>8} {'cpu s':>8}  (load + validate; target < 5 s)")
    for row in rows:
        print(f"{row['source']:<18} {row['hosts']:>8} {row['seconds']:>8} {row['cpu_seconds']:>8}")
    args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
