"""Metric checks at gates, as Argo Rollouts' analysis runs them: measure, compare, tolerate, decide."""

from __future__ import annotations

from pydantic import Field, model_validator

from sysflow.model.base import FrozenModel
from sysflow.model.durations import Duration

__all__ = ["MetricCheck"]


class MetricCheck(FrozenModel):
    """A metric that must stay within bounds, measured ``count`` times: a probe command's number, or
    a PromQL query against a Prometheus HTTP API (every sample of its result must be in bounds)."""

    name: str = Field(min_length=1)
    command: str | None = Field(
        None, min_length=1, description="Prints a number (the first number in stdout is used)."
    )
    prometheus: str | None = Field(
        None, pattern=r"^https?://", description="Base URL of a Prometheus HTTP API (instead of command)."
    )
    query: str | None = Field(
        None,
        min_length=1,
        description="PromQL; a template over the wave's hosts, e.g. instance=~\"{{ hosts | join('|') }}\".",
    )
    range: Duration | None = Field(
        None, gt=0, description="Range query over the last this many seconds (default: instant query)."
    )
    step: Duration = Field(15.0, gt=0, description="Range query resolution (seconds).")
    host: str | None = Field(None, description="Inventory host to run it on; default: the controller.")
    min: float | None = Field(None, description="Fail below this value.")
    max: float | None = Field(None, description="Fail above this value.")
    interval: Duration = Field(30.0, description="Time between measurements.")
    count: int = Field(3, ge=1, le=1000, description="Measurements to take.")
    failure_limit: int = Field(0, ge=0, description="Measurements out of bounds tolerated.")
    inconclusive_limit: int = Field(0, ge=0, description="Measurements without a number tolerated.")
    timeout: Duration = Field(60.0, description="Timeout of each measurement.")

    @model_validator(mode="after")
    def _bounds(self) -> MetricCheck:
        if (self.command is None) == (self.prometheus is None):
            raise ValueError(f"metric check {self.name!r} needs exactly one of command or prometheus")
        if (self.prometheus is None) != (self.query is None):
            raise ValueError(f"metric check {self.name!r}: prometheus and query go together")
        if self.min is None and self.max is None:
            raise ValueError(f"metric check {self.name!r} needs min and/or max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"metric check {self.name!r}: min {self.min} is above max {self.max}")
        return self
