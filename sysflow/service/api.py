"""The REST API, ``/api/v1``: thin routes that identify, authorize, call the service's functions,
and answer JSON. Errors are ``{"error": ..., "problems": [...]}`` with 401, 403, 404, 409 or 422."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from sysflow.errors import SysflowError
from sysflow.service.actions import Invalid, NotFound, ServiceError, StartRequest
from sysflow.service.auth import Unauthorized, identify
from sysflow.service.context import ServiceContext
from sysflow.service.library import Kind
from sysflow.service.roles import Action
from sysflow.service.tokens import Identity

__all__ = ["api_routes", "error_response"]

Handler = Callable[[Request, ServiceContext, Identity], Awaitable[Any]]


def error_response(exc: Exception) -> JSONResponse:
    if isinstance(exc, Unauthorized):
        return JSONResponse({"error": str(exc)}, 401, headers={"WWW-Authenticate": "Bearer"})
    status = exc.status if isinstance(exc, ServiceError) else 404
    problems = exc.problems if isinstance(exc, ServiceError) else []
    return JSONResponse({"error": str(exc), "problems": problems}, status)


def endpoint(
    action: Action, *, unsafe: bool = False
) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Identify the caller, check ``action`` for their role (refusals audited), run, answer JSON."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def route(request: Request) -> Response:
            ctx: ServiceContext = request.app.state.ctx
            try:
                who = identify(request, ctx.tokens, ctx.sessions, unsafe=unsafe)
                ctx.operations.authorize(who, action, request.path_params.get("run_id", ""), handler.__name__)
                found = await handler(request, ctx, who)
            except (Unauthorized, ServiceError) as exc:
                return error_response(exc)
            except SysflowError as exc:  # no such run, schedule or file
                return error_response(NotFound(str(exc)))
            return found if isinstance(found, Response) else JSONResponse(found)

        return route

    return wrap


async def _body(request: Request) -> dict[str, Any]:
    try:
        found = await request.json()
    except ValueError:
        raise Invalid("the body is not JSON") from None
    if not isinstance(found, dict):
        raise Invalid("the body must be a JSON object")
    return found


def _thread(fn: Callable[..., Any], *args: Any) -> Awaitable[Any]:
    return asyncio.to_thread(fn, *args)


# -- runs -----------------------------------------------------------------------------------------


@endpoint(Action.READ)
async def list_runs(request: Request, ctx: ServiceContext, who: Identity) -> Any:
    """List runs (newest first); filters: status, workflow."""
    from sysflow.service.runs import run_list

    q = request.query_params
    return {
        "runs": await _thread(
            lambda: run_list(ctx.config.store, status=q.get("status"), workflow=q.get("workflow"))
        )
    }


@endpoint(Action.READ)
async def get_run(request: Request, ctx: ServiceContext, who: Identity) -> Any:
    """One run: waves, hosts, operations with timings and output tails, gates, forecast vs actual."""
    from sysflow.service.runs import run_detail

    return await _thread(run_detail, ctx.config.store, request.path_params["run_id"])


@endpoint(Action.READ)
async def get_host(request: Request, ctx: ServiceContext, who: Identity) -> Any:
    """One host of a run: its operations with timings and outputs."""
    from sysflow.service.runs import host_detail

    p = request.path_params
    return await _thread(host_detail, ctx.config.store, p["run_id"], p["host"])


@endpoint(Action.START, unsafe=True)
async def start_run(request: Request, ctx: ServiceContext, who: Identity) -> Any:
    """Start a run from a stored workflow and inventory (validated first) in a worker process."""
    body = await _body(request)
    try:
        req = StartRequest(str(body["workflow"]), str(body["inventory"]), bool(body.get("simulate", False)),
                           int(body.get("seed", 1)), float(body.get("pace", 0.0)),
                           datetime.fromisoformat(body["start"]) if body.get("start") else None)  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise Invalid(f"a start needs workflow and inventory (names of stored ones): {exc}") from None
    run_id = await ctx.operations.start(who, req)
    return JSONResponse({"run_id": run_id}, 202)


@endpoint(Action.APPROVE, unsafe=True)
async def approve(request: Request, ctx: ServiceContext, who: Identity) -> Any:
    """Approve the gate before a wave (default: the next one), with a comment."""
    body = await _body(request)
    wave = body.get("wave")
    message = await _thread(ctx.operations.approve, who, request.path_params["run_id"],
                            int(wave) if wave else None, str(body.get("comment", "")))  # fmt: skip
    return {"message": message}


@endpoint(Action.APPROVE, unsafe=True)
async def reject(request: Request, ctx: ServiceContext, who: Identity) -> Any:
    """Reject the waiting gate: the run is cancelled, the reason names who and why."""
    body = await _body(request)
    return {
        "message": await _thread(
            ctx.operations.reject, who, request.path_params["run_id"], str(body.get("comment", ""))
        )
    }


def _steer(verb: str) -> Callable[[Request], Awaitable[Response]]:
    async def handler(request: Request, ctx: ServiceContext, who: Identity) -> Any:
        act = getattr(ctx.operations, verb)
        return {"message": await _thread(act, who, request.path_params["run_id"])}

    handler.__name__ = verb
    handler.__doc__ = f"{verb.capitalize()} a run (the same control as `sysflow {verb}`)."
    return endpoint(Action.STEER, unsafe=True)(handler)


# -- schedules, audit, library ---------------------------------------------------------------------


def _schedules(store: Any) -> list[dict[str, Any]]:
    from sysflow.cli.schedule import _upcoming
    from sysflow.engine.store import RunStore
    from sysflow.schedule.schedules import Schedules

    now = datetime.now(UTC)
    with RunStore(store) as rs:
        return [{"name": s.name, "state": s.state.value, "when": s.spec.recurrence.describe(),
                 "workflow_sha256": s.workflow_digest, "inventory_sha256": s.inventory_digest,
                 "next": [t.isoformat() for t in _upcoming(s, now)]} for s in Schedules(rs).list()]  # fmt: skip


@endpoint(Action.READ)
async def list_schedules(request: Request, ctx: ServiceContext, who: Identity) -> Any:
    """Schedules with their state and next occurrences."""
    return {"schedules": await _thread(_schedules, ctx.config.store)}


def _schedule_action(pause: bool) -> Callable[[Request], Awaitable[Response]]:
    async def handler(request: Request, ctx: ServiceContext, who: Identity) -> Any:
        await _thread(
            functools.partial(ctx.operations.schedule, who, request.path_params["name"], pause=pause)
        )
        return {"name": request.path_params["name"], "state": "paused" if pause else "active"}

    handler.__name__ = "schedule_pause" if pause else "schedule_resume"
    handler.__doc__ = f"{'Pause' if pause else 'Resume'} a schedule."
    return endpoint(Action.STEER, unsafe=True)(handler)


@endpoint(Action.READ)
async def audit_query(request: Request, ctx: ServiceContext, who: Identity) -> Any:
    """Audit records; filters: run, host, since (ISO 8601), who (substring), action."""
    q = request.query_params
    try:
        since = datetime.fromisoformat(q["since"]) if q.get("since") else None
    except ValueError:
        raise Invalid(f"since: not an ISO 8601 time: {q['since']!r}") from None
    found = ctx.audit.query(run=q.get("run") or None, host=q.get("host") or None, since=since)
    found = [
        r for r in found if q.get("who", "") in r.who and (not q.get("action") or r.action == q["action"])
    ]
    keys = ("id", "at", "run_id", "who", "action", "host", "task", "detail", "outcome")
    return {"records": [{k: getattr(r, k) for k in keys} for r in found[-int(q.get("limit", 1000)) :]]}


@endpoint(Action.VERIFY)
async def audit_verify(request: Request, ctx: ServiceContext, who: Identity) -> Any:
    """Verify the audit log's chain and signed head."""
    breach = await _thread(ctx.audit.verify)
    return {
        "intact": breach is None,
        "breach": None if breach is None else str(breach),
        "records": ctx.audit.count(),
    }


def _library(kind: Kind) -> list[Route]:
    async def listing(request: Request, ctx: ServiceContext, who: Identity) -> Any:
        return {kind.value: [e.to_dict() for e in ctx.operations.library.list(kind)]}

    async def get(request: Request, ctx: ServiceContext, who: Identity) -> Any:
        entry = ctx.operations.library.get(kind, request.path_params["name"])
        if request.query_params.get("text"):
            return PlainTextResponse(entry.path.read_text(), headers={"X-Sha256": entry.digest})
        return entry.to_dict()

    async def put(request: Request, ctx: ServiceContext, who: Identity) -> Any:
        text = (await request.body()).decode(errors="replace")
        name = request.path_params["name"]
        try:
            entry = await _thread(ctx.operations.library.put, kind, name, text)
        except SysflowError as exc:
            problems = [str(p) for p in getattr(exc, "problems", [])]
            raise Invalid(f"{name}: invalid, {len(problems)} problem(s)", problems) from None
        ctx.operations.audit.append("", f"service.store_{kind.value}", at=datetime.now(UTC), who=who.actor,
                                    detail=f"{name} sha256 {entry.digest}", outcome="ok")  # fmt: skip
        return entry.to_dict()

    listing.__doc__ = f"Stored {kind.value} with their digests."
    get.__doc__ = f"One stored {kind.value} entry (?text=1: its content)."
    put.__doc__ = f"Store (or replace) one of the {kind.value}: the body is the file; checked first."
    base = f"/api/v1/{kind.value}"
    return [
        Route(base, endpoint(Action.READ)(listing), methods=["GET"]),
        Route(base + "/{name}", endpoint(Action.READ)(get), methods=["GET"]),
        Route(base + "/{name}", endpoint(Action.STORE, unsafe=True)(put), methods=["PUT"]),
    ]


def api_routes() -> list[BaseRoute]:
    runs = "/api/v1/runs/{run_id}"
    return [
        Route("/api/v1/runs", list_runs, methods=["GET"]),
        Route("/api/v1/runs", start_run, methods=["POST"]),
        Route(runs, get_run, methods=["GET"]),
        Route(runs + "/hosts/{host}", get_host, methods=["GET"]),
        Route(runs + "/approve", approve, methods=["POST"]),
        Route(runs + "/reject", reject, methods=["POST"]),
        *(Route(f"{runs}/{verb}", _steer(verb), methods=["POST"]) for verb in ("pause", "resume", "cancel")),
        Route("/api/v1/schedules", list_schedules, methods=["GET"]),
        Route("/api/v1/schedules/{name}/pause", _schedule_action(True), methods=["POST"]),
        Route("/api/v1/schedules/{name}/resume", _schedule_action(False), methods=["POST"]),
        Route("/api/v1/audit", audit_query, methods=["GET"]),
        Route("/api/v1/audit/verify", audit_verify, methods=["GET"]),
        *_library(Kind.WORKFLOW),
        *_library(Kind.INVENTORY),
    ]
