"""The rate a ``copy`` operation's transfer is held to: bandwidth taken from the workflow's pools.

A *bandwidth pool* is a pool whose ``unit`` is a rate (``Mbit/s``, ``Mbps``, ``MB/s``, ``MiB/s``,
...: :func:`bytes_per_second`). An operation uses a pool as the admission controller counts it: its
task's demand (``resources: {uplink: 100}``), else the pool's ``default_demand``, and a pool
restricted to ``groups`` only on hosts of those groups. The admission controller already runs no
more operations at once than a pool holds; :func:`with_bandwidth` puts each copy operation's share
on its :class:`~sysflow.transport.Upload` as a rate (the smallest ``demand x unit`` over the
bandwidth pools it uses), and the transport paces the transfer to it. So 100 of a 1 Gbit/s pool
is at most 100 Mbit/s for that transfer, and the pool's transfers together stay within 1 Gbit/s.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Mapping, Sequence

from sysflow.model.parallelism import PoolSpec
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.planner.graph import OpGraph

__all__ = ["Bandwidth", "bytes_per_second", "with_bandwidth"]

_RATE_UNIT = re.compile(r"(?P<prefix>|[kKmMgGtT]i?)(?P<unit>bits?|b|bytes?|B)(?:/s|ps)")
_SCALE = "KMGT"  # k = 10^3 (Ki = 2^10), M = 10^6 (Mi = 2^20), ...


def bytes_per_second(unit: str | None) -> float | None:
    """Bytes per second of one unit of a pool whose ``unit`` is a rate, else None.

    Bits: ``bit/s``, ``kbit/s``, ``Mbit/s``, ``Gbit/s``, ``Mb/s``, ``Mbps``; bytes: ``B/s``,
    ``kB/s``, ``MB/s``, ``GB/s``, ``MBps``, ``bytes/s``; binary ``KiB/s``, ``MiB/s``, ``Mibit/s``.
    A lowercase ``b`` is a bit, an uppercase ``B`` a byte; the prefixes are decimal whatever their
    case (``mbps`` is ``Mbps``), ``Ki``/``Mi``/``Gi``/``Ti`` powers of 1024. Any other unit: None.
    """
    match = _RATE_UNIT.fullmatch(unit.strip()) if unit else None
    if match is None:
        return None
    prefix, kind = match["prefix"], match["unit"]
    power = _SCALE.index(prefix[0].upper()) + 1 if prefix else 0
    scale = 1024**power if prefix.endswith("i") else 1000**power
    return scale / 8 if kind in ("b", "bit", "bits") else float(scale)


class Bandwidth:
    """The workflow's bandwidth pools and the rate an operation may send at."""

    def __init__(self, pools: Sequence[PoolSpec]) -> None:
        self.pools = [(pool, unit) for pool in pools if (unit := bytes_per_second(pool.unit)) is not None]

    def rate(self, demands: Mapping[str, float], groups: Collection[str]) -> float | None:
        """Bytes per second for an operation with these task ``demands`` on a host of ``groups``
        (None: it uses no bandwidth pool, so nothing bounds it)."""
        rates = [
            demand * unit
            for pool, unit in self.pools
            if (demand := demands.get(pool.name, pool.default_demand)) > 0
            and (pool.groups is None or any(g in pool.groups for g in groups))
        ]
        return min(rates) if rates else None


def with_bandwidth(graph: OpGraph, workflow: MaintenanceWorkflow) -> OpGraph:
    """``graph`` with each copy operation's transfer rate set from the bandwidth pools it uses."""
    bandwidth = Bandwidth(workflow.parallelism.pools)
    if not bandwidth.pools:
        return graph
    ops = dict(graph.ops)
    for oid, op in graph.ops.items():
        if op.upload is None:
            continue
        rate = bandwidth.rate(dict(op.demands), op.groups or (op.group,))
        if rate is not None:
            ops[oid] = dataclasses.replace(op, upload=dataclasses.replace(op.upload, rate=rate))
    return dataclasses.replace(graph, ops=ops)
