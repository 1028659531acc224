"""``sysflow run --backend``: the HostPools in this process, in worker processes, or as Ray actors
placed inside each host's network segment, proven from the HostPool that the events name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sysflow.actors.ray_backend import segment_resource
from sysflow.cli.backend import BackendChoice, parse_backend
from sysflow.errors import WorkflowError
from tests.fixtures.ray_cluster import ray_cluster
from tests.fixtures.sshd import SSHD

SYSFLOW = [sys.executable, "-m", "sysflow"]


def test_backend_option_parses_each_form() -> None:
    assert parse_backend("local") == BackendChoice("local")
    assert parse_backend("local").in_process
    assert parse_backend("local=2") == BackendChoice("local", processes=2)
    assert parse_backend("ray=127.0.0.1:6379") == BackendChoice("ray", address="127.0.0.1:6379")
    for bad in ("lokal", "local=x", "local=999", "k8s=1"):
        with pytest.raises(WorkflowError, match="--backend"):
            parse_backend(bad)


def _fleet(tmp: Path, sshd: SSHD, segments: dict[str, str]) -> tuple[Path, Path, Path]:
    config = sshd.write_client_config(tmp / "ssh_config", segments)
    inventory = tmp / "hosts.ini"
    inventory.write_text("[fleet]\n" + "".join(f"{host} segment={seg}\n" for host, seg in segments.items()))
    workflow = tmp / "wf.yaml"
    workflow.write_text(
        "name: rolling\ntasks:\n"
        "  - id: first\n    run: 'echo first > /tmp/sysflow-backend-$PPID'\n"
        "  - id: second\n    run: 'true'\n    depends_on: [first]\n"
        "rollout:\n  strategy: rolling\n  serial: [1, '100%']\n"
    )
    return config, inventory, workflow


def _run(argv: list[str], tmp: Path, **env: str) -> tuple[int, list[dict[str, Any]], str]:
    """The real CLI in a subprocess with --json: exit code, events, stderr."""
    proc = subprocess.run(
        [*SYSFLOW, *argv, "--json", "--state", str(tmp / "state.db")],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, **env},
    )
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return proc.returncode, events, proc.stderr


def _finished(events: list[dict[str, Any]]) -> dict[str, str]:
    """host -> the HostPool (``shard@node``) that ran each of its operations."""
    out: dict[str, str] = {}
    for e in events:
        if e["kind"] == "op_finished":
            assert e["data"]["state"] == "succeeded", e
            where = e["data"]["executor"]
            assert out.setdefault(e["host"], where) == where  # every op of a host: the same pool
    return out


@pytest.mark.ssh
def test_local_worker_processes_run_every_host_through_a_hostpool(sshd: SSHD, tmp_path: Path) -> None:
    hosts = {"h0001": "ams", "h0002": "ams", "h0003": "fra", "h0004": "fra"}
    config, inventory, workflow = _fleet(tmp_path, sshd, hosts)
    argv = ["run", str(workflow), "-i", str(inventory), "--ssh-config", str(config)]
    argv += ["--known-hosts", str(sshd.known_hosts), "--backend", "local=2"]
    code, events, err = _run(argv, tmp_path)
    assert code == 0, (err, [e["message"] for e in events if e["kind"] == "op_finished"])
    pools = _finished(events)
    assert sorted(pools) == sorted(hosts)
    for host, where in pools.items():
        assert where.partition("@")[0] == hosts[host]
    assert len({where.partition("@")[2] for where in pools.values()}) == 2  # a worker per segment
    code, events, err = _run(argv[:-2], tmp_path / "in-process")  # the default: one process
    assert code == 0, err
    assert len({where.partition("@")[2] for where in _finished(events).values()}) == 1


@pytest.mark.ray
@pytest.mark.ssh
@pytest.mark.slow
def test_ray_places_each_segment_on_its_own_nodes_from_the_cli(sshd: SSHD, tmp_path: Path) -> None:
    """Three nodes at 127.0.0.1: ams on the head, fra on two others; each host ran on its segment's node."""
    hosts = {"h0001": "ams", "h0002": "ams", "h0003": "fra", "h0004": "fra", "h0005": "fra"}
    config, inventory, workflow = _fleet(tmp_path, sshd, hosts)
    resources = [{segment_resource("ams"): 1}, {segment_resource("fra"): 1}, {segment_resource("fra"): 1}]
    with ray_cluster(resources) as cluster:
        import ray

        ray.init(address=cluster.address, _node_ip_address="127.0.0.1", log_to_driver=False)
        try:
            offers = {n["NodeID"]: set(n["Resources"]) for n in ray.nodes() if n["Alive"]}
        finally:
            ray.shutdown()
        env = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
        argv = ["run", str(workflow), "-i", str(inventory), "--ssh-config", str(config)]
        argv += ["--known-hosts", str(sshd.known_hosts)]
        code, events, err = _run([*argv, "--backend", f"ray={cluster.address}"], tmp_path, **env)
        assert code == 0, err
        pools = _finished(events)
        assert sorted(pools) == sorted(hosts)
        for host, where in pools.items():
            shard, _, node = where.partition("@")
            assert shard == hosts[host]
            assert segment_resource(hosts[host]) in offers[node], (host, where)

        # a host whose segment no node offers: refused before the first wave, naming it
        inventory.write_text(inventory.read_text() + "h0006 segment=lon\n")
        config = sshd.write_client_config(tmp_path / "ssh_config", [*hosts, "h0006"])
        code, events, err = _run([*argv, "--backend", f"ray={cluster.address}"], tmp_path / "second", **env)
        assert code == 1
        assert "segment:lon (hosts h0006)" in err
        assert "Traceback" not in err
        assert not [e for e in events if e["kind"] == "op_started"]
