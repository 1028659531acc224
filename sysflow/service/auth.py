"""Who is asking: a bearer token (API clients), or a console session made by logging in with one.

The console's session is a random id in an HttpOnly, SameSite=Strict cookie, mapped in memory to the
identity (the token itself is not kept, in the cookie or anywhere). Forms and script calls that
change something with a session also carry the session's CSRF value.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from starlette.requests import HTTPConnection

from sysflow.service.tokens import Identity, TokenStore

__all__ = ["COOKIE", "CSRF_HEADER", "Session", "Sessions", "Unauthorized", "identify"]

COOKIE = "sysflow_session"
CSRF_HEADER = "x-sysflow-csrf"


class Unauthorized(Exception):
    """No valid token or session."""


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    identity: Identity
    csrf: str


class Sessions:
    """Console sessions in memory: gone when the service restarts (log in again)."""

    def __init__(self) -> None:
        self._by_id: dict[str, Session] = {}

    def open(self, identity: Identity) -> Session:
        session = Session(secrets.token_urlsafe(32), identity, secrets.token_urlsafe(16))
        self._by_id[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        return self._by_id.get(session_id or "")

    def close(self, session_id: str | None) -> None:
        self._by_id.pop(session_id or "", None)


def bearer(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def identify(
    conn: HTTPConnection, tokens: TokenStore, sessions: Sessions, *, unsafe: bool = False
) -> Identity:
    """The identity behind a request; ``Unauthorized`` without one. ``unsafe`` (a change through a
    session) also needs the session's CSRF value in the ``X-Sysflow-CSRF`` header."""
    token = bearer(conn)
    if token is not None:
        found = tokens.identify(token)
        if found is None:
            raise Unauthorized("invalid or revoked token")
        return found
    session = sessions.get(conn.cookies.get(COOKIE))
    if session is None:
        raise Unauthorized("a token is needed (Authorization: Bearer TOKEN)")
    if unsafe and not secrets.compare_digest(conn.headers.get(CSRF_HEADER, ""), session.csrf):
        raise Unauthorized("missing or wrong CSRF value for a session")
    return session.identity
