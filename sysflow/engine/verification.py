"""Wires ``sysflow.verify`` into a run: snapshots around tasks, a verdict per host, gates per wave.

A host whose checks fail is a failed host (it counts against the wave's threshold like a failed
command); a gate fails when the verifier finds a failure on a host not already counted, drift, or
cannot decide (inconclusive is treated as "do not proceed").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sysflow.clock import Clock
from sysflow.model.inventory import Inventory
from sysflow.model.verification import VerificationSpec
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.transport import Transport
from sysflow.verify.compare import Outcome
from sysflow.verify.gate import Verifier

__all__ = ["VerificationHooks"]


class VerificationHooks:
    """The engine's ``Hooks`` over a :class:`~sysflow.verify.gate.Verifier`."""

    def __init__(
        self, workflow: MaintenanceWorkflow, inventory: Inventory, transport: Transport, clock: Clock
    ) -> None:
        targets = {name: set(inventory.select(spec.targets)) for name, spec in workflow.verifications.items()}
        by_spec = {id(spec): targets[name] for name, spec in workflow.verifications.items()}

        def applies(host: str, spec: VerificationSpec) -> bool:
            return host in by_spec.get(id(spec), ())

        self.verifier = Verifier(transport, workflow.verifications, clock=clock, applies=applies)
        self._failed: set[str] = set()

    async def before(self, host: str, task: str) -> None:
        await self.verifier.before(host, task)

    async def after(self, host: str, task: str) -> None:
        await self.verifier.after(host, task)

    async def host_done(self, host: str) -> list[str]:
        """Judge the host; the reasons of every failed or inconclusive check."""
        verdicts = await self.verifier.verify(host)
        bad = [v for v in verdicts if v.passed is not Outcome.PASS]
        if bad:
            self._failed.add(host)
        return [f"{v.verification}/{v.check} {v.passed.value}: {v.reason}" for v in bad]

    async def gate(self, wave: int, hosts: Sequence[str]) -> tuple[bool | None, list[str]]:
        verdict = await self.verifier.gate(hosts)
        if verdict.outcome is Outcome.PASS:
            return True, list(verdict.reasons)
        counted = {h for h in hosts if h in self._failed}
        uncounted = [r for r in verdict.reasons if r.split(":", 1)[0] not in counted]
        if not uncounted:
            return True, list(verdict.reasons)
        return (False if verdict.outcome is Outcome.FAIL else None), uncounted

    def report(self) -> Any:
        return self.verifier.report()
