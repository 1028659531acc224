"""The service's parts, built once by the app factory and passed to every route (no globals)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sysflow.audit.log import AuditLog
    from sysflow.service.actions import Operations
    from sysflow.service.auth import Sessions
    from sysflow.service.config import ServiceConfig
    from sysflow.service.hub import EventHub
    from sysflow.service.metrics import Metrics
    from sysflow.service.tokens import TokenStore
    from sysflow.service.workers import Workers

__all__ = ["ServiceContext"]


@dataclass(frozen=True, slots=True)
class ServiceContext:
    config: ServiceConfig
    tokens: TokenStore
    sessions: Sessions
    audit: AuditLog
    hub: EventHub
    workers: Workers
    operations: Operations
    metrics: Metrics
