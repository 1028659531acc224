"""The audit key: a secret outside the database that the audit chain and its head are keyed with.

Without the key nobody can produce a record, a chain or a head that verifies, so editing the SQLite
file and recomputing hashes (with SHA-256 or with another key) is detected. The key is 32 random
bytes, stored hex-encoded in a file readable only by its owner (mode 0600), created on first use:

* ``AuditLog(..., key=bytes)`` or ``AuditLog(..., key_file=path)`` when given;
* else ``$SYSFLOW_AUDIT_KEY_FILE``;
* else ``/var/lib/sysflow/audit.key`` for root, ``$XDG_STATE_HOME/sysflow/audit.key`` (by default
  ``~/.local/state/sysflow/audit.key``) for everybody else.

A key file readable by group or others is refused, as ssh refuses such a private key. The key never
appears in a message, a log or the audit database; only its *key id* (an HMAC of a constant, which
reveals nothing of the key) is stored, so a verification with the wrong key file says so.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from sysflow.errors import SysflowError

__all__ = ["KEY_ENV", "AuditKeyError", "default_key_file", "key_id", "load_key", "load_or_create_key"]

KEY_ENV = "SYSFLOW_AUDIT_KEY_FILE"
KEY_BYTES = 32
MIN_KEY_BYTES = 16


class AuditKeyError(SysflowError):
    """The audit key is missing, unreadable, malformed or too widely readable."""


def default_key_file() -> Path:
    """Where the audit key lives when none is given (see the module docstring)."""
    env = os.environ.get(KEY_ENV)
    if env:
        return Path(env).expanduser()
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/sysflow/audit.key")
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "sysflow" / "audit.key"


def key_id(key: bytes) -> str:
    """A public fingerprint of the key (16 hex digits): tells keys apart, reveals nothing."""
    return hmac.new(key, b"sysflow-audit key id", hashlib.sha256).hexdigest()[:16]


def check_key(key: bytes) -> bytes:
    if len(key) < MIN_KEY_BYTES:
        raise AuditKeyError(f"an audit key needs at least {MIN_KEY_BYTES} bytes")
    return bytes(key)


def load_key(path: Path) -> bytes:
    """Read the key file (never create it): missing, too open or malformed is an AuditKeyError."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise AuditKeyError(f"no audit key at {path} (the key the log was written with)") from None
    except OSError as exc:
        raise AuditKeyError(f"cannot read the audit key {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise AuditKeyError(f"the audit key {path} is not a regular file")
        if st.st_mode & 0o077:
            mode = stat.S_IMODE(st.st_mode)
            raise AuditKeyError(f"the audit key {path} is readable by others (mode {mode:o}): chmod 600 it")
        raw = os.read(fd, 4096)
    finally:
        os.close(fd)
    try:
        key = bytes.fromhex(raw.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        raise AuditKeyError(f"{path} is not an audit key (expected hex digits)") from None
    if len(key) < MIN_KEY_BYTES:
        raise AuditKeyError(f"{path} is not an audit key (too short)")
    return key


def load_or_create_key(path: Path) -> bytes:
    """The key in ``path``, created (32 random bytes, mode 0600, directory 0700) when missing.

    Creation is atomic: the key is written to a private temporary file and linked into place, so a
    concurrent reader never sees a half-written key and two creators agree on one key.
    """
    if path.exists():
        return load_key(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, (secrets.token_hex(KEY_BYTES) + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if another process created the key meanwhile: theirs wins
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return load_key(path)
