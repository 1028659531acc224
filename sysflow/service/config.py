"""Where the service keeps its files, how it reaches hosts, and its policy: one frozen value, passed in."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_CLIENT_QUEUE",
    "DEFAULT_HISTORY",
    "DEFAULT_LISTEN",
    "ServiceConfig",
]

DEFAULT_LISTEN = "127.0.0.1:8421"
DEFAULT_CLIENT_QUEUE = 10_000  # events a stream client may lag behind before it is dropped
DEFAULT_HISTORY = 1_000_000  # events kept in memory for clients that reconnect with an event id


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """Everything ``create_app`` needs; the CLI builds it from ``sysflow serve``'s options.

    ``data`` holds the token file (``service.db``), the audit log (unless ``audit`` names another),
    the library of stored workflows and inventories, and the event history (``events/``). ``four_eyes``: whoever started a run may not
    approve its gates. ``key`` / ``known_hosts``: how the worker processes reach hosts over SSH.
    """

    store: Path
    data: Path
    audit: Path | None = None
    four_eyes: bool = True
    key: Path | None = None
    known_hosts: Path | None = None
    client_queue: int = DEFAULT_CLIENT_QUEUE
    history: int = DEFAULT_HISTORY

    @classmethod
    def beside(cls, store: Path, **kw: object) -> ServiceConfig:
        """The default layout: ``data`` is ``service/`` next to the run store."""
        return cls(store=store, data=store.parent / "service", **kw)  # type: ignore[arg-type]

    @property
    def tokens(self) -> Path:
        return self.data / "service.db"

    @property
    def audit_log(self) -> Path:
        return self.audit if self.audit is not None else self.data / "audit.db"

    @property
    def library(self) -> Path:
        return self.data / "library"

    @property
    def events(self) -> Path:
        """The event history, one JSON Lines file per run (read back when the service starts)."""
        return self.data / "events"
