"""Load on the operations service: N WebSocket clients on a simulated run of H hosts.

Side by side in one run: the same simulated run (fast, virtual time) started through the service
with no stream client, then with N clients on the run's WebSocket. Reports the run's wall time
(start request to the worker's exit) for both and their ratio, and the delivery lag of events to the
clients (receive time minus the time the service relayed the event, p50/p99), and drops.

    python benchmarks/service_load.py --hosts 10000 --clients 100          # the figure
    python benchmarks/service_load.py --hosts 50 --clients 5                # a quick check

Prints a table and writes JSON (--out). Talks only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import websockets

from sysflow.service.app import create_app
from sysflow.service.config import ServiceConfig
from sysflow.service.hub import Published
from sysflow.service.tokens import TokenStore

WORKFLOW = """name: load
tasks:
  - id: patch
    run: apt-get -y upgrade
    expected_duration: 60s
rollout:
  strategy: rolling
  serial: ["10%"]
parallelism:
  max_parallel_servers: 500
"""


def _inventory(hosts: int) -> str:
    return "[fleet]\n" + "".join(f"h{i:05d}\n" for i in range(hosts))


def _serve(root: Path) -> tuple[str, str, uvicorn.Server, dict[int, float]]:
    config = ServiceConfig(store=root / "state.db", data=root / "service", client_queue=1_000_000)
    store = TokenStore(config.tokens)
    token = store.create("bench", "admin")[1]
    store.close()
    app = create_app(config)
    relayed: dict[int, float] = {}
    app.state.ctx.hub.observe(
        lambda p: relayed.__setitem__(p.id, time.time()) if isinstance(p, Published) else None
    )
    # uvicorn binds the port itself (port=0 picks a free one): connections accepted on a socket handed
    # in lack TCP_NODELAY, and small writes (each event) would wait for delayed ACKs
    config_ = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", ws="websockets-sansio")
    server = uvicorn.Server(config_)
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return f"127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}", token, server, relayed


async def _client(
    url: str, token: str, lags: list[float], relayed: dict[int, float], closed: list[str]
) -> None:
    async with websockets.connect(
        url, additional_headers={"Authorization": f"Bearer {token}"}, max_size=None
    ) as ws:
        try:
            async for raw in ws:
                now = time.time()
                event = json.loads(raw)
                if event["id"] in relayed:
                    lags.append(now - relayed[event["id"]])
                if event["kind"] == "worker_exited":
                    return
        except websockets.ConnectionClosed as exc:
            closed.append(str(exc))


async def _one(addr: str, token: str, relayed: dict[int, float], clients: int, name: str) -> dict[str, Any]:
    http = httpx.AsyncClient(
        base_url=f"http://{addr}", headers={"Authorization": f"Bearer {token}"}, timeout=600
    )
    t0 = time.perf_counter()
    found = await http.post("/api/v1/runs", json={"workflow": "load", "inventory": name, "simulate": True})
    found.raise_for_status()
    run_id = found.json()["run_id"]
    lags: list[float] = []
    closed: list[str] = []
    url = f"ws://{addr}/api/v1/runs/{run_id}/events?after=0"
    tasks = [asyncio.create_task(_client(url, token, lags, relayed, closed)) for _ in range(clients)]
    while True:  # the run ends when its worker exits
        runs = (await http.get("/api/v1/runs")).json()["runs"]
        status = next(r for r in runs if r["id"] == run_id)
        if not status["controller_alive"] and status["status"] not in ("pending", "running"):
            break
        await asyncio.sleep(0.2)
    wall = time.perf_counter() - t0
    await asyncio.gather(*tasks)
    await http.aclose()
    lags.sort()

    def q(p: float) -> float:
        return lags[min(len(lags) - 1, int(p * len(lags)))] if lags else float("nan")

    return {"clients": clients, "wall_s": round(wall, 3), "status": status["status"], "events_delivered": len(lags),
            "lag_p50_s": round(q(0.5), 4), "lag_p99_s": round(q(0.99), 4), "dropped": len(closed),
            "lag_mean_s": round(statistics.fmean(lags), 4) if lags else None}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("service_load.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        addr, token, server, relayed = _serve(Path(tmp))
        with httpx.Client(base_url=f"http://{addr}", headers={"Authorization": f"Bearer {token}"}) as http:
            http.put("/api/v1/workflows/load", content=WORKFLOW).raise_for_status()
            for name in ("quiet", "watched"):  # two inventories of the same size: no lease conflict
                http.put(f"/api/v1/inventories/{name}", content=_inventory(args.hosts)).raise_for_status()
        quiet = asyncio.run(_one(addr, token, relayed, 0, "quiet"))
        watched = asyncio.run(_one(addr, token, relayed, args.clients, "watched"))
        server.should_exit = True
    rows = [quiet, watched]
    ratio = watched["wall_s"] / quiet["wall_s"]
    print(f"service load: {args.hosts} simulated hosts, {args.clients} WebSocket clients")
    print(
        f"{'clients':>8} {'wall s':>8} {'events':>9} {'lag p50 s':>10} {'lag p99 s':>10} {'dropped':>8}  status"
    )
    for r in rows:
        print(
            f"{r['clients']:>8} {r['wall_s']:>8.2f} {r['events_delivered']:>9} {r['lag_p50_s']:>10} {r['lag_p99_s']:>10} {r['dropped']:>8}  {r['status']}"
        )
    print(f"wall with clients / without: {ratio:.3f} (target <= 1.10); lag p99 target < 1 s")
    args.out.write_text(
        json.dumps(
            {"hosts": args.hosts, "clients": args.clients, "runs": rows, "wall_ratio": ratio}, indent=2
        )
    )


if __name__ == "__main__":
    main()
