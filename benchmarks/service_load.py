"""Load on the operations service: N WebSocket clients on a simulated run of H hosts.

Side by side in one run: the same simulated run (fast, virtual time) started through the service
with no stream client, then with N clients on the service's WebSocket, in pairs (``--pairs``,
quiet and watched alternating), after a 10-host run that is not counted (the service's first run
pays for imports). Reports each run's wall time (the start request to its worker's exit
event) and the ratio watched / quiet (median of the pairs), and the delivery lag of events to the
clients (the time a client received an event minus the time the service relayed it from the worker,
p50/p99 over every event and client), clients dropped, and the CPU seconds of the run's worker, of
the service (this process: uvicorn, the hub) and of the client processes.

The service (uvicorn, the hub, the worker it starts) runs as it would in production; the clients
run in their own processes (``--client-procs``), as browsers would be elsewhere, each connected to
the all-runs stream before the run starts. A client notes, per message, the ids of its first and last
event (each line starts ``{"id": N, ``; one run at a time, so the ids in between are consecutive, and
the client checks that the count of lines agrees) and when it came, so that the clients take as little
CPU from the two cores the run needs as a client can.

    python benchmarks/service_load.py --hosts 10000 --clients 100          # the figure
    python benchmarks/service_load.py --hosts 50 --clients 5 --pairs 1     # a quick check

Prints a table and writes JSON (--out). Talks only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn
import websockets

from sysflow.service.app import SERVER_OPTIONS, create_app
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


class Relays:
    """What the service did, seen from inside it: when it relayed each event, when runs' workers exited."""

    def __init__(self) -> None:
        self.at: dict[int, float] = {}
        self.exited: dict[str, float] = {}

    def __call__(self, p: Published) -> None:
        now = time.time()
        self.at[p.id] = now
        if p.event.get("kind") == "worker_exited":
            self.exited[p.run_id] = now


def _serve(root: Path) -> tuple[str, str, uvicorn.Server, Relays]:
    config = ServiceConfig(store=root / "state.db", data=root / "service")
    store = TokenStore(config.tokens)
    token = store.create("bench", "admin")[1]
    store.close()
    app = create_app(config)
    relays = Relays()
    app.state.ctx.hub.observe(relays)
    # uvicorn binds the port itself (port=0 picks a free one): connections accepted on a socket handed
    # in lack TCP_NODELAY, and small writes would wait for delayed ACKs
    config_ = uvicorn.Config(app, host="127.0.0.1", port=0, **SERVER_OPTIONS)  # as sysflow serve has it
    server = uvicorn.Server(config_)
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return f"127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}", token, server, relays


# -- the clients' side (a separate process) -------------------------------------------------------


async def _client(url: str, token: str, got: list[tuple[int, int, float]], closed: list[str]) -> None:
    """One watcher: per message, the ids of its first and last event and when it came."""
    async with websockets.connect(
        url, additional_headers={"Authorization": f"Bearer {token}"}, max_size=None, max_queue=None
    ) as ws:
        print("connected", flush=True)
        try:
            async for raw in ws:
                now = time.time()
                text = str(raw)
                last = text.rfind("\n") + 1  # each line {"id": N, ...}
                first_id = int(text[7 : text.index(",", 7)])
                last_id = int(text[last + 7 : text.index(",", last + 7)])
                if last_id - first_id != text.count("\n"):
                    raise SystemExit(
                        f"ids {first_id}-{last_id} in a message of {text.count(chr(10)) + 1} events"
                    )
                got.append((first_id, last_id, now))
                if '"kind": "worker_exited"' in text[last:]:
                    return
        except websockets.ConnectionClosed as exc:
            closed.append(f"{exc.rcvd.code if exc.rcvd else ''} {exc.rcvd.reason if exc.rcvd else exc}")


async def _clients(url: str, token: str, count: int, out: Path) -> None:
    got: list[tuple[int, int, float]] = []
    closed: list[str] = []
    await asyncio.wait_for(asyncio.gather(*(_client(url, token, got, closed) for _ in range(count))), 3600)
    np.savez(
        out,
        cpu=np.array([time.process_time()]),
        messages=np.array(got, dtype=float).reshape(-1, 3),
        closed=np.array(closed, dtype=str),
    )


# -- the benchmark --------------------------------------------------------------------------------


def _start_clients(addr: str, token: str, clients: int, procs: int, root: Path) -> list[tuple[Any, Path]]:
    """Client processes connected (each client said so) to the all-runs stream, from the next event."""
    started = []
    for k in range(procs):
        share = clients // procs + (1 if k < clients % procs else 0)
        if not share:
            continue
        out = root / f"clients-{k}.npz"
        cmd = [
            sys.executable,
            __file__,
            "--client-process",
            f"ws://{addr}/api/v1/events",
            token,
            str(share),
            str(out),
        ]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        started.append((proc, out, share))
    for proc, _, share in started:
        for _ in range(share):
            line = proc.stdout.readline()
            assert line.strip() == "connected", f"a client process said {line!r}"
    return [(proc, out) for proc, out, _ in started]


def _one(
    addr: str, token: str, relays: Relays, clients: int, procs: int, name: str, root: Path
) -> dict[str, Any]:
    watchers = _start_clients(addr, token, clients, procs, root) if clients else []
    cpu0, children0 = time.process_time(), resource.getrusage(resource.RUSAGE_CHILDREN)
    with httpx.Client(
        base_url=f"http://{addr}", headers={"Authorization": f"Bearer {token}"}, timeout=600
    ) as http:
        t0 = time.time()
        found = http.post("/api/v1/runs", json={"workflow": "load", "inventory": name, "simulate": True})
        found.raise_for_status()
        run_id = found.json()["run_id"]
        deadline = time.monotonic() + 3600
        while run_id not in relays.exited and time.monotonic() < deadline:
            time.sleep(0.01)
        wall = relays.exited[run_id] - t0
        status = http.get(f"/api/v1/runs/{run_id}").json()["run"]["status"]
    service_cpu = time.process_time() - cpu0
    lags: list[float] = []
    closed: list[str] = []
    clients_cpu = 0.0
    messages = 0
    for proc, out in watchers:
        proc.wait(600)
        got = np.load(out)
        clients_cpu += float(got["cpu"][0])
        messages += len(got["messages"])
        for first, last, at in got["messages"]:
            lags.extend(at - relays.at[i] for i in range(int(first), int(last) + 1))
        closed.extend(str(c) for c in got["closed"])
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    worker_cpu = (
        (children.ru_utime + children.ru_stime) - (children0.ru_utime + children0.ru_stime) - clients_cpu
    )
    lag = np.array(lags)
    row = {"clients": clients, "wall_s": round(wall, 3), "status": status, "events_delivered": len(lags), "messages": messages,
           "lag_p50_s": round(float(np.percentile(lag, 50)), 4) if lags else None,
           "lag_p99_s": round(float(np.percentile(lag, 99)), 4) if lags else None,
           "lag_max_s": round(float(lag.max()), 4) if lags else None,
           "dropped": len(closed), "drops": closed[:3], "cpu_s": {"worker": round(worker_cpu, 2),
           "service": round(service_cpu, 2), "clients": round(clients_cpu, 2)}}  # fmt: skip
    print("  ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    return row


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--client-process":
        url, token, count, out = sys.argv[2:6]
        asyncio.run(_clients(url, token, int(count), Path(out)))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--client-procs", type=int, default=2, help="processes the clients are spread over")
    parser.add_argument("--pairs", type=int, default=3, help="quiet/watched pairs (medians)")
    parser.add_argument("--out", type=Path, default=Path("service_load.json"))
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        addr, token, server, relays = _serve(root)
        with httpx.Client(base_url=f"http://{addr}", headers={"Authorization": f"Bearer {token}"}) as http:
            http.put("/api/v1/workflows/load", content=WORKFLOW).raise_for_status()
            for k in range(2 * args.pairs):  # an inventory per run, all of one size: no lease conflict
                http.put(f"/api/v1/inventories/load{k}", content=_inventory(args.hosts)).raise_for_status()
            http.put("/api/v1/inventories/warm", content=_inventory(10)).raise_for_status()
        _one(addr, token, relays, 0, 0, "warm", root)  # imports and first-time work, not measured
        for k in range(args.pairs):
            rows.append(_one(addr, token, relays, 0, 0, f"load{2 * k}", root))
            rows.append(_one(addr, token, relays, args.clients, args.client_procs, f"load{2 * k + 1}", root))
        server.should_exit = True
    quiet = [r for r in rows if not r["clients"]]
    watched = [r for r in rows if r["clients"]]
    ratios = [w["wall_s"] / q["wall_s"] for q, w in zip(quiet, watched, strict=True)]
    lag99 = [w["lag_p99_s"] for w in watched if w["lag_p99_s"] is not None]
    summary = {
        "hosts": args.hosts, "clients": args.clients, "pairs": args.pairs,
        "wall_quiet_s": statistics.median(r["wall_s"] for r in quiet),
        "wall_watched_s": statistics.median(r["wall_s"] for r in watched),
        "wall_ratio_median": round(statistics.median(ratios), 4), "wall_ratios": [round(x, 4) for x in ratios],
        "lag_p99_s_median": statistics.median(lag99) if lag99 else None,
        "dropped": sum(w["dropped"] for w in watched),
    }  # fmt: skip
    print(f"service load: {args.hosts} simulated hosts, {args.clients} WebSocket clients, {args.pairs} pairs")
    print(
        f"{'clients':>8} {'wall s':>8} {'events':>9} {'lag p50 s':>10} {'lag p99 s':>10} {'dropped':>8}  status"
    )
    for r in rows:
        print(
            f"{r['clients']:>8} {r['wall_s']:>8.2f} {r['events_delivered']:>9} {r['lag_p50_s']!s:>10} "
            f"{r['lag_p99_s']!s:>10} {r['dropped']:>8}  {r['status']}"
        )
    print(
        f"wall with clients / without: median {summary['wall_ratio_median']:.3f} of {summary['wall_ratios']} "
        f"(target <= 1.10); lag p99 median {summary['lag_p99_s_median']} s (target < 1 s)"
    )
    args.out.write_text(json.dumps({**summary, "runs": rows}, indent=2))


if __name__ == "__main__":
    main()
