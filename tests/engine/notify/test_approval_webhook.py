"""Approval requests through a webhook, answers through signed URLs, end to end: a real service
(uvicorn on 127.0.0.1) runs a simulated run in a worker process; the run's approval request reaches
a real loopback receiver; a tampered or expired answer is refused (403) and audited; following the
signed approve URL (GET shows it, POST takes it) approves the wave and the run completes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from sysflow.engine.approval import CallbackRefused, answer_url, signature, signing_key, verify
from sysflow.model.change import ApprovalWebhook
from sysflow.service.config import ServiceConfig
from sysflow.service.tokens import TokenStore
from tests.engine.notify.conftest import Receiver
from tests.service.conftest import EXAMPLES, SUNDAY, serve, stop

KEY = "k3y-for-approval-callbacks-7f2e"
NOW = datetime(2026, 12, 6, tzinfo=UTC)


def test_a_signature_binds_every_field_and_expires() -> None:
    key = KEY.encode()
    expires = int((NOW + timedelta(hours=1)).timestamp())
    sig = signature(key, "chatops", "run-1", 2, "approve", expires)
    verify(key, "chatops", "run-1", 2, "approve", expires, sig, NOW)  # no exception: it verifies
    changed = [("ops", "run-1", 2, "approve", expires), ("chatops", "run-2", 2, "approve", expires),
               ("chatops", "run-1", 3, "approve", expires), ("chatops", "run-1", 2, "reject", expires),
               ("chatops", "run-1", 2, "approve", expires + 1)]  # fmt: skip
    for fields in changed:
        with pytest.raises(CallbackRefused, match="bad signature"):
            verify(key, *fields, sig, NOW)
    with pytest.raises(CallbackRefused, match="bad signature"):
        verify(b"another key of 16+ bytes", "chatops", "run-1", 2, "approve", expires, sig, NOW)
    with pytest.raises(CallbackRefused, match="expired"):
        verify(key, "chatops", "run-1", 2, "approve", expires, sig, NOW + timedelta(hours=2))


def test_the_key_comes_from_the_environment_or_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SYSFLOW_APPROVAL_KEY", raising=False)
    with pytest.raises(
        CallbackRefused, match=r"no approval signing key of 16\+ bytes in \$SYSFLOW_APPROVAL_KEY"
    ):
        signing_key()
    key_file = tmp_path / "approval.key"
    key_file.write_text(KEY + "\n")
    assert signing_key(file=key_file) == KEY.encode()
    monkeypatch.setenv("SYSFLOW_APPROVAL_KEY", "short")
    with pytest.raises(CallbackRefused) as refused:
        signing_key()
    assert "short" not in str(refused.value)  # a key is never shown


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, dict[str, str]]]:
    monkeypatch.setenv("SYSFLOW_APPROVAL_KEY", KEY)  # the service and its workers sign and verify with it
    config = ServiceConfig(store=tmp_path / "state.db", data=tmp_path / "service")
    store = TokenStore(config.tokens)
    tokens = {name: store.create(name, role)[1] for name, role in (("alice", "admin"), ("vic", "viewer"))}
    store.close()
    server, url = serve(config)
    try:
        yield url, tokens
    finally:
        stop(server)


def _client(url: str, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url, headers=headers, timeout=30.0)


def _wait(predicate: Any, seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _tampered(url: str) -> str:
    sig = parse_qs(urlsplit(url).query)["sig"][0]
    return url.replace(sig, sig[:-1] + ("0" if sig[-1] != "0" else "1"))


def test_an_approval_request_goes_out_and_the_signed_answer_approves(
    service: tuple[str, dict[str, str]],
) -> None:
    url, tokens = service
    receiver = Receiver()
    try:
        hook = (f"approval_webhook:\n  name: chatops\n  url: http://127.0.0.1:{receiver.port}/hook\n"
                f"  callback_url: {url}\n")  # fmt: skip
        with _client(url, tokens["alice"]) as alice, _client(url) as anonymous:
            workflow = (EXAMPLES / "patching.yaml").read_text() + "\n" + hook
            alice.put("/api/v1/workflows/hooked", content=workflow).raise_for_status()
            inventory = (EXAMPLES / "inventory.ini").read_text()
            alice.put("/api/v1/inventories/example", content=inventory).raise_for_status()
            started = alice.post("/api/v1/runs", json={"workflow": "hooked", "inventory": "example",
                                                      "simulate": True, "pace": 0.002, "start": SUNDAY})  # fmt: skip
            assert started.status_code == 202, started.text
            run_id = started.json()["run_id"]
            request = _wait(lambda: receiver.bodies[:1], 60, "the approval request")[0]
            assert request["run_id"] == run_id and request["wave"] == 2
            assert isinstance(request["hosts"], int) and request["hosts"] > 0
            assert request["started_by"] and request["expires"]
            approve, reject = str(request["approve_url"]), str(request["reject_url"])
            assert approve.startswith(f"{url}/api/v1/callbacks/approval/chatops/{run_id}/2/approve?")
            assert "/2/reject?" in reject

            assert anonymous.post(_tampered(approve)).status_code == 403
            assert anonymous.post(approve.replace("/2/approve?", "/3/approve?")).status_code == 403
            expired = int((datetime.now(UTC) - timedelta(minutes=1)).timestamp())
            spec = ApprovalWebhook(name="chatops", url="http://127.0.0.1/", callback_url=url)
            late = anonymous.post(answer_url(spec, KEY.encode(), run_id, 2, "approve", expired))
            assert late.status_code == 403 and "expired" in late.json()["error"]

            page = anonymous.get(approve)  # a link preview or a click: shows, does not act
            assert page.status_code == 200 and '<form method="post">' in page.text
            assert alice.get(f"/api/v1/runs/{run_id}").json()["run"]["status"] == "paused"
            taken = anonymous.post(approve)
            assert taken.status_code == 200, taken.text
            done = _wait(lambda: _finished(alice, run_id), 90, "the run to finish")
            records = alice.get("/api/v1/audit", params={"run": run_id}).json()["records"]
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
    assert done in ("completed", "completed_with_failures")
    mine = [r for r in records if r["who"] == "webhook:chatops"]
    assert [(r["action"], r["outcome"].split(":")[0]) for r in mine] == [
        ("service.callback", "refused"), ("service.callback", "refused"),
        ("service.callback", "refused"), ("service.approve", "ok"),
    ]  # fmt: skip
    assert "bad signature" in mine[0]["outcome"] and "expired" in mine[2]["outcome"]
    sig = parse_qs(urlsplit(approve).query)["sig"][0]
    assert not any(sig in str(r) or KEY in str(r) for r in records)  # neither signature nor key


def _finished(client: httpx.Client, run_id: str) -> str | None:
    status = str(client.get(f"/api/v1/runs/{run_id}").json()["run"]["status"])
    return status if status not in ("running", "paused", "pending") else None
