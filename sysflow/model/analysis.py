"""Metric checks at gates, as Argo Rollouts' analysis runs them: measure, compare, tolerate, decide."""

from __future__ import annotations

from pydantic import Field, model_validator

from sysflow.model.base import FrozenModel
from sysflow.model.durations import Duration

__all__ = ["MetricCheck"]


class MetricCheck(FrozenModel):
    """A probe command whose numeric output must stay within bounds, measured ``count`` times."""

    name: str = Field(min_length=1)
    command: str = Field(min_length=1, description="Prints a number (the first number in stdout is used).")
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
        if self.min is None and self.max is None:
            raise ValueError(f"metric check {self.name!r} needs min and/or max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"metric check {self.name!r}: min {self.min} is above max {self.max}")
        return self
