"""The web console: server-rendered pages (Jinja2, shipped in the package) and one small script.

Log in with a token (a session cookie follows; the token is not kept), then: runs list and start
form, a run page (status, waves, a live host grid with each host's state in words and colour, the
failing hosts with their stderr, the Gantt of plan against actual (server-side SVG), approve/reject/pause/resume/cancel
as the role allows), schedules, audit search. Every change is a plain form post with the session's
CSRF value, so the pages work without the script; the script only makes the run page live.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, quote

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from sysflow.errors import SysflowError
from sysflow.service.actions import ServiceError, StartRequest
from sysflow.service.auth import COOKIE, Session
from sysflow.service.context import ServiceContext
from sysflow.service.gantt import gantt_svg
from sysflow.service.library import Kind
from sysflow.service.roles import Action, allowed

__all__ = ["console_routes"]

_ENV = Environment(loader=PackageLoader("sysflow.service", "templates"), autoescape=select_autoescape())
_ENV.globals["allowed"] = allowed
_ENV.globals["Action"] = Action
Page = Callable[[Request, ServiceContext, Session], Awaitable[Response]]


def _render(name: str, status: int = 200, **values: Any) -> HTMLResponse:
    return HTMLResponse(_ENV.get_template(name).render(**values), status)


def _page(handler: Page) -> Callable[[Request], Awaitable[Response]]:
    async def route(request: Request) -> Response:
        ctx: ServiceContext = request.app.state.ctx
        session = ctx.sessions.get(request.cookies.get(COOKIE))
        if session is None:
            return RedirectResponse(f"/console/login?next={quote(request.url.path)}", 303)
        try:
            return await handler(request, ctx, session)
        except (ServiceError, SysflowError) as exc:
            status = exc.status if isinstance(exc, ServiceError) else 404
            problems = exc.problems if isinstance(exc, ServiceError) else []
            return _render("error.html", status, session=session, message=str(exc), problems=problems)

    return route


async def _form(request: Request, session: Session) -> dict[str, str]:
    """The posted form; a wrong CSRF value is refused."""
    fields = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
    if fields.get("csrf") != session.csrf:
        raise ServiceError("the form is stale or forged (reload the page)")
    return fields


async def login_page(request: Request) -> Response:
    return _render("login.html", session=None, next=request.query_params.get("next", "/console/"), error=None)


async def login(request: Request) -> Response:
    ctx: ServiceContext = request.app.state.ctx
    fields = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
    who = ctx.tokens.identify(fields.get("token", ""))
    target = fields.get("next", "/console/")
    if who is None:
        return _render("login.html", 401, session=None, next=target, error="That token is not valid.")
    session = ctx.sessions.open(who)
    response = RedirectResponse(target if target.startswith("/console/") else "/console/", 303)
    response.set_cookie(
        COOKIE, session.id, httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )
    return response


@_page
async def logout(request: Request, ctx: ServiceContext, session: Session) -> Response:
    await _form(request, session)
    ctx.sessions.close(session.id)
    response = RedirectResponse("/console/login", 303)
    response.delete_cookie(COOKIE)
    return response


@_page
async def runs_page(request: Request, ctx: ServiceContext, session: Session) -> Response:
    from sysflow.service.runs import run_list

    runs = await asyncio.to_thread(run_list, ctx.config.store)
    lib = ctx.operations.library
    return _render("runs.html", session=session, runs=runs,
                   workflows=lib.list(Kind.WORKFLOW), inventories=lib.list(Kind.INVENTORY))  # fmt: skip


@_page
async def start(request: Request, ctx: ServiceContext, session: Session) -> Response:
    f = await _form(request, session)
    req = StartRequest(f.get("workflow", ""), f.get("inventory", ""), f.get("simulate") == "on",
                       int(f.get("seed") or 1), float(f.get("pace") or 0.05),
                       datetime.fromisoformat(f["start"]) if f.get("start") else None)  # fmt: skip
    run_id = await ctx.operations.start(session.identity, req)
    return RedirectResponse(f"/console/runs/{quote(run_id)}", 303)


def _approval(ctx: ServiceContext, run_id: str) -> int | None:
    """The wave (1-based) whose gate waits for approval, from the run's events; None if none does."""
    waiting: int | None = None
    for item in ctx.hub.events(run_id):
        kind, wave = item.event.get("kind"), item.event.get("wave")
        if kind == "approval_requested" and wave is not None:
            waiting = int(wave) + 1
        elif kind in ("approval_given", "run_finished"):
            waiting = None
    return waiting


async def _run_values(ctx: ServiceContext, run_id: str) -> dict[str, Any]:
    from sysflow.service.runs import run_detail

    detail = await asyncio.to_thread(run_detail, ctx.config.store, run_id)
    failing = [h for h in detail["hosts"] if h["state"] in ("failed", "unknown", "rolled_back")]
    gantt = Markup(await asyncio.to_thread(gantt_svg, detail["ops"]))  # built escaped, by gantt_svg
    return {"d": detail, "run_id": run_id, "failing": failing, "waiting": _approval(ctx, run_id), "gantt": gantt,
            "finished": detail["run"]["status"] in ("completed", "completed_with_failures", "failed", "cancelled", "rolled_back")}  # fmt: skip


@_page
async def run_page(request: Request, ctx: ServiceContext, session: Session) -> Response:
    run_id = request.path_params["run_id"]
    values = await _run_values(ctx, run_id)
    return _render("run.html", session=session, last_id=ctx.hub.last_id, **values)


@_page
async def run_panel(request: Request, ctx: ServiceContext, session: Session) -> Response:
    values = await _run_values(ctx, request.path_params["run_id"])
    return _render("panel.html", session=session, **values)


@_page
async def run_action(request: Request, ctx: ServiceContext, session: Session) -> Response:
    f = await _form(request, session)
    run_id, verb, ops, who = (
        request.path_params["run_id"],
        request.path_params["verb"],
        ctx.operations,
        session.identity,
    )
    comment = f.get("comment", "")
    if verb == "approve":
        await asyncio.to_thread(ops.approve, who, run_id, int(f["wave"]) if f.get("wave") else None, comment)
    elif verb == "reject":
        await asyncio.to_thread(ops.reject, who, run_id, comment)
    elif verb in ("pause", "resume", "cancel"):
        await asyncio.to_thread(getattr(ops, verb), who, run_id)
    else:
        raise ServiceError(f"no action {verb!r}")
    return RedirectResponse(f"/console/runs/{quote(run_id)}", 303)


@_page
async def schedules_page(request: Request, ctx: ServiceContext, session: Session) -> Response:
    from sysflow.service.api import _schedules

    found = await asyncio.to_thread(_schedules, ctx.config.store)
    return _render("schedules.html", session=session, schedules=found)


@_page
async def schedule_action(request: Request, ctx: ServiceContext, session: Session) -> Response:
    await _form(request, session)
    p = request.path_params
    await asyncio.to_thread(
        lambda: ctx.operations.schedule(session.identity, p["name"], pause=p["verb"] == "pause")
    )
    return RedirectResponse("/console/schedules", 303)


@_page
async def audit_page(request: Request, ctx: ServiceContext, session: Session) -> Response:
    q = {k: request.query_params.get(k, "") for k in ("run", "host", "who", "action")}
    found = ctx.audit.query(run=q["run"] or None, host=q["host"] or None)
    found = [r for r in found if q["who"] in r.who and (not q["action"] or q["action"] in r.action)][-500:]
    return _render("audit.html", session=session, q=q, records=list(reversed(found)))


async def home(request: Request) -> Response:
    return RedirectResponse("/console/", 303)


def console_routes() -> list[BaseRoute]:
    return [
        Route("/", home),
        Route("/console/login", login_page, methods=["GET"]),
        Route("/console/login", login, methods=["POST"]),
        Route("/console/logout", logout, methods=["POST"]),
        Route("/console/", runs_page),
        Route("/console/start", start, methods=["POST"]),
        Route("/console/runs/{run_id}", run_page),
        Route("/console/runs/{run_id}/panel", run_panel),
        Route("/console/runs/{run_id}/{verb}", run_action, methods=["POST"]),
        Route("/console/schedules", schedules_page),
        Route("/console/schedules/{name}/{verb}", schedule_action, methods=["POST"]),
        Route("/console/audit", audit_page),
    ]
