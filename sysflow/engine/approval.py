"""Approval requests out through a webhook, answers back through signed URLs.

When a wave of a run whose workflow has ``approval_webhook:`` waits for approval,
:class:`ApprovalRequester` POSTs a JSON request to the webhook::

    {"run_id": ..., "wave": 2, "hosts": 12, "started_by": "alice",
     "approve_url": "https://sysflow.example/api/v1/callbacks/approval/chatops/RUN/2/approve?expires=...&sig=...",
     "reject_url": ".../reject?...", "expires": "2026-11-28T13:00:00+00:00"}

Each answer URL carries ``sig``, an HMAC-SHA256 (hex) over ``name``, run id, wave, decision and
expiry (:func:`signature`), keyed with the webhook's key (``key_env``, else ``key_file``). The
service (:mod:`sysflow.service.callbacks`) checks it with :func:`verify` and answers through the
same control path as ``sysflow approve``. The URLs expire in wall-clock time (a person answers, even
when the run is simulated on a virtual clock). The key and the signatures are never logged; the POST
runs on a thread of its own, so neither the engine nor a virtual clock waits for it, and a webhook
that cannot be reached is logged and kept in :attr:`ApprovalRequester.failures`, never raised.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlencode

import httpx

from sysflow.engine.events import Event, EventBus, EventKind
from sysflow.errors import SysflowError
from sysflow.model.change import ApprovalWebhook

__all__ = [
    "CALLBACK_PATH",
    "DECISIONS",
    "ApprovalRequester",
    "CallbackRefused",
    "answer_url",
    "signature",
    "signing_key",
    "verify",
]

log = logging.getLogger(__name__)

CALLBACK_PATH = "/api/v1/callbacks/approval"
DECISIONS = ("approve", "reject")
KEY_ENV = "SYSFLOW_APPROVAL_KEY"  # the service's key, when it has no file
KEY_FILE_ENV = "SYSFLOW_APPROVAL_KEY_FILE"
_MIN_KEY = 16  # bytes: a shorter key is refused


class CallbackRefused(SysflowError):
    """A signed answer that does not verify (bad signature, expired, unknown decision) or no key."""


def _local_user() -> str:
    """Who runs this controller (the run's starter as far as it can tell)."""
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "unknown"


def signing_key(env: str = KEY_ENV, file: str | Path | None = None) -> bytes:
    """The key from the environment variable ``env``, else from ``file``; CallbackRefused when
    neither holds one of at least 16 bytes (the message names where it looked, never a value)."""
    value = os.environ.get(env, "").strip().encode()
    if not value and file is not None:
        try:
            value = Path(file).expanduser().read_bytes().strip()
        except OSError as exc:
            raise CallbackRefused(f"cannot read the approval key file {file}: {exc.strerror}") from None
    if len(value) < _MIN_KEY:
        where = f"${env}" + (f" or {file}" if file is not None else "")
        raise CallbackRefused(f"no approval signing key of {_MIN_KEY}+ bytes in {where}")
    return value


def signature(key: bytes, name: str, run_id: str, wave: int, decision: str, expires: int) -> str:
    """HMAC-SHA256 (hex) over the answer's fields, one per line."""
    message = "\n".join((name, run_id, str(wave), decision, str(expires))).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def verify(
    key: bytes, name: str, run_id: str, wave: int, decision: str, expires: int, sig: str, now: datetime
) -> None:
    """CallbackRefused unless ``sig`` signs these fields and ``expires`` (Unix seconds) is ahead."""
    if decision not in DECISIONS:
        raise CallbackRefused(f"unknown decision {decision!r}")
    expected = signature(key, name, run_id, wave, decision, expires)
    if not hmac.compare_digest(expected, sig):
        raise CallbackRefused("bad signature")
    if now.timestamp() >= expires:
        raise CallbackRefused(f"expired at {datetime.fromtimestamp(expires, UTC).isoformat()}")


def answer_url(spec: ApprovalWebhook, key: bytes, run_id: str, wave: int, decision: str, expires: int) -> str:
    """The signed URL that answers ``decision`` for ``wave`` (1-based) of ``run_id``."""
    path = "/".join(quote(p, safe="") for p in (spec.name, run_id, str(wave), decision))
    query = urlencode({"expires": expires, "sig": signature(key, spec.name, run_id, wave, decision, expires)})
    return f"{spec.callback_url.rstrip('/')}{CALLBACK_PATH}/{path}?{query}"


@dataclass
class ApprovalRequester:
    """On ``approval_requested`` of run ``run_id``: the JSON request to the webhook (see the module
    docstring); leaves ``bus`` when the run finishes."""

    spec: ApprovalWebhook
    run_id: str
    hosts_of: Callable[[int], int]
    bus: EventBus | None = None
    started_by: str = field(default_factory=lambda: _local_user())
    failures: list[str] = field(default_factory=list)
    sent: list[dict[str, object]] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)

    def on_event(self, event: Event) -> None:
        if event.run_id != self.run_id:
            return
        if event.kind is EventKind.RUN_FINISHED and self.bus is not None:
            self.bus.unsubscribe(self)
        if event.kind is not EventKind.APPROVAL_REQUESTED or event.wave is None:
            return
        try:
            request = self.request(event.wave)
        except CallbackRefused as exc:
            self._failed(str(exc))
            return
        thread = threading.Thread(target=self._post, args=(request,), name="sysflow-approval", daemon=True)
        self._threads.append(thread)
        thread.start()

    def request(self, wave: int) -> dict[str, object]:
        """The JSON request for ``wave`` (0-based, as events number waves)."""
        key = signing_key(self.spec.key_env, self.spec.key_file)
        until = datetime.now(UTC) + timedelta(seconds=self.spec.expires)  # people answer in real time
        expires = int(until.timestamp())
        number = wave + 1
        return {
            "run_id": self.run_id,
            "wave": number,
            "hosts": self.hosts_of(wave),
            "started_by": self.started_by,
            "approve_url": answer_url(self.spec, key, self.run_id, number, "approve", expires),
            "reject_url": answer_url(self.spec, key, self.run_id, number, "reject", expires),
            "expires": datetime.fromtimestamp(expires, UTC).isoformat(),
        }

    def join(self, timeout: float = 10.0) -> None:
        """Wait for the requests in flight (tests, and a process about to exit)."""
        for thread in self._threads:
            thread.join(timeout)

    def _post(self, request: dict[str, object]) -> None:
        try:
            response = httpx.post(self.spec.url, json=request, timeout=self.spec.request_timeout)
        except httpx.HTTPError as exc:
            self._failed(f"{type(exc).__name__}")
            return
        if response.status_code >= 300:
            self._failed(f"HTTP {response.status_code}")
            return
        self.sent.append({k: v for k, v in request.items() if not str(k).endswith("_url")})

    def _failed(self, why: str) -> None:
        self.failures.append(f"approval webhook {self.spec.name}: request not delivered ({why})")
        log.warning("%s", self.failures[-1])
