"""The app factory: one Starlette app serving the API, the event streams, ``/metrics``, the console.

``create_app(config)`` builds every part (tokens, audit log, hub, workers, metrics) and passes them
to the routes through ``app.state.ctx``; the lifespan stops the workers and closes the files.
Only ``/healthz`` answers without a token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from sysflow.service.api import api_routes, endpoint, error_response
from sysflow.service.auth import Sessions
from sysflow.service.callbacks import callback_routes
from sysflow.service.config import ServiceConfig
from sysflow.service.context import ServiceContext
from sysflow.service.eventlog import FLUSH_EVERY, EventLog
from sysflow.service.hub import EventHub, Published
from sysflow.service.metrics import CONTENT_TYPE, Metrics
from sysflow.service.roles import Action
from sysflow.service.stream import stream_routes
from sysflow.service.tokens import Identity, TokenStore

__all__ = ["SERVER_OPTIONS", "create_app", "openapi"]

# how uvicorn serves the app (``sysflow serve``, the tests, the load benchmark): the sans-I/O
# WebSocket protocol, and no per-message compression of the event stream: deflating each message
# for each watcher cost the service a third of its CPU with 100 clients on a 10,000-host run
SERVER_OPTIONS: dict[str, Any] = {
    "ws": "websockets-sansio",
    "ws_per_message_deflate": False,
    "log_level": "warning",
}

API_VERSION = "v1"

log = logging.getLogger(__name__)


async def healthz(request: Request) -> Response:
    return JSONResponse({"ok": True})


@endpoint(Action.READ)
async def metrics(request: Request, ctx: ServiceContext, who: Identity) -> Any:
    """Prometheus metrics."""
    return Response(ctx.metrics.render(), media_type=CONTENT_TYPE)


def openapi(routes: list[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI document of the API, drawn from the routes (paths, methods, docstrings)."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if isinstance(route, Route) and route.path.startswith("/api/"):
            doc = (route.endpoint.__doc__ or "").strip().splitlines()
            for method in sorted((route.methods or set()) - {"HEAD"}):
                paths.setdefault(route.path, {})[method.lower()] = {
                    "summary": doc[0] if doc else route.name,
                    "security": [{"bearer": []}],
                    "responses": {"200": {"description": "OK"}, "401": {"description": "no valid token"},
                                  "403": {"description": "the token's role may not do this"}},
                }  # fmt: skip
        elif isinstance(route, WebSocketRoute):
            paths.setdefault(route.path, {}).setdefault(
                "get", {"summary": "Event stream (SSE; WebSocket too)"}
            )
    return {
        "openapi": "3.1.0",
        "info": {"title": "sysflow operations service", "version": API_VERSION},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    }


def _audit_observer(ctx_audit: Any, who_of: Any) -> Any:
    """Writes the workers' run events to the service's audit log (one writer), as the run's starter."""
    from sysflow.audit.observer import AuditObserver
    from sysflow.engine.events import Event, EventKind

    kinds = {k.value for k in EventKind}

    def on(item: Published) -> None:
        e = item.event
        if e.get("kind") not in kinds:
            return
        event = Event(EventKind(e["kind"]), item.run_id, datetime.fromisoformat(str(e["at"])), e.get("host"),
                      e.get("task"), e.get("wave"), str(e.get("message", "")), dict(e.get("data") or {}))  # fmt: skip
        AuditObserver(ctx_audit, who=who_of(item.run_id)).on_event(event)

    return on


def create_app(config: ServiceConfig) -> Starlette:
    """The service's ASGI app for ``config``."""
    from sysflow.audit.log import AuditLog
    from sysflow.service.actions import Operations
    from sysflow.service.console import console_routes
    from sysflow.service.workers import Workers

    config.data.mkdir(parents=True, exist_ok=True)
    hub = EventHub(history=config.history, client_queue=config.client_queue, log=EventLog(config.events))
    audit = AuditLog(config.audit_log, who="sysflow-service")
    workers = Workers(hub)
    operations = Operations(config, audit, workers)
    ctx = ServiceContext(
        config, TokenStore(config.tokens), Sessions(), audit, hub, workers, operations, Metrics(hub)
    )
    starters: dict[str, str | None] = {}

    def starter(run: str) -> str | None:
        """Who started ``run``, read from the audit log once per run (not once per event)."""
        if run not in starters:
            starters[run] = operations.starter(run)
        return starters[run]

    hub.observe(_audit_observer(audit, starter))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        flusher = asyncio.create_task(_flush_events(hub))
        try:
            yield
        finally:
            hub.close()
            await workers.stop()
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
            _flush(hub)  # the workers' last events and exits too
            audit.close()
            ctx.tokens.close()

    routes: list[BaseRoute] = [
        Route("/healthz", healthz),
        Route("/metrics", metrics),
        *api_routes(),
        *callback_routes(),  # signed answers to approval webhooks (sysflow.service.callbacks)
        *stream_routes(),
    ]

    @endpoint(Action.READ)
    async def openapi_json(request: Request, ctx: ServiceContext, who: Identity) -> Any:
        """The OpenAPI document of this API."""
        return openapi(routes)

    routes.append(Route("/api/v1/openapi.json", openapi_json))
    routes += [
        *console_routes(),
        Mount("/static", StaticFiles(packages=[("sysflow.service", "static")]), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={404: _not_found})
    app.state.ctx = ctx
    return app


def _flush(hub: EventHub) -> None:
    if hub.log is not None:
        try:
            hub.log.flush()
        except OSError as exc:  # a full disk must not stop the stream; the history on disk lags
            log.error("cannot write the event history: %s", exc)


async def _flush_events(hub: EventHub) -> None:
    """Write the pending events every ``FLUSH_EVERY`` seconds, until cancelled."""
    while True:
        await asyncio.sleep(FLUSH_EVERY)
        _flush(hub)


async def _not_found(request: Request, exc: Exception) -> Response:
    from sysflow.service.actions import NotFound

    return error_response(NotFound(f"no such path: {request.url.path}"))
