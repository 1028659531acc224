"""Host key verification: known_hosts loaded once and shared by every connection of a transport.

Why: an unverified host key lets anyone on the path impersonate a server and read every command
and secret sent to it. Policies:

- ``strict`` (default): the key must be in known_hosts; unknown or changed keys fail.
- ``accept-new``: trust on first use; a key for a host not yet known is appended to a file the
  user names; a *changed* key still fails.
- ``off``: no verification, only when explicitly asked for.

A changed key raises :class:`~sysflow.errors.HostKeyMismatch`, a key not yet known
:class:`~sysflow.errors.HostKeyUnknown` (:func:`host_key_error`); both name the known_hosts files
checked and the remedy. asyncssh is imported lazily.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any

from sysflow.errors import ConnectionFailed, HostKeyMismatch, HostKeyUnknown

__all__ = ["DEFAULT_KNOWN_HOSTS", "HostKeyPolicy", "HostKeyStore", "HostKeyVerdict", "host_key_error"]

DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")
DEFAULT_SSH_PORT = 22


class HostKeyPolicy(StrEnum):
    """How host keys are checked."""

    STRICT = "strict"
    ACCEPT_NEW = "accept-new"
    OFF = "off"


class HostKeyVerdict(Enum):
    """What the store said about one presented key."""

    TRUSTED = "trusted"
    ACCEPTED = "accepted"  # unknown host, accepted on first use and recorded
    UNKNOWN = "unknown"
    CHANGED = "changed"

    @property
    def ok(self) -> bool:
        return self in (HostKeyVerdict.TRUSTED, HostKeyVerdict.ACCEPTED)


def _paths(known_hosts: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None) -> list[Path]:
    if known_hosts is None:
        return [DEFAULT_KNOWN_HOSTS.expanduser()]
    if isinstance(known_hosts, str | os.PathLike):
        return [Path(known_hosts).expanduser()]
    return [Path(p).expanduser() for p in known_hosts]


def host_pattern(host: str, port: int | None) -> str:
    """The known_hosts spelling of ``host`` on ``port`` (``[host]:port`` off port 22)."""
    return host if port in (None, DEFAULT_SSH_PORT) else f"[{host}]:{port}"


class HostKeyStore:
    """Known host keys from one or more files, parsed once, shared by every connection.

    ``policy="accept-new"`` needs ``accept_new_file``: newly seen keys are appended there (and
    kept in memory for this process). Share one store among transports to load the files once.
    """

    def __init__(
        self,
        known_hosts: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
        *,
        policy: HostKeyPolicy | str = HostKeyPolicy.STRICT,
        accept_new_file: str | os.PathLike[str] | None = None,
    ) -> None:
        self.policy = HostKeyPolicy(policy)
        if self.policy is HostKeyPolicy.ACCEPT_NEW and accept_new_file is None:
            raise ValueError("policy 'accept-new' needs accept_new_file: the file new keys are appended to")
        self._files = _paths(known_hosts)
        self._accept_file = Path(accept_new_file).expanduser() if accept_new_file is not None else None
        if self._accept_file is not None and self._accept_file not in self._files:
            self._files.append(self._accept_file)
        self._known: Any = None
        self._accepted: dict[str, Any] = {}
        self._wants_certs: dict[str, bool] = {}
        self._lock = threading.Lock()

    @property
    def files(self) -> tuple[Path, ...]:
        return tuple(self._files)

    def __repr__(self) -> str:
        return f"HostKeyStore(policy={self.policy.value!r}, files={[str(f) for f in self._files]!r})"

    def accepted(self) -> dict[str, str]:
        """Keys accepted on first use by this store: ``[host]:port`` pattern -> SHA256 fingerprint."""
        with self._lock:
            return {pattern: key.get_fingerprint() for pattern, key in self._accepted.items()}

    @property
    def accept_file(self) -> Path | None:
        """The file ``accept-new`` appends to (None under other policies)."""
        return self._accept_file

    def asyncssh_known_hosts(self) -> Any:
        """The value for asyncssh's ``known_hosts`` option: the parsed files, or None when off."""
        if self.policy is HostKeyPolicy.OFF:
            return None
        return self._load()

    def _load(self) -> Any:
        if self._known is None:
            with self._lock:
                if self._known is None:
                    import asyncssh

                    text = "".join(f.read_text() for f in self._files if f.is_file())
                    self._known = asyncssh.import_known_hosts(text)
        return self._known

    def wants_certificates(self, host: str, port: int | None) -> bool:
        """Whether a CA (``@cert-authority``) is trusted for ``host``: only then ask for a host
        certificate. Otherwise ask for a plain key, which known_hosts or accept-new can judge
        (OpenSSH falls back to the plain key of an untrusted certificate; asyncssh does not)."""
        if self.policy is HostKeyPolicy.OFF:
            return False
        cache_key = host_pattern(host, port)
        wants = self._wants_certs.get(cache_key)
        if wants is None:
            port_arg = None if port in (None, DEFAULT_SSH_PORT) else port
            _, ca_keys, *_ = self._load().match(host, "", port_arg)
            wants = self._wants_certs[cache_key] = bool(ca_keys)
        return wants

    def check(self, host: str, addr: str, port: int | None, key: Any) -> HostKeyVerdict:
        """Judge ``key`` presented by ``host`` (the name connected to) at ``addr``:``port``."""
        if self.policy is HostKeyPolicy.OFF:
            return HostKeyVerdict.TRUSTED
        pattern = host_pattern(host, port)
        accepted = self._accepted.get(pattern)
        if accepted is not None:
            return (
                HostKeyVerdict.TRUSTED if accepted.public_data == key.public_data else HostKeyVerdict.CHANGED
            )
        port_arg = None if port in (None, DEFAULT_SSH_PORT) else port
        host_keys, ca_keys, *_ = self._load().match(host, addr, port_arg)
        if any(k.public_data == key.public_data for k in host_keys):
            return HostKeyVerdict.TRUSTED
        if host_keys or ca_keys:
            return HostKeyVerdict.CHANGED
        if self.policy is HostKeyPolicy.ACCEPT_NEW:
            self._accept(pattern, key)
            return HostKeyVerdict.ACCEPTED
        return HostKeyVerdict.UNKNOWN

    def _accept(self, pattern: str, key: Any) -> None:
        assert self._accept_file is not None
        with self._lock:
            if pattern in self._accepted:
                return
            self._accepted[pattern] = key
            line = " ".join(key.export_public_key("openssh").decode().split()[:2])
            self._accept_file.parent.mkdir(parents=True, exist_ok=True)
            with self._accept_file.open("a", encoding="utf-8") as f:
                f.write(f"{pattern} {line}\n")


def host_key_error(
    verdict: HostKeyVerdict, name: str, hostname: str, port: int | None, files: Sequence[Path]
) -> ConnectionFailed:
    """The error of a refused key: unknown (trust it first) or changed (possible interception)."""
    checked = ", ".join(str(f) for f in files) or "(none)"
    pattern = host_pattern(hostname, port)
    if verdict is HostKeyVerdict.CHANGED:
        where = str(files[0]) if files else "~/.ssh/known_hosts"
        return HostKeyMismatch(
            f"host key changed (known_hosts: {checked}): possible man-in-the-middle; if the host was"
            f" reinstalled remove the old key with: ssh-keygen -R '{pattern}' -f {where}",
            host=name,
        )
    return HostKeyUnknown(
        f"host key unknown: {pattern} is not in known_hosts ({checked}); trust it with"
        f" --host-keys accept-new (or add it with ssh-keyscan)",
        host=name,
    )
