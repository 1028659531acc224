"""``sysflow ping PATTERN -i INV``: the pre-flight alone, one line per host.

Connect, authenticate, check the host key, run ``echo ok`` (and ``sudo`` with ``--become``) on
every matched host through the SSH transport a run uses; exit 1 when any host failed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sysflow.actors.hostkeys import HostKeyPolicy
from sysflow.cli.inputs import (
    EXIT_INVALID,
    HostKeysOpt,
    KeyOpt,
    KnownHostsOpt,
    PassphraseEnvOpt,
    SSHConfigOpt,
)

__all__ = ["ping"]


def ping(
    pattern: Annotated[str, typer.Argument(help="Host pattern (web*, a:b, a:&b, a:!b, all).")],
    inventory: Annotated[Path, typer.Option("--inventory", "-i", help="Inventory file.")],
    ssh_config: SSHConfigOpt = None,
    key: KeyOpt = None,
    passphrase_env: PassphraseEnvOpt = None,
    known_hosts: KnownHostsOpt = None,
    host_keys: HostKeysOpt = HostKeyPolicy.STRICT,
    become: Annotated[bool, typer.Option("--become", help="Also check that sudo works.")] = False,
    audit: Annotated[
        Path | None, typer.Option("--audit", help="Audit log that records host keys accepted (accept-new).")
    ] = None,
) -> None:
    """Check that every matched host can be reached, logged into and (with --become) sudo'd.

    Examples:

      sysflow ping 'web*' -i hosts.ini --key ~/.ssh/id_ed25519

      sysflow ping all -i hosts.ini --host-keys accept-new --audit audit.db

    Exit codes: 0 every host ok, 1 a host failed or invalid input, 3 no host matches.
    """
    from sysflow.cli.commands import guard
    from sysflow.cli.preflight import (
        OFF_WARNING,
        HostKeyChoice,
        check_key_file,
        host_key_store,
        ping_lines,
        record_accepted,
        run_preflight,
        spec_for,
        with_config_known_hosts,
    )
    from sysflow.cli.run import SSHOptions
    from sysflow.model.inventory import Inventory

    with guard("ping"):
        check_key_file(key)
        inv = Inventory.load(inventory)
        hosts = inv.select(pattern)
        if not hosts:
            typer.echo(f"error: no host of {inventory} matches {pattern!r}", err=True)
            raise typer.Exit(3)
        if host_keys is HostKeyPolicy.OFF:
            typer.echo(OFF_WARNING, err=True)
        ssh = with_config_known_hosts(SSHOptions(ssh_config, key, known_hosts, passphrase_env), inv, hosts)
        store = host_key_store(HostKeyChoice(host_keys.value, ssh.known_hosts, audit))
        checks = run_preflight(inv, hosts, ssh, store, spec_for(None, become))
        record_accepted(store, audit, typer.echo)
        for line in ping_lines(checks):
            typer.echo(line)
    raise typer.Exit(EXIT_INVALID if any(not c.ok for c in checks) else 0)
