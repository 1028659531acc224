"""API tokens: created once, shown once, stored only as SHA-256 hashes in the service's SQLite file.

A token reads ``sft_<id>_<secret>``: the id finds the row, the hash of the whole token is compared in
constant time. A token has 256 bits of randomness, so a plain SHA-256 (not a slow password hash) is
what keeps it: nobody can guess one from its hash. The token string itself is never written anywhere
by the service: not to its files, its logs, its audit records or its events.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sysflow.errors import SysflowError
from sysflow.service.roles import Role

__all__ = ["Identity", "TokenError", "TokenStore"]

_TOKEN = re.compile(r"^sft_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


class TokenError(SysflowError, ValueError):
    """A token name or role that cannot be used (names the value)."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a request comes from: the token's name (the person), its id and its role."""

    name: str
    token_id: str
    role: Role

    @property
    def actor(self) -> str:
        """How the audit log names them: ``alice (token 1a2b3c4d5e6f)``."""
        return f"{self.name} (token {self.token_id})"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    """The tokens of one service, in SQLite (``tokens`` table: id, name, role, sha256, created)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS tokens (id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL,"
            " sha256 TEXT NOT NULL, created TEXT NOT NULL, revoked INTEGER NOT NULL DEFAULT 0)"
        )

    def close(self) -> None:
        self._db.close()

    def create(self, name: str, role: Role | str) -> tuple[Identity, str]:
        """A new token for ``name`` with ``role``: its identity and the token string (shown once)."""
        if not _NAME.match(name):
            raise TokenError(f"token name {name!r}: letters, digits, '_', '.', '@', '-' (up to 64)")
        try:
            role = Role(role)
        except ValueError:
            raise TokenError(f"role {role!r}: one of {', '.join(r.value for r in Role)}") from None
        token_id = secrets.token_hex(6)
        token = f"sft_{token_id}_{secrets.token_urlsafe(32)}"
        with self._lock:
            self._db.execute(
                "INSERT INTO tokens (id, name, role, sha256, created) VALUES (?,?,?,?,?)",
                (token_id, name, role.value, _hash(token), datetime.now(UTC).isoformat(timespec="seconds")),
            )
        return Identity(name, token_id, role), token

    def identify(self, token: str) -> Identity | None:
        """The identity of a valid, unrevoked token; None for anything else."""
        found = _TOKEN.match(token.strip())
        if found is None:
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT name, role, sha256 FROM tokens WHERE id=? AND revoked=0", (found.group(1),)
            ).fetchone()
        if row is None or not hmac.compare_digest(row[2], _hash(token.strip())):
            return None
        return Identity(row[0], found.group(1), Role(row[1]))

    def revoke(self, token_id: str) -> bool:
        """Revoke a token by its id; False when there is no such token."""
        with self._lock:
            cur = self._db.execute("UPDATE tokens SET revoked=1 WHERE id=?", (token_id,))
        return cur.rowcount > 0

    def list(self) -> list[tuple[Identity, str, bool]]:
        """Every token: identity, creation time, revoked."""
        with self._lock:
            rows = self._db.execute("SELECT id, name, role, created, revoked FROM tokens ORDER BY created")
            return [(Identity(n, i, Role(r)), c, bool(v)) for i, n, r, c, v in rows]
