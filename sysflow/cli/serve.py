"""``sysflow serve`` and ``sysflow service token create|list|revoke``: the operations service.

The service is an optional extra (``pip install 'sysflow-engine[server]'``); without it these
commands say what to install, one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sysflow.cli.commands import guard, store_path
from sysflow.cli.inputs import StateOpt

__all__ = ["register_service", "serve", "service_app"]

service_app = typer.Typer(help="The operations service's tokens.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens: created once, shown once, stored as hashes.", no_args_is_help=True)
service_app.add_typer(token_app, name="token")

DataOpt = Annotated[
    Path | None, typer.Option("--data", help="The service's directory (default: service/ beside the store).")
]


def _config(state: Path | None, data: Path | None, **kw: object) -> object:
    try:
        from sysflow.service.config import ServiceConfig
    except ImportError:  # pragma: no cover - the extra is installed in development
        raise typer.BadParameter("the service needs: pip install 'sysflow-engine[server]'") from None
    store = store_path(state)
    return ServiceConfig(store=store, data=data or store.parent / "service", **kw)  # type: ignore[arg-type]


def serve(
    state: StateOpt = None,
    data: DataOpt = None,
    listen: Annotated[
        str, typer.Option("--listen", help="HOST:PORT (default: loopback).")
    ] = "127.0.0.1:8421",
    cert: Annotated[
        Path | None, typer.Option("--cert", help="TLS certificate (PEM); with --key-file.")
    ] = None,
    key_file: Annotated[Path | None, typer.Option("--tls-key", help="TLS private key (PEM).")] = None,
    audit: Annotated[Path | None, typer.Option("--audit", help="Audit log (default: DATA/audit.db).")] = None,
    ssh_key: Annotated[
        Path | None, typer.Option("--key", help="SSH key the runs use (default: agent).")
    ] = None,
    known_hosts: Annotated[
        Path | None, typer.Option("--known-hosts", help="known_hosts for the runs.")
    ] = None,
    four_eyes: Annotated[
        bool, typer.Option("--four-eyes/--no-four-eyes", help="Whoever started a run may not approve it.")
    ] = True,
) -> None:
    """Serve the REST API, live event stream, web console and /metrics.

    Examples:

      sysflow service token create --name alice --role admin

      sysflow serve --store /srv/sysflow/state.db

      sysflow serve --listen 127.0.0.1:8443 --cert cert.pem --tls-key key.pem

    Then open http://127.0.0.1:8421/console/ and log in with the token.
    """
    import uvicorn

    from sysflow.service.app import SERVER_OPTIONS, create_app

    host, _, port = listen.rpartition(":")
    with guard("serve"):
        if (cert is None) != (key_file is None):
            raise ValueError("TLS needs both --cert and --tls-key")
        config = _config(state, data, audit=audit, key=ssh_key, known_hosts=known_hosts, four_eyes=four_eyes)
        app = create_app(config)  # type: ignore[arg-type]
        scheme = "https" if cert else "http"
        typer.echo(f"sysflow service on {scheme}://{host or '127.0.0.1'}:{port}/console/", err=True)
        uvicorn.run(app, host=host or "127.0.0.1", port=int(port), ssl_certfile=cert, ssl_keyfile=key_file,
                    **SERVER_OPTIONS)  # fmt: skip


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option("--role", help="viewer, operator, approver or admin.")],
    name: Annotated[str, typer.Option("--name", help="Who holds it (named in the audit log).")],
    state: StateOpt = None,
    data: DataOpt = None,
) -> None:
    """Create a token and print it once (only its hash is kept)."""
    from sysflow.service.tokens import TokenStore

    with guard("token create"):
        config = _config(state, data)
        store = TokenStore(config.tokens)  # type: ignore[attr-defined]
        try:
            who, token = store.create(name, role)
        finally:
            store.close()
        typer.echo(token)
        typer.echo(
            f"token {who.token_id} for {who.name}, role {who.role.value}: shown once, keep it safe", err=True
        )


@token_app.command("list")
def token_list(state: StateOpt = None, data: DataOpt = None) -> None:
    """List tokens (ids, names, roles; never the tokens)."""
    from sysflow.service.tokens import TokenStore

    with guard("token list"):
        store = TokenStore(_config(state, data).tokens)  # type: ignore[attr-defined]
        for who, created, revoked in store.list():
            typer.echo(
                f"{who.token_id}  {who.name}  {who.role.value}  {created}{'  revoked' if revoked else ''}"
            )
        store.close()


@token_app.command("revoke")
def token_revoke(token_id: str, state: StateOpt = None, data: DataOpt = None) -> None:
    """Revoke a token by its id."""
    from sysflow.service.tokens import TokenStore

    with guard("token revoke"):
        store = TokenStore(_config(state, data).tokens)  # type: ignore[attr-defined]
        found = store.revoke(token_id)
        store.close()
        if not found:
            raise ValueError(f"no token {token_id!r}")
        typer.echo(f"token {token_id} revoked")


def register_service(app: typer.Typer) -> None:
    """Add ``serve`` and ``service`` to the root app."""
    app.command("serve")(serve)
    app.add_typer(service_app, name="service")
