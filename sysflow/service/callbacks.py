"""Signed answers to approval webhooks: ``/api/v1/callbacks/approval/{name}/{run_id}/{wave}/{decision}``.

The URLs an approval request carries (:mod:`sysflow.engine.approval`) land here. No token: the
HMAC-SHA256 signature in ``sig`` is the credential, checked with the service's key
(``$SYSFLOW_APPROVAL_KEY``, else the file named by ``$SYSFLOW_APPROVAL_KEY_FILE``) together with
``expires``. A GET (a link followed in a chat or a mail client, whose previews fetch links) only
shows what the link would do, with a button; the POST acts, through the same path as the API's
approve and reject (:class:`~sysflow.service.actions.Operations`), as the approver
``webhook:<name>``. A signature that does not verify, or has expired, is refused with 403, and the
refusal is one audit record naming ``webhook:<name>`` and why (never the signature or the key).
"""

from __future__ import annotations

import asyncio
import html
import os
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sysflow.engine.approval import CALLBACK_PATH, KEY_ENV, KEY_FILE_ENV, CallbackRefused, signing_key, verify
from sysflow.service.actions import ServiceError
from sysflow.service.api import error_response
from sysflow.service.context import ServiceContext
from sysflow.service.roles import Role
from sysflow.service.tokens import Identity

__all__ = ["callback_routes"]

ACTION = "service.callback"


class _Webhook(Identity):
    """An approver known by the webhook's name, as the audit log names it: ``webhook:<name>``."""

    __slots__ = ()

    @property
    def actor(self) -> str:
        return self.name


def _fields(request: Request) -> tuple[str, str, int, str, int, str]:
    p, q = request.path_params, request.query_params
    try:
        wave, expires = int(p["wave"]), int(q.get("expires", ""))
    except ValueError:
        raise CallbackRefused("wave and expires must be integers") from None
    return str(p["name"]), str(p["run_id"]), wave, str(p["decision"]), expires, q.get("sig", "")


def _checked(request: Request, ctx: ServiceContext) -> tuple[_Webhook, str, int, str]:
    """The approver, run, wave and decision of a verified answer; CallbackRefused (audited) else."""
    name, run_id, wave, decision, expires, sig = _fields(request)
    who = _Webhook(f"webhook:{name}", "signed-url", Role.APPROVER)
    try:
        key = signing_key(KEY_ENV, os.environ.get(KEY_FILE_ENV))
        verify(key, name, run_id, wave, decision, expires, sig, datetime.now(UTC))
    except CallbackRefused as exc:
        detail = f"{decision} wave {wave}"
        ctx.audit.append(run_id, ACTION, at=datetime.now(UTC), who=who.actor, detail=detail,
                         outcome=f"refused: {exc}")  # fmt: skip
        ctx.audit.flush()
        raise
    return who, run_id, wave, decision


async def answer(request: Request) -> Response:
    """Show (GET) or take (POST) a signed approve/reject answer of an approval webhook."""
    ctx: ServiceContext = request.app.state.ctx
    try:
        who, run_id, wave, decision = await asyncio.to_thread(_checked, request, ctx)
        if request.method == "GET":
            return _confirm_page(run_id, wave, decision)
        comment = f"signed answer of {who.actor}"
        if decision == "approve":
            message = await asyncio.to_thread(ctx.operations.approve, who, run_id, wave, comment)
        else:
            message = await asyncio.to_thread(ctx.operations.reject, who, run_id, comment)
    except CallbackRefused as exc:
        return JSONResponse({"error": f"refused: {exc}", "problems": []}, 403)
    except ServiceError as exc:
        return error_response(exc)
    return JSONResponse({"message": message})


def _confirm_page(run_id: str, wave: int, decision: str) -> HTMLResponse:
    what = html.escape(f"{decision} wave {wave} of run {run_id}")
    body = (f"<!doctype html><title>sysflow: {what}</title><p>{what}?</p>"
            f'<form method="post"><button type="submit">{html.escape(decision)}</button></form>')  # fmt: skip
    return HTMLResponse(body)


def callback_routes() -> list[BaseRoute]:
    return [Route(CALLBACK_PATH + "/{name}/{run_id}/{wave}/{decision}", answer, methods=["GET", "POST"])]
