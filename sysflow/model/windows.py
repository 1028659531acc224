"""What users write about maintenance windows; ``sysflow.constraints.calendar`` gives them meaning.

A window is written as one of:

* a weekly spec string: ``"Sunday 01:00-03:00"``, ``"Mon-Fri 22:00-02:00"``, ``"Sat,Sun 00:00-06:00"``,
  ``"daily 02:00-04:00"`` (crossing midnight is allowed);
* ``{cron: "0 1 * * SUN", duration: 2h}``;
* an ISO 8601 interval ``"2026-11-29T01:00/2026-11-29T03:00"`` (or ``start``/``end`` keys), or a one-off
  date ``"2026-11-29"`` (the whole day);

each with an optional ``timezone`` and ``cutoff``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, model_validator

from sysflow.model.base import FrozenModel
from sysflow.model.durations import Duration

__all__ = ["WindowSpec", "WindowsConfig"]


class WindowSpec(FrozenModel):
    """One recurring or one-off window (or blackout). Exactly one form is given."""

    weekly: str | None = Field(
        None, description='Weekly spec, e.g. "Sunday 01:00-03:00" or "Mon-Fri 22:00-02:00".'
    )
    cron: str | None = Field(None, description='Cron expression for the window start, e.g. "0 1 * * SUN".')
    duration: Duration | None = Field(None, description="Length of a cron window (e.g. 2h).")
    start: datetime | None = Field(None, description="Start of a one-off window (ISO 8601).")
    end: datetime | None = Field(None, description="End of a one-off window (ISO 8601).")
    timezone: str | None = Field(
        None, description="IANA time zone; defaults to the workflow's windows.timezone."
    )
    cutoff: Duration | None = Field(None, description="Nothing new starts when less than this remains.")
    reason: str | None = Field(None, description="Free text, shown for blackouts.")

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        if isinstance(data, str):
            text = data.strip()
            if "/" in text and text[:1].isdigit():
                start, _, end = text.partition("/")
                return {"start": start, "end": end}
            if text[:4].isdigit() and len(text) == 10:
                return {"start": f"{text}T00:00:00", "end": f"{text}T23:59:59.999999"}
            return {"weekly": text}
        return data

    @model_validator(mode="after")
    def _one_form(self) -> WindowSpec:
        forms = [
            self.weekly is not None,
            self.cron is not None,
            self.start is not None or self.end is not None,
        ]
        if sum(forms) != 1:
            raise ValueError("a window is exactly one of: a weekly spec, cron + duration, or start/end")
        if self.cron is not None and self.duration is None:
            raise ValueError(f"cron window {self.cron!r} needs a duration")
        if (self.start is None) != (self.end is None):
            raise ValueError("a one-off window needs both start and end")
        return self

    def describe(self) -> str:
        """A short human form, for messages."""
        if self.weekly is not None:
            return self.weekly
        if self.cron is not None:
            return f"cron {self.cron!r} for {self.duration}s"
        return f"{self.start}/{self.end}"


class WindowsConfig(FrozenModel):
    """Every window of a workflow: per group, blackouts, defaults."""

    timezone: str = Field("UTC", description="Default IANA time zone for window specs.")
    default: Literal["always", "never"] = Field(
        "always", description="Window of hosts in no windowed group: always open, or never."
    )
    groups: dict[str, list[WindowSpec]] = Field(default_factory=dict, description="Windows per group.")
    blackouts: list[WindowSpec] = Field(default_factory=list, description="Freeze periods, subtracted.")
    cutoff: Duration = Field(0.0, description="Default cutoff before each window's end.")
    allow_split_chains: bool = Field(
        False, description="Let a host's remaining tasks continue in a later window instead of one block."
    )

    @model_validator(mode="before")
    @classmethod
    def _lists(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("groups"), dict):
            data = dict(data)
            data["groups"] = {k: v if isinstance(v, list) else [v] for k, v in data["groups"].items()}
        return data
