"""What a simulation profile says: how long commands take, how they fail, and how the network behaves.

A :class:`SimProfile` is what users write (Python or YAML) to describe a simulated fleet:

* ``rules``: command rules (regex → duration, exit status, output, state change); the default rule
  set for the patching workflow (:data:`sysflow.sim.rules.DEFAULT_RULES`) follows them unless
  ``default_rules: false``;
* ``durations``: per rule (task) × group duration distributions that override a rule's own;
* ``failure_probability``: per rule (task) probability that a command fails;
* ``hosts``: host faults selected by Ansible patterns: unreachable, slow by a factor, flapping
  (up/down periods), hanging until the timeout;
* ``partitions``: a datacenter, segment or set of hosts unreachable between two times.

Times in partitions are absolute (ISO 8601) or offsets from the simulation start (``2h``).
Distributions are written ``{lognormal: {mean: 2m, sigma: 0.4}}``, ``{fixed: 30s}`` (or just
``30s``) or ``{empirical: [12, 15.5, 31]}``; a lognormal's ``mean`` is the mean of the duration
itself (not of its logarithm), ``sigma`` the standard deviation of its logarithm.

An example (``SimProfile.load("profile.yaml")``)::

    durations:
      upgrade_packages: {web: {lognormal: {mean: 3m, sigma: 0.4}}, "*": 2m}
      backup: {empirical: [21, 25.5, 31, 40]}
    failure_probability: {upgrade_packages: 0.02}
    hosts:
      - {hosts: "db*", slow: 2.5}
      - {hosts: web7, unreachable: timeout}
      - {hosts: "web1*", flap: {up: 20m, down: 2m}}
      - {hosts: lb2, hang: "apt-get"}
      - {hosts: db3, reboot: {never: true}}          # {down: 5m}, {drop_after: 20s}
    partitions:
      - {datacenter: fra, start: 1h, end: 1h30m}
    rules:
      - {name: deploy, match: '^deploy (?P<app>\\w+)', duration: 45s, stdout: "{app} on {host}\\n"}
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from sysflow.model.base import FrozenModel
from sysflow.model.durations import Duration, parse_duration
from sysflow.sim.rng import Stream

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_HANG_LIMIT",
    "Distribution",
    "Effect",
    "Empirical",
    "Failure",
    "Fixed",
    "Flap",
    "HostFault",
    "Instant",
    "LogNormal",
    "Partition",
    "RebootFault",
    "Rule",
    "SimProfile",
]

DEFAULT_CONNECT_TIMEOUT = 10.0  # seconds an SSH connect to a silent (dropped-packet) host waits
DEFAULT_HANG_LIMIT = 86400.0  # 1 day: a hung command with no timeout is given up after this
DEFAULT_REBOOT_DOWNTIME = 90.0  # seconds a rebooted host stays unreachable


class Fixed(FrozenModel):
    """Always the same duration."""

    kind: Literal["fixed"] = "fixed"
    seconds: Duration = Field(description="The duration.")

    def sample(self, rng: Stream) -> float:
        return self.seconds

    @property
    def mean(self) -> float:
        return self.seconds


class LogNormal(FrozenModel):
    """Lognormal with the given mean (of the duration, in seconds) and sigma (of its logarithm)."""

    kind: Literal["lognormal"] = "lognormal"
    mean: Duration = Field(description="Mean duration (not the median).")
    sigma: float = Field(ge=0, le=5, description="Standard deviation of ln(duration).")

    @property
    def mu(self) -> float:
        """Mean of ln(duration): ``ln(mean) - sigma²/2``."""
        return math.log(self.mean) - self.sigma**2 / 2 if self.mean > 0 else -math.inf

    def sample(self, rng: Stream) -> float:
        if self.mean <= 0:
            return 0.0
        return rng.lognormvariate(self.mu, self.sigma)


class Empirical(FrozenModel):
    """Resampled uniformly from recorded durations."""

    kind: Literal["empirical"] = "empirical"
    samples: tuple[Duration, ...] = Field(min_length=1, description="Recorded durations.")

    def sample(self, rng: Stream) -> float:
        return self.samples[int(rng.random() * len(self.samples))]

    @property
    def mean(self) -> float:
        return sum(self.samples) / len(self.samples)


def _distribution_shorthand(value: Any) -> Any:
    """``30s`` / ``12.5`` → fixed; ``{lognormal: {...}}`` / ``{fixed: 30}`` / ``{empirical: [...]}``."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return {"kind": "fixed", "seconds": value}
    if isinstance(value, dict) and "kind" not in value and len(value) == 1:
        (kind, body), *_ = value.items()
        if kind == "fixed":
            return {"kind": "fixed", "seconds": body}
        if kind == "empirical":
            return {"kind": "empirical", "samples": body}
        if kind == "lognormal" and isinstance(body, dict):
            return {"kind": "lognormal", **body}
    return value


Distribution = Annotated[
    Fixed | LogNormal | Empirical,
    Field(discriminator="kind"),
]
"""A duration distribution (seconds)."""


def _instant(value: Any) -> Any:
    """An ISO 8601 instant stays a datetime; anything else is an offset duration in seconds."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and len(value) >= 10 and value[:4].isdigit() and value[4] == "-":
        return value
    return parse_duration(value)


Instant = Annotated[datetime | float, BeforeValidator(_instant)]
"""An absolute instant, or seconds from the simulation start."""


class Effect(FrozenModel):
    """How a command changes a simulated host's state."""

    upgrade: list[str] | Literal["all"] | None = Field(
        None, description='Packages upgraded to their available version ("all": every upgradable one).'
    )
    refresh: bool = Field(
        False, description="Refresh the package index (apt-get update): learn available versions."
    )
    packages: dict[str, str | None] = Field(
        default_factory=dict, description="Set package versions (None removes the package)."
    )
    services: dict[str, str] = Field(
        default_factory=dict, description="Set service states (active, failed, ...)."
    )
    break_services: list[str] = Field(
        default_factory=list, description="Services left failed, and failing to start until a restore."
    )
    files: dict[str, str | None] = Field(default_factory=dict, description="Write files (None deletes).")
    snapshot: str | None = Field(None, description="Save packages and services under this name (a backup).")
    restore: str | None = Field(None, description="Restore a snapshot saved earlier (a rollback).")
    reboot: Duration | None = Field(None, description="Reboot: the host is unreachable this long afterwards.")


class Failure(FrozenModel):
    """What a failing command does instead: exit status, stderr, and its own (broken) effect."""

    probability: float = Field(0.0, ge=0, le=1)
    exit_status: int = 1
    stderr: str = "simulated failure"
    effect: Effect | None = Field(None, description="State change of a failed run (e.g. service left down).")


Responder = Literal[
    "dpkg_list", "dpkg_query", "is_active", "systemctl", "uname", "cat", "health", "boot_id", "reboot_probe"
]


class Rule(FrozenModel):
    """A command rule: the first rule whose ``match`` regex is found in the command applies.

    ``stdout``/``stderr`` are ``str.format`` templates over ``host``, the regex's named groups,
    ``packages``, ``services``, ``files``, ``kernel`` and ``vars``; ``respond`` names a built-in
    responder that answers read-only commands from state instead (``dpkg_list``, ``dpkg_query``,
    ``is_active``, ``systemctl``, ``uname``, ``cat``, ``health``, ``boot_id``, ``reboot_probe``). A
    trailing ``| grep [-E] 'pattern'`` filters the output as grep would (exit 1 when nothing matches).
    """

    name: str = Field(description="Task name the rule stands for (key of durations and failures).")
    match: str = Field(description="Regex searched in the command.")
    duration: Distribution = Field(default_factory=lambda: Fixed(seconds=1.0))
    exit_status: int = 0
    stdout: str = ""
    stderr: str = ""
    respond: Responder | None = None
    effect: Effect | None = None
    failure: Failure | None = None

    _shorthand = field_validator("duration", mode="before")(_distribution_shorthand)

    @field_validator("match")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"bad regex {value!r}: {exc}") from None
        return value


class Flap(FrozenModel):
    """A host that is up for ``up`` seconds, then down for ``down`` seconds, repeating from ``offset``."""

    up: Duration = Field(gt=0)
    down: Duration = Field(gt=0)
    offset: Duration = Field(0.0, description="Start of the first up period, from the simulation start.")


class RebootFault(FrozenModel):
    """How the matching hosts reboot: how long they stay down, or never come back, and how long
    their connections keep answering (from the old boot) after the reboot command returned."""

    down: Duration | None = Field(None, description="Seconds unreachable (default: the reboot rule's, 90 s).")
    never: bool = Field(False, description="The host goes down and never comes back.")
    drop_after: Duration = Field(0.0, description="Seconds the host still answers before it goes down.")


class HostFault(FrozenModel):
    """Faults of the hosts matching ``hosts`` (an Ansible pattern)."""

    hosts: str = Field(description="Ansible host pattern: names, groups, globs, a:b, a:&b, a:!b.")
    unreachable: Literal["refused", "timeout"] | None = Field(
        None, description="refused: fails at once; timeout: fails after the connect timeout."
    )
    slow: float = Field(1.0, gt=0, description="Durations are multiplied by this factor.")
    flap: Flap | None = None
    hang: str | None = Field(
        None, description="Regex of commands that hang until their timeout ('.' for every command)."
    )
    reboot: RebootFault | None = None


class Partition(FrozenModel):
    """A datacenter, segment or set of hosts that cannot be reached between ``start`` and ``end``."""

    datacenter: str | None = None
    segment: str | None = None
    hosts: str | None = Field(None, description="Ansible host pattern.")
    start: Instant = Field(description="ISO 8601 instant, or offset (e.g. 2h) from the simulation start.")
    end: Instant

    @model_validator(mode="after")
    def _one_target(self) -> Partition:
        if sum(x is not None for x in (self.datacenter, self.segment, self.hosts)) != 1:
            raise ValueError("a partition names exactly one of: datacenter, segment, hosts")
        return self


class SimProfile(FrozenModel):
    """Everything the simulator needs to know about a fleet beyond its inventory."""

    rules: list[Rule] = Field(default_factory=list, description="Rules tried before the defaults.")
    default_rules: bool = Field(True, description="Append the built-in patching rule set.")
    durations: dict[str, dict[str, Distribution]] = Field(
        default_factory=dict, description='Rule name -> group (or "*") -> duration distribution.'
    )
    failure_probability: dict[str, float] = Field(
        default_factory=dict, description="Rule name -> probability that the command fails."
    )
    hosts: list[HostFault] = Field(default_factory=list)
    partitions: list[Partition] = Field(default_factory=list)
    packages: dict[str, str] = Field(
        default_factory=dict, description="Initial packages of every host, over the Debian 12 defaults."
    )
    available: dict[str, str] = Field(
        default_factory=dict, description="Versions the mirror offers (what an upgrade installs)."
    )
    services: dict[str, str] = Field(
        default_factory=dict, description="Initial service states, over the defaults."
    )
    kernel: str | None = Field(None, description="Initial `uname -r`.")
    connect_timeout: Duration = DEFAULT_CONNECT_TIMEOUT
    hang_limit: Duration = DEFAULT_HANG_LIMIT
    unmatched: Literal["ok", "fail"] = Field(
        "ok", description="A command no rule matches: succeeds in 1s with no output, or exits 127."
    )

    @field_validator("durations", mode="before")
    @classmethod
    def _durations(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                task: {g: _distribution_shorthand(d) for g, d in groups.items()}
                if isinstance(groups, dict) and not _looks_like_distribution(groups)
                else {"*": _distribution_shorthand(groups)}
                for task, groups in value.items()
            }
        return value

    @field_validator("failure_probability")
    @classmethod
    def _probabilities(cls, value: dict[str, float]) -> dict[str, float]:
        for task, p in value.items():
            if not 0 <= p <= 1:
                raise ValueError(f"failure probability of {task!r} must be within 0..1, not {p}")
        return value

    @classmethod
    def load(cls, path: str | Path) -> SimProfile:
        """Read a profile from a YAML (or JSON) file."""
        import yaml

        text = Path(path).read_text(encoding="utf-8")
        data = yaml.safe_load(text) or {}
        return cls.model_validate(data)


def _looks_like_distribution(value: dict[str, Any]) -> bool:
    return "kind" in value or (len(value) == 1 and next(iter(value)) in ("fixed", "lognormal", "empirical"))
