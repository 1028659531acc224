"""A change ticket the run must hold (``change:`` in a workflow): where it lives and what it must say.

The change gate (:mod:`sysflow.engine.change`) reads the ticket from a ServiceNow-style Table API
before the first wave and before each later one: its state must be one of ``ready_states``, the
current time inside its planned window, and every host of the wave among its configuration items.
A ticket not yet approved holds the wave (polling every ``poll`` seconds, at most ``wait``); a
rejected or cancelled ticket, a window that does not cover now, or a host outside the ticket stops
the run naming the ticket. When the CMDB cannot be asked, ``on_error`` decides (refuse by default).
At the end the run's outcome (and ``report_url``) is written to the ticket's work notes, and a
successful run moves it to ``close_state``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from sysflow.model.base import FrozenModel
from sysflow.model.durations import Duration

__all__ = ["ApprovalWebhook", "ChangeTicket"]


class ChangeTicket(FrozenModel):
    """A change request in a ServiceNow-style Table API."""

    url: str = Field(
        pattern=r"^https?://", description="Base URL of the instance (https://x.service-now.com)."
    )
    ticket: str = Field(min_length=1, description="The change number, e.g. CHG0031234.")
    token_env: str = Field(
        "SYSFLOW_CHANGE_TOKEN", description="Environment variable with the API bearer token."
    )
    ready_states: list[str] = Field(
        default_factory=lambda: ["approved", "scheduled", "implement"],
        description="Ticket states in which the run may go on.",
    )
    refused_states: list[str] = Field(
        default_factory=lambda: ["rejected", "canceled", "cancelled", "closed"],
        description="Ticket states (or approval values) that stop the run.",
    )
    wait: Duration = Field(3600.0, ge=0, description="Longest wait for a ticket not yet approved.")
    poll: Duration = Field(60.0, gt=0, description="Seconds between two reads of a waiting ticket.")
    request_timeout: Duration = Field(10.0, gt=0, description="Seconds one API request may take.")
    on_error: Literal["refuse", "proceed"] = Field(
        "refuse", description="When the ticket cannot be read: stop the run, or go on without it."
    )
    check_hosts: bool = Field(True, description="Every host of a wave must be a configuration item.")
    report_url: str | None = Field(
        None, description="Link to the run's report, written to the ticket ({run_id}: the run's id)."
    )
    close_state: str | None = Field("review", description="State a successful run moves the ticket to.")


class ApprovalWebhook(FrozenModel):
    """Where a wave's approval request goes, and where its signed answer comes back.

    When a wave waits for approval, a JSON request (run, wave, hosts, who started it, an approve
    URL and a reject URL) is POSTed to ``url``. Each answer URL points at the sysflow service
    (``callback_url``) and carries an HMAC-SHA256 signature over the webhook's name, the run, the
    wave, the decision and the expiry, with the key from ``key_env`` or ``key_file`` (the service
    verifies it with the same key, see :mod:`sysflow.engine.approval`).
    """

    name: str = Field(
        pattern=r"^[A-Za-z0-9_.-]+$", description='Names the approver in the audit log ("webhook:<name>").'
    )
    url: str = Field(pattern=r"^https?://", description="Where the JSON approval request is POSTed.")
    callback_url: str = Field(
        pattern=r"^https?://", description="Base URL of the sysflow service that takes the answers."
    )
    key_env: str = Field("SYSFLOW_APPROVAL_KEY", description="Environment variable with the signing key.")
    key_file: str | None = Field(None, description="File with the signing key (when the variable is unset).")
    expires: Duration = Field(3600.0, gt=0, description="Seconds the answer URLs stay valid.")
    request_timeout: Duration = Field(10.0, gt=0, description="Seconds the POST may take.")
