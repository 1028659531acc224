"""The compiled operation graph: one ``Operation`` per host × task, gates between waves.

``planner.compile.compile_workflow(workflow, inventory)`` builds it; the schedulers, the simulator
and the engine read it. It is immutable once built.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sysflow.transport import Download, Reboot, Upload

__all__ = ["Gate", "OpGraph", "Operation", "op_id", "template_host"]


def op_id(host: str, task: str) -> str:
    """The id of the operation running ``task`` on ``host``."""
    return f"{task}@{host}"


@dataclass(frozen=True, slots=True)
class Operation:
    """One task on one host. Run-once tasks have one operation whose ``host`` is the wave's label."""

    id: str
    host: str
    task: str
    wave: int
    index: int  # position in the host's chain (topological order)
    group: str  # the host's primary group: key of the duration model and of per-group limits
    groups: tuple[str, ...]  # every group of the host
    datacenter: str | None
    segment: str | None
    command: str
    expected_duration: float  # seconds, the prior
    timeout: float | None = None
    retries: int = 0
    rollback: str | None = None
    demands: tuple[tuple[str, float], ...] = ()  # (pool name, demand)
    run_once: bool = False
    local: bool = False
    idempotent: bool = False  # safe to repeat after a crash
    check: str | None = None  # exits 0 when the task already took effect (re-check after a crash)
    retry_delay: float | None = None  # seconds before the first command retry (None: the pool's)
    become: str | None = None  # run through sudo as this user (None: as the login user)
    upload: Upload | None = None  # a local file the command may ask to be sent first (``copy``)
    delegate: str | None = None  # the host the command runs on instead of ``host`` (delegate_to)
    reboot: Reboot | None = None  # how the host is rebooted when the command asks (``reboot``)
    download: Download | None = None  # where a file the command stages goes (``fetch``)

    @property
    def where(self) -> str:
        """The host whose connection runs the command: the delegate, else the operation's host."""
        return self.delegate or self.host

    def demand(self, pool: str) -> float:
        for name, amount in self.demands:
            if name == pool:
                return amount
        return 0.0


@dataclass(frozen=True, slots=True)
class Gate:
    """What must hold after wave ``wave`` before wave ``wave + 1`` starts."""

    wave: int
    verification_tasks: tuple[str, ...] = ()
    verifications: tuple[str, ...] = ()
    pause: float = 0.0
    approval: bool = False
    cutover_task: str | None = None  # blue-green: the task that switches traffic after this wave

    @property
    def id(self) -> str:
        return f"gate:{self.wave}"


@dataclass(frozen=True)
class OpGraph:
    """The DAG of op ids and gate ids (its edges; as a NetworkX ``DiGraph`` on demand) plus the
    indexes the schedulers and the engine need. A run needs only each node's predecessors, so the
    ``DiGraph`` (and networkx, 11 MB of imports) is built only for whoever asks for ``graph``."""

    name: str
    edges: tuple[tuple[str, str], ...]
    ops: Mapping[str, Operation]
    chains: Mapping[str, tuple[str, ...]]  # host -> op ids in execution order
    waves: tuple[tuple[str, ...], ...]  # wave -> hosts, in rollout order
    gates: tuple[Gate, ...]
    host_wave: Mapping[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ops)

    @cached_property
    def graph(self) -> Any:  # networkx.DiGraph; Any keeps networkx's untyped API out of strict typing
        """The DAG as a NetworkX ``DiGraph`` (every op and gate a node), built on first use."""
        import networkx as nx

        g = nx.DiGraph()
        g.add_nodes_from(self.ops)
        g.add_nodes_from(gate.id for gate in self.gates)
        g.add_edges_from(self.edges)
        return g

    @cached_property
    def _predecessors(self) -> dict[str, tuple[str, ...]]:
        found: dict[str, list[str]] = {}
        for src, dst in self.edges:
            found.setdefault(dst, []).append(src)
        return {dst: tuple(srcs) for dst, srcs in found.items()}

    def predecessors(self, node: str) -> tuple[str, ...]:
        """What ``node`` (an op or gate id) waits for, in the order the edges were added."""
        return self._predecessors.get(node, ())

    def __iter__(self) -> Iterator[Operation]:
        return iter(self.ops.values())

    @property
    def hosts(self) -> list[str]:
        return [h for wave in self.waves for h in wave]

    @property
    def delegates(self) -> list[str]:
        """Hosts outside the rollout that run delegated steps (a load balancer), in name order."""
        return sorted({op.delegate for op in self.ops.values() if op.delegate is not None})

    def chain(self, host: str) -> list[Operation]:
        """The host's operations in execution order."""
        return [self.ops[i] for i in self.chains.get(host, ())]


def template_host(op: Operation) -> dict[str, Any]:
    """What templates read as ``host``: the operation's host, its groups, datacenter and wave."""
    return {
        "name": op.host,
        "groups": list(op.groups),
        "group": op.group,
        "datacenter": op.datacenter,
        "segment": op.segment,
        "wave": op.wave + 1,
    }
