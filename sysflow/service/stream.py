"""The live event stream over WebSocket and Server-Sent Events, per run or for every run.

Both resume from an event id: SSE from the ``Last-Event-ID`` header (browsers send it when they
reconnect) or ``?after=ID``; WebSocket from ``?after=ID``. Each event is one JSON object with its
``id``: an SSE message carries one; a WebSocket message carries every event that was waiting for
the client, one per line in id order (NDJSON), so a hundred watchers of a busy run cost a hundred
writes per burst of events, not per event. A client that falls too far behind is dropped with the
reason: a WebSocket is closed with code 4008 and the reason, an SSE stream ends with an
``event: dropped`` message.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from sysflow.service.api import error_response
from sysflow.service.auth import Unauthorized, identify
from sysflow.service.context import ServiceContext
from sysflow.service.hub import Dropped, Subscriber

__all__ = ["DROPPED_CODE", "stream_routes"]

DROPPED_CODE = 4008  # WebSocket close code: dropped by the service (the reason says why)


def _after(conn: HTTPConnection) -> int | None:
    text = conn.headers.get("last-event-id") or conn.query_params.get("after")
    try:
        return int(text) if text else None
    except ValueError:
        return None


async def events_ws(websocket: WebSocket) -> None:
    ctx: ServiceContext = websocket.app.state.ctx
    try:
        identify(websocket, ctx.tokens, ctx.sessions)
    except Unauthorized as exc:
        await websocket.close(code=4001, reason=str(exc))
        return
    await websocket.accept()
    sub = ctx.hub.subscribe(websocket.path_params.get("run_id"), _after(websocket))
    watcher = asyncio.create_task(_watch(websocket, sub))
    try:
        while True:
            await websocket.send_text("\n".join(item.text for item in await sub.next()))
    except Dropped as exc:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):  # unless it went away first
            await websocket.close(code=DROPPED_CODE, reason=str(exc)[:120])
    except (WebSocketDisconnect, RuntimeError):  # the client went away mid-send
        pass
    finally:
        watcher.cancel()
        ctx.hub.unsubscribe(sub)


async def _watch(websocket: WebSocket, sub: Subscriber) -> None:
    """Notice a client that goes away while nothing is sent to it (its subscription ends)."""
    try:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass
    finally:
        sub.drop("the client went away")


async def _sse(sub: Subscriber, ctx: ServiceContext) -> AsyncIterator[str]:
    try:
        yield ": connected\n\n"
        while True:
            batch = await sub.next()
            yield "".join(f"id: {p.id}\ndata: {p.text}\n\n" if p.id else f"data: {p.text}\n\n" for p in batch)
    except Dropped as exc:
        yield f"event: dropped\ndata: {exc}\n\n"
    finally:
        ctx.hub.unsubscribe(sub)


async def events_sse(request: Request) -> Response:
    """Server-Sent Events of one run (or all runs); resumable with Last-Event-ID."""
    ctx: ServiceContext = request.app.state.ctx
    try:
        identify(request, ctx.tokens, ctx.sessions)
    except Unauthorized as exc:
        return error_response(exc)
    sub = ctx.hub.subscribe(request.path_params.get("run_id"), _after(request))
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(_sse(sub, ctx), media_type="text/event-stream", headers=headers)


def stream_routes() -> list[BaseRoute]:
    return [
        Route("/api/v1/events", events_sse, methods=["GET"]),
        WebSocketRoute("/api/v1/events", events_ws),
        Route("/api/v1/runs/{run_id}/events", events_sse, methods=["GET"]),
        WebSocketRoute("/api/v1/runs/{run_id}/events", events_ws),
    ]
