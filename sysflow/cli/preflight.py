"""The CLI side of pre-flight: ``--host-keys``, the key file check, running the checks of
:mod:`sysflow.actors.preflight` over the SSH transport a run would use, recording accepted host keys
in the audit log, and the tables ``sysflow run`` (refusal) and ``sysflow ping`` print.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sysflow.cli.views import plural
from sysflow.errors import InventoryError, Problem, SysflowError

if TYPE_CHECKING:
    from sysflow.actors.hostkeys import HostKeyStore
    from sysflow.actors.preflight import HostCheck, PreflightSpec
    from sysflow.cli.run import SSHOptions
    from sysflow.model.inventory import Inventory
    from sysflow.model.workflow import MaintenanceWorkflow

__all__ = [
    "PREFLIGHT_RUN_ID",
    "HostKeyChoice",
    "KeyFileMissing",
    "check_key_file",
    "failure_table",
    "host_key_store",
    "known_hosts_for",
    "ping_lines",
    "record_accepted",
    "refuse_unless_ready",
    "run_preflight",
    "spec_for",
    "with_config_known_hosts",
]

PREFLIGHT_RUN_ID = "preflight"  # the run id of audit records written before a run exists
OFF_WARNING = "warning: --host-keys off: host keys are not checked; anyone on the path can impersonate a host"


class KeyFileMissing(SysflowError, ValueError):
    """``--key FILE`` names no file (checked before any connection): invalid input, exit 1."""


@dataclass(frozen=True)
class HostKeyChoice:
    """``--host-keys`` and where keys live: ``known_hosts`` (default ~/.ssh/known_hosts), and the
    audit log accepted keys are recorded in."""

    policy: str = "strict"
    known_hosts: Path | None = None
    audit: Path | None = None


def check_key_file(key: Path | None) -> None:
    """Refuse a ``--key`` that is not a readable file, in one line naming it."""
    if key is None:
        return
    path = key.expanduser()
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "no such file"
        raise KeyFileMissing(f"--key {key}: {what}; nothing was contacted")


def host_key_store(choice: HostKeyChoice) -> HostKeyStore:
    """The store every connection of this command shares; ``accept-new`` appends to known_hosts."""
    from sysflow.actors.hostkeys import DEFAULT_KNOWN_HOSTS, HostKeyStore

    file = (choice.known_hosts or DEFAULT_KNOWN_HOSTS).expanduser()
    accept = file if choice.policy == "accept-new" else None
    return HostKeyStore(file, policy=choice.policy, accept_new_file=accept)


def spec_for(workflow: MaintenanceWorkflow | None, become: bool = False) -> PreflightSpec:
    """What to check for ``workflow``: sudo when it (or ``--become``) uses become, its free disk."""
    from sysflow.actors.preflight import DiskNeed, PreflightSpec

    uses = become or (workflow is not None and (workflow.become or any(t.become for t in workflow.tasks)))
    need = workflow.preflight.disk if workflow is not None else None
    disk = DiskNeed(need.path, need.min_free) if need is not None else None
    return PreflightSpec(become=bool(uses), disk=disk)


def run_preflight(
    inventory: Inventory,
    hosts: Sequence[str],
    ssh: SSHOptions,
    store: HostKeyStore,
    spec: PreflightSpec,
    *,
    auth: Any = None,
) -> list[HostCheck]:
    """Check ``hosts`` over the SSH transport (the run's auth, ssh_config and host key store)."""
    from sysflow.actors.preflight import preflight
    from sysflow.actors.ssh import SSHTransport
    from sysflow.cli.run import make_auth

    async def go() -> list[HostCheck]:
        def resolve(name: str) -> Any:
            return inventory.connection(name, ssh_config=ssh.ssh_config)

        async with SSHTransport(resolve, auth or make_auth(ssh), known_hosts=store) as transport:
            return await preflight(transport, hosts, spec)

    return asyncio.run(go())


def record_accepted(
    store: HostKeyStore, audit: Path | None, echo: Callable[[str], None], *, run_id: str = PREFLIGHT_RUN_ID
) -> None:
    """Say which host keys were accepted on first use and append each to the audit log (under the
    run that accepted them, or ``preflight`` before a run exists)."""
    accepted = store.accepted()
    if not accepted:
        return
    from sysflow.audit.log import AuditLog

    file = store.accept_file
    log = AuditLog(audit) if audit is not None else None
    try:
        for pattern, fingerprint in sorted(accepted.items()):
            detail = f"{pattern} {fingerprint} appended to {file}"
            echo(f"accepted new host key: {detail}")
            if log is not None:
                log.append(
                    run_id,
                    "host_key_accepted",
                    at=datetime.now(UTC),
                    host=pattern,
                    detail=detail,
                    outcome="accepted",
                )
    finally:
        if log is not None:
            log.close()


def _remedy(check: HostCheck) -> str:
    from sysflow.cli.remedies import remedy_for

    error = f"{type(check.error).__name__}: {check.error}" if check.error is not None else check.problem
    return remedy_for(error, check.exit_status, check.stderr) or "-"


def _problem(check: HostCheck) -> str:
    """The problem without the remedy a host key message carries (the remedy column has it)."""
    return check.problem.split("; ")[0] if check.check == "host key" else check.problem


def failure_table(checks: Sequence[HostCheck]) -> list[str]:
    """The failed hosts as columns host, check, problem, remedy (aligned)."""
    rows = [("HOST", "CHECK", "PROBLEM", "REMEDY")]
    rows += [(c.host, c.check, _problem(c), _remedy(c)) for c in checks if not c.ok]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return [
        "  " + "  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True)) + "  " + row[3]
        for row in rows
    ]


def ping_lines(checks: Sequence[HostCheck]) -> list[str]:
    """``sysflow ping``: one line per host (ok and its round trip, or FAILED, the check and why),
    a remedy line under a failure, then a count."""
    width = max((len(c.host) for c in checks), default=0)
    lines = []
    for c in checks:
        if c.ok:
            lines.append(f"{c.host.ljust(width)}  ok      {c.millis:.0f} ms")
            continue
        lines.append(f"{c.host.ljust(width)}  FAILED  {c.check}: {_problem(c)}")
        remedy = _remedy(c)
        if remedy != "-":
            lines.append(f"{' ' * width}  remedy: {remedy}")
    failed = sum(not c.ok for c in checks)
    lines.append(
        f"{len(checks) - failed} of {len(checks)} hosts ok" + (f", {failed} failed" if failed else "")
    )
    return lines


def with_config_known_hosts(ssh: SSHOptions, inventory: Inventory, hosts: Iterable[str]) -> SSHOptions:
    """``ssh`` with ``known_hosts`` taken from the ssh config's ``UserKnownHostsFile`` when
    ``--known-hosts`` was not given, as ``ssh`` itself would read it (a lab's ssh_config names its
    own file). Hosts naming different files are refused in one line: pass ``--known-hosts``."""
    if ssh.known_hosts is not None:
        return ssh
    chosen: dict[str, str] = {}  # file -> first host naming it
    for host in hosts:
        files = inventory.connection(host, ssh_config=ssh.ssh_config).known_hosts_files
        if files:
            chosen.setdefault(files[0], host)
    if len(chosen) > 1:
        (a, ha), (b, hb) = list(chosen.items())[:2]
        raise InventoryError(
            [Problem(f"UserKnownHostsFile differs between hosts ({ha}: {a}, {hb}: {b}); pass --known-hosts FILE",
                     str(ssh.ssh_config or "~/.ssh/config"))]
        )  # fmt: skip
    return replace(ssh, known_hosts=Path(next(iter(chosen)))) if chosen else ssh


def known_hosts_for(ssh: SSHOptions) -> HostKeyStore | Path | None:
    """What the run's engine checks host keys against: ``--known-hosts`` under ``strict``, else a
    store with the ``--host-keys`` policy (accept-new appends to the same file)."""
    if ssh.host_keys == "strict":
        return ssh.known_hosts
    return host_key_store(HostKeyChoice(ssh.host_keys, ssh.known_hosts))


def refuse_unless_ready(
    workflow: MaintenanceWorkflow,
    inventory: Inventory,
    ssh: SSHOptions,
    audit: Path | None,
    echo: Callable[[str], None],
) -> int | None:
    """Pre-flight before the first wave: None when every target host is ready (or pre-flight is
    off), else print the table of what is wrong and return exit code 1; nothing was started."""
    from sysflow.cli.backend import parse_backend
    from sysflow.cli.become import with_become_passwords
    from sysflow.cli.run import make_auth
    from sysflow.planner.compile import compile_workflow

    if ssh.host_keys == "off":
        echo(OFF_WARNING)
    if not ssh.preflight:
        return None
    if parse_backend(ssh.backend).kind == "ray":  # hosts may be reachable only from their segment's node
        echo(
            f"pre-flight skipped: with --backend {ssh.backend} the hosts are reached from the cluster's nodes"
        )
        return None
    graph = compile_workflow(workflow, inventory)
    hosts = [h for h in [*graph.hosts, *graph.delegates] if h in inventory.hosts]
    store = host_key_store(HostKeyChoice(ssh.host_keys, ssh.known_hosts, audit))
    auth = with_become_passwords(make_auth(ssh), ssh.become_password, lambda: inventory)
    checks = run_preflight(inventory, hosts, ssh, store, spec_for(workflow), auth=auth)
    record_accepted(store, audit, echo)
    failed = [c for c in checks if not c.ok]
    if not failed:
        echo(f"pre-flight: {len(checks)} of {plural(len(checks), 'host')} ready")
        return None
    echo(f"pre-flight: {len(failed)} of {len(checks)} hosts not ready; the run was not started:")
    for line in failure_table(checks):
        echo(line)
    echo("  (skip these checks with --no-preflight)")
    return 1
