"""Infrastructure state checks of a workflow (``state_checks:``): what is asked, and what to do about it.

A state check reads the state of something around the rollout — a monitoring endpoint's JSON over
HTTP(S), or a probe command on a host — and tests it with a condition
(:mod:`sysflow.model.conditions`) over ``json`` (the decoded body), ``status`` (HTTP status),
``stdout``, ``stderr``, ``rc`` and ``ok``. When the condition does not hold, its ``action`` says what
the run does: ``hold`` the wave until it holds (polling every ``interval``, giving up after
``timeout``), ``skip`` the wave's hosts, or ``throttle`` — lower a capacity (by default
``max_parallel_servers``) for the rest of the run. The engine side is ``sysflow.engine.state``.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, field_validator, model_validator

from sysflow.model.base import FrozenModel
from sysflow.model.durations import Duration

__all__ = [
    "DEFAULT_HOLD_TIMEOUT",
    "DEFAULT_POLL_INTERVAL",
    "STATE_NAMES",
    "CheckPoint",
    "StateAction",
    "StateCheck",
]

DEFAULT_HOLD_TIMEOUT = 1800.0  # seconds a held wave waits for its check before the run stops (30 min)
DEFAULT_POLL_INTERVAL = 30.0  # seconds between two evaluations of a held check
DEFAULT_REQUEST_TIMEOUT = 10.0  # seconds one HTTP request or probe command may take
STATE_NAMES = frozenset({"json", "status", "stdout", "stderr", "rc", "ok"})


class StateAction(StrEnum):
    """What a failing state check does to the run."""

    HOLD = "hold"
    SKIP = "skip"
    THROTTLE = "throttle"


class CheckPoint(StrEnum):
    """When a state check is evaluated: before each wave (from the second), or at each gate."""

    BEFORE_WAVE = "before_wave"
    GATE = "gate"


class StateCheck(FrozenModel):
    """A named check of the infrastructure's state, and the action taken while it fails."""

    name: str = Field(min_length=1, description="Name shown in events and reasons.")
    url: str | None = Field(None, description="HTTP(S) URL whose JSON body is tested (GET).")
    command: str | None = Field(None, description="Probe command run on `host` (or the wave's first host).")
    prometheus: str | None = Field(
        None, pattern=r"^https?://", description="Prometheus HTTP API whose PromQL `query` is tested."
    )
    query: str | None = Field(
        None,
        description="PromQL over the wave's hosts ({{ hosts | join('|') }}); json.value is its largest sample.",
    )
    host: str | None = Field(None, description="Host the command runs on (default: the wave's first).")
    expect: str = Field(
        description="Condition that holds when healthy, over json, status, stdout, stderr, rc, ok."
    )
    action: StateAction = StateAction.HOLD
    at: list[CheckPoint] = Field(default_factory=lambda: [CheckPoint.BEFORE_WAVE])
    waves: list[int] | None = Field(None, description="Only before these waves (1-based); all by default.")
    timeout: Duration = Field(DEFAULT_HOLD_TIMEOUT, description="hold: give up (stop the run) after this.")
    interval: Duration = Field(DEFAULT_POLL_INTERVAL, gt=0, description="hold: seconds between checks.")
    request_timeout: Duration = Field(DEFAULT_REQUEST_TIMEOUT, gt=0)
    groups: list[str] | None = Field(
        None, description="skip: only the wave's hosts in these groups are skipped (default: the whole wave)."
    )
    capacity: float | None = Field(None, ge=0, description="throttle: the lowered capacity.")
    capacity_key: str = Field("max_parallel_servers", description="throttle: the limit lowered.")

    @field_validator("url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"url must be http:// or https://, not {value!r}")
        return value

    @field_validator("expect")
    @classmethod
    def _expect_parses(cls, value: str) -> str:
        from sysflow.model.conditions import parse_condition

        parse_condition(value, STATE_NAMES)
        return value

    @model_validator(mode="after")
    def _one_source(self) -> StateCheck:
        if [self.url, self.command, self.prometheus].count(None) != 2:
            raise ValueError(f"state check {self.name!r} needs exactly one of url or command (or prometheus)")
        if (self.prometheus is None) != (self.query is None):
            raise ValueError(f"state check {self.name!r}: prometheus and query go together")
        if self.action is StateAction.THROTTLE and self.capacity is None:
            raise ValueError(f"state check {self.name!r}: throttle needs a capacity")
        return self

    def applies(self, point: CheckPoint, wave: int) -> bool:
        """Whether this check runs at ``point`` for wave ``wave`` (0-based)."""
        return point in self.at and (self.waves is None or wave + 1 in self.waves)
