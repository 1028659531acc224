"""Simulated fleet on a virtual clock: durations, failures, partitions; a transport and a loop.

* :mod:`sysflow.sim.loop`: ``VirtualTimeLoop`` (asyncio on virtual time), ``VirtualClock``,
  ``run_virtual``;
* :mod:`sysflow.sim.profile`: ``SimProfile`` and its parts (what users write, YAML-loadable);
* :mod:`sysflow.sim.fleet`: ``SimFleet``, hosts with state changed by command rules;
* :mod:`sysflow.sim.rules`: the default rule set of the patching workflow;
* :mod:`sysflow.sim.transport`: ``SimTransport``, the ``Transport`` seam on the simulator;
* :mod:`sysflow.sim.replay`: ``Trace``: record a run's durations and outcomes, replay them.

The simulator knows nothing of the engine: it provides a transport and a clock.
"""

from sysflow.sim.fleet import SimFleet
from sysflow.sim.loop import VirtualClock, VirtualTimeLoop, current_virtual_clock, run_virtual
from sysflow.sim.profile import (
    Effect,
    Empirical,
    Failure,
    Fixed,
    Flap,
    HostFault,
    LogNormal,
    Partition,
    Rule,
    SimProfile,
)
from sysflow.sim.replay import Trace, TraceRecord, replay_fleet
from sysflow.sim.rules import DEFAULT_RULES
from sysflow.sim.state import HostState
from sysflow.sim.transport import SimTransport

__all__ = [
    "DEFAULT_RULES",
    "Effect",
    "Empirical",
    "Failure",
    "Fixed",
    "Flap",
    "HostFault",
    "HostState",
    "LogNormal",
    "Partition",
    "Rule",
    "SimFleet",
    "SimProfile",
    "SimTransport",
    "Trace",
    "TraceRecord",
    "VirtualClock",
    "VirtualTimeLoop",
    "current_virtual_clock",
    "replay_fleet",
    "run_virtual",
]
