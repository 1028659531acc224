"""``--backend``: where the HostPools of a CLI run live (this process, worker processes, or Ray).

``local`` (the default) keeps every pool in this process; ``local=N`` spreads the shards over ``N``
worker processes; ``ray`` joins a running Ray cluster (``ray=ADDRESS``; ``ray`` alone uses
``RAY_ADDRESS`` or ``auto``) and places one HostPool actor per network segment on a node offering
that segment's resource (``segment:<name>``), so each datacenter's hosts are reached from inside it.
Every pool builds its own SSH transport where it runs, from :class:`SSHShardFactory`: the inventory
and the names of the key file and passphrase variable travel, never a credential.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sysflow.errors import ExecutionError, WorkflowError

if TYPE_CHECKING:
    from sysflow.actors.backends import Backend
    from sysflow.engine.dispatch import BackendRunner
    from sysflow.model.inventory import Inventory
    from sysflow.transport import Transport

__all__ = ["BackendChoice", "SSHShardFactory", "parse_backend", "runner_for"]


@dataclass(frozen=True, slots=True)
class BackendChoice:
    """What ``--backend`` asked for."""

    kind: str  # "local" or "ray"
    processes: int = 0  # local: worker processes (0: this process)
    address: str | None = None  # ray: the cluster's address

    @property
    def in_process(self) -> bool:
        return self.kind == "local" and self.processes == 0


def parse_backend(text: str) -> BackendChoice:
    """``local``, ``local=N``, ``ray`` or ``ray=ADDRESS``; anything else is a usage error."""
    kind, _, arg = text.partition("=")
    if kind == "local":
        if not arg:
            return BackendChoice("local")
        if arg.isdigit() and int(arg) <= 64:
            return BackendChoice("local", processes=int(arg))
        raise WorkflowError(f"--backend local=N takes a number of worker processes (0-64), not {arg!r}")
    if kind == "ray":
        return BackendChoice("ray", address=arg or os.environ.get("RAY_ADDRESS") or "auto")
    raise WorkflowError(f"--backend must be local, local=N, ray or ray=ADDRESS, not {text!r}")


@dataclass(frozen=True)
class SSHShardFactory:
    """Builds a shard's SSH transport where its HostPool runs (picklable: no connection, no secret)."""

    inventory: Inventory
    ssh_config: Path | None = None
    key: Path | None = None
    known_hosts: Path | None = None
    passphrase_env: str | None = None

    def __call__(self) -> Transport:
        from sysflow.actors.auth import SSHAuth
        from sysflow.actors.ssh import SSHTransport

        auth = (
            SSHAuth.from_keyfile(self.key, self.passphrase_env)
            if self.key is not None
            else SSHAuth.from_agent()
        )
        inventory, ssh_config = self.inventory, self.ssh_config
        return SSHTransport(
            lambda name: inventory.connection(name, ssh_config=ssh_config), auth, known_hosts=self.known_hosts
        )


def runner_for(
    choice: BackendChoice, inventory: Inventory, hosts: list[str], factory: SSHShardFactory
) -> BackendRunner:
    """A runner with one shard per segment of ``hosts``, on the chosen backend."""
    from sysflow.actors.backends import LocalBackend, shards_from_inventory
    from sysflow.actors.local import LocalTransport
    from sysflow.engine.dispatch import BackendRunner

    shards = shards_from_inventory(inventory, factory, hosts)
    backend: Backend
    if choice.kind == "ray":
        from sysflow.actors.ray_backend import RayBackend

        backend = RayBackend(address=choice.address, init_kwargs={"log_to_driver": False})
    else:
        backend = LocalBackend(processes=choice.processes)
    if not shards:
        raise ExecutionError("no hosts to run on")
    return BackendRunner(backend, shards, local=LocalTransport())
