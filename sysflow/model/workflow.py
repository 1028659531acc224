"""The workflow model: tasks, rollout, verifications, windows, parallelism, expiry policy, notifications.

``MaintenanceWorkflow`` (alias ``Workflow``) is what users write, through the Python API of the brief
(``add_task``, ``set_progressive_execution``, ...) or as a YAML/JSON file (``sysflow.model.loader``);
both land in these same pydantic models. Unknown keys are errors everywhere.

The model checks each value on its own (types, durations, counts, enums). Checks that need the whole
workflow (unknown task names, cycles, duplicate ids) are :meth:`MaintenanceWorkflow.problems`; checks
that need the inventory live in ``sysflow.planner.compile``. Every problem names where it is: a
``file:line:col`` when the workflow came from a file, else the field path (``tasks[3].depends_on``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import (
    Field,
    PlainValidator,
    PrivateAttr,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)

from sysflow.errors import Problem, WorkflowError
from sysflow.model.analysis import MetricCheck
from sysflow.model.base import FrozenModel, UserModel, problems_from_validation
from sysflow.model.become import BecomeMethod, become_method_problem
from sysflow.model.change import ApprovalWebhook, ChangeTicket
from sysflow.model.durations import Duration
from sysflow.model.parallelism import ParallelismConfig, check_count
from sysflow.model.preflight import PreflightConfig
from sysflow.model.serial import SerialValue, serial_value
from sysflow.model.state_checks import StateCheck
from sysflow.model.task import DEFAULT_EXPECTED_DURATION, StrList, Task
from sysflow.model.verification import VerificationSpec
from sysflow.model.windows import WindowsConfig

__all__ = [
    "DEFAULT_EXPECTED_DURATION",
    "CountOrPercent",
    "ExpiryPolicy",
    "GateMode",
    "MaintenanceWorkflow",
    "NotificationRoute",
    "Ordering",
    "RollbackScope",
    "RolloutSpec",
    "RolloutStrategy",
    "Task",
    "Workflow",
    "expiry_problems",
    "resolve_count",
]

_M = TypeVar("_M", bound=FrozenModel)


class RolloutStrategy(StrEnum):
    """How hosts are split into waves."""

    WAVES = "waves"
    CANARY = "canary"
    ROLLING = "rolling"
    BLUE_GREEN = "blue_green"


class Ordering(StrEnum):
    """Order of hosts before they are cut into canary/rolling batches (and inside each wave)."""

    INVENTORY = "inventory"
    SORTED = "sorted"
    SHUFFLE = "shuffle"


class RollbackScope(StrEnum):
    """Which changed hosts an automatic rollback covers."""

    FAILED_WAVE = "failed_wave"
    ALL = "all"


class GateMode(StrEnum):
    """``barrier``: a wave starts when the previous one is done; ``sliding``: as its hosts finish."""

    BARRIER = "barrier"
    SLIDING = "sliding"


class ExpiryPolicy(StrEnum):
    """What happens when a maintenance window closes mid-run."""

    FINISH = "finish"
    ABORT = "abort"
    ROLLBACK = "rollback"


def _count(value: Any) -> int | str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"expected a count like 5 or a percentage like '10%', got {value!r}")
    return check_count(value)


CountOrPercent = Annotated[int | str, PlainValidator(_count, json_schema_input_type=int | str)]
"""A count (``5``) or a percentage of the hosts concerned (``"10%"``)."""


def resolve_count(value: int | str, total: int, *, minimum: int = 0) -> int:
    """``5`` → 5; ``"10%"`` of ``total`` → rounded down like Ansible, never below ``minimum``."""
    if isinstance(value, int):
        return value
    return max(minimum, int(total * float(value.rstrip("%")) / 100.0))


def _serial_spec(value: Any, handler: ValidatorFunctionWrapHandler) -> list[SerialValue]:
    if isinstance(value, list | tuple):
        return handler(value)  # type: ignore[no-any-return]  # each item checked at its own index
    return [serial_value(value)]


SerialSpec = Annotated[
    list[Annotated[SerialValue, PlainValidator(serial_value, json_schema_input_type=int | str)]],
    WrapValidator(_serial_spec, json_schema_input_type=int | str | list[int | str]),
]
"""Ansible's ``serial``: one batch size or a list of them (see :mod:`sysflow.model.serial`)."""


class RolloutSpec(FrozenModel):
    """How the fleet is split into waves and what is checked between them."""

    strategy: RolloutStrategy = RolloutStrategy.WAVES
    groups: list[StrList] | None = Field(
        None, description="waves strategy: each wave a list of hosts, groups or patterns (also `waves`)."
    )
    canary_size: CountOrPercent = Field(1, description="canary: first N hosts or P% of the targets.")
    canary_bake: Duration = Field(0.0, description="canary: wait this long after the canary wave.")
    serial: SerialSpec = Field(
        default_factory=lambda: list[SerialValue]([1]),
        description='rolling: Ansible serial, 5, "10%" or [1, "10%", "50%"] (last repeats); '
        "0, -1 or []: all remaining hosts; default 1.",
    )
    ordering: Ordering = Ordering.INVENTORY
    seed: int = Field(0, description="Seed of the shuffle ordering.")
    max_failures: CountOrPercent = Field(
        0, description="Per-wave failures tolerated; more stops the rollout."
    )
    failure_budget: CountOrPercent | None = Field(
        None, description="Failures tolerated across the whole run."
    )
    verification_tasks: list[str] = Field(default_factory=list, description="Tasks that must pass per wave.")
    pause_between_waves: Duration = 0.0
    approval: bool | list[int] = Field(
        False, description="Manual approval before every later wave (true) or before these wave numbers."
    )
    auto_rollback: bool = False
    rollback_scope: RollbackScope = RollbackScope.FAILED_WAVE
    mode: GateMode = GateMode.BARRIER
    blue: StrList | None = Field(None, description="blue_green: the live set (patterns).")
    green: StrList | None = Field(None, description="blue_green: the idle set, deployed first (patterns).")
    cutover_task: str | None = Field(None, description="blue_green: task run after green verifies.")
    analysis: list[MetricCheck] = Field(
        default_factory=list, description="Metric checks run at every gate (Argo Rollouts-style analysis)."
    )

    @model_validator(mode="before")
    @classmethod
    def _waves_alias(cls, data: Any) -> Any:
        if isinstance(data, dict) and "waves" in data and "groups" not in data:
            data = dict(data)
            data["groups"] = data.pop("waves")
        return data

    @field_validator("canary_size")
    @classmethod
    def _canary_positive(cls, value: int | str) -> int | str:
        if resolve_count(value, 100) == 0:
            raise ValueError("canary_size must be at least 1 host (or a percentage above 0)")
        return value

    @field_validator("approval")
    @classmethod
    def _approval_waves(cls, value: bool | list[int]) -> bool | list[int]:
        if isinstance(value, list) and any(n < 1 for n in value):
            raise ValueError("approval wave numbers start at 1")
        return value

    def needs_approval(self, wave_number: int) -> bool:
        """Whether wave ``wave_number`` (1-based) waits for a manual approval before it starts."""
        if isinstance(self.approval, bool):
            return self.approval and wave_number > 1
        return wave_number in self.approval


class NotificationRoute(FrozenModel):
    """Send some events to one service (a URL understood by the notifier, e.g. an apprise URL)."""

    url: str = Field(min_length=1, description="Where to send, e.g. https://hooks.example.com/x.")
    events: list[str] = Field(
        default_factory=lambda: ["*"], description="Event kinds, e.g. run.completed, wave.failed; * = all."
    )
    only_failures: bool = Field(False, description="Only events that report a failure.")
    groups: list[str] | None = Field(None, description="Only events about hosts of these groups.")
    name: str | None = None


class MaintenanceWorkflow(UserModel):
    """A maintenance workflow: tasks, rollout, verifications, windows, parallelism and policies."""

    name: str = Field(min_length=1)
    description: str | None = None
    tasks: list[Task] = Field(default_factory=list)
    rollout: RolloutSpec = Field(default_factory=RolloutSpec)
    verifications: dict[str, VerificationSpec] = Field(default_factory=dict)
    windows: WindowsConfig = Field(default_factory=WindowsConfig)
    parallelism: ParallelismConfig = Field(default_factory=ParallelismConfig)
    on_window_expiry: ExpiryPolicy = ExpiryPolicy.FINISH
    notifications: list[NotificationRoute] = Field(default_factory=list)
    secrets: list[str] = Field(
        default_factory=list,
        description="Variable names whose values are redacted from every record (beyond secret_*, "
        "*_password, *_token, ...).",
    )
    state_checks: list[StateCheck] = Field(
        default_factory=list,
        description="Infrastructure checks before waves and at gates: hold, skip or throttle.",
    )
    change: ChangeTicket | None = Field(None, description="Change ticket the run must hold (change gate).")
    approval_webhook: ApprovalWebhook | None = Field(
        None, description="Approval requests out, signed answers back."
    )
    become: bool = Field(False, description="Run every task through sudo unless it or its host says not.")
    become_user: str | None = Field(None, pattern=r"^\S+$", description="User to become (default root).")
    become_method: BecomeMethod | None = Field(None, description="Only sudo runs (su/doas need a tty).")
    preflight: PreflightConfig = Field(
        default_factory=PreflightConfig,
        description="What every host needs before the first wave (free disk).",
    )

    @field_validator("become_method")
    @classmethod
    def _become_method_runs(cls, value: str | None) -> str | None:
        problem = become_method_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    _positions: dict[str, str] = PrivateAttr(default_factory=dict)
    _source: str | None = PrivateAttr(None)

    def __init__(self, name: str | None = None, /, **data: Any) -> None:
        if name is not None:
            data["name"] = name
        super().__init__(**data)

    def __eq__(self, other: object) -> bool:
        """Equal when every field is equal; where each came from (file positions) does not count."""
        if not isinstance(other, MaintenanceWorkflow):
            return NotImplemented
        return self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The JSON Schema of workflow files, including the short text forms the models accept."""
        from sysflow.model.schema import add_short_forms

        return add_short_forms(super().model_json_schema(*args, **kwargs))

    # -- the brief's Python API ----------------------------------------------------------------------

    def add_task(
        self,
        id: str,
        run: str = "",
        *,
        targets: str | Iterable[str] = ("all",),
        depends_on: str | Iterable[str] = (),
        **kw: Any,
    ) -> Task:
        """Append a task; ``kw`` are the other :class:`Task` fields (timeout, retries, rollback, ...),
        or a module instead of ``run`` (``lineinfile={"path": ..., "line": ...}``)."""
        fields = {"id": id, "run": run, "targets": _listify(targets), "depends_on": _listify(depends_on)}
        task = _build(Task, {**fields, **kw}, f"tasks[{len(self.tasks)}]")
        self.tasks.append(task)
        return task

    def set_progressive_execution(self, spec: Mapping[str, Any] | RolloutSpec) -> RolloutSpec:
        """Set the rollout (``groups`` waves, canary, rolling, blue-green, thresholds, gates)."""
        rollout = spec if isinstance(spec, RolloutSpec) else _build(RolloutSpec, dict(spec), "rollout")
        self.rollout = rollout
        return rollout

    def add_verification(self, name: str, spec: Mapping[str, Any] | VerificationSpec) -> VerificationSpec:
        """Add a named verification (probes before/after tasks and how to compare them)."""
        if isinstance(spec, VerificationSpec):
            verification = spec
        else:
            verification = _build(VerificationSpec, dict(spec), f"verifications.{name}")
        self.verifications[name] = verification
        return verification

    def set_maintenance_window(self, spec: Mapping[str, Any] | WindowsConfig) -> WindowsConfig:
        """Set windows: ``{group: "Sunday 01:00-03:00" | [specs]}`` or a full windows config."""
        if isinstance(spec, WindowsConfig):
            windows = spec
        else:
            data = dict(spec)
            if not data.keys() <= set(WindowsConfig.model_fields):  # the brief's {group: spec} form
                data = {"groups": data}
            windows = _build(WindowsConfig, data, "windows")
        self.windows = windows
        return windows

    def set_parallelization(self, spec: Mapping[str, Any] | ParallelismConfig) -> ParallelismConfig:
        """Set parallelism: max servers overall/per group/per datacenter, delay, pools, limits."""
        par = (
            spec
            if isinstance(spec, ParallelismConfig)
            else _build(ParallelismConfig, dict(spec), "parallelism")
        )
        self.parallelism = par
        return par

    # -- files ---------------------------------------------------------------------------------------

    @classmethod
    def from_yaml(cls, text_or_path: str | Path) -> MaintenanceWorkflow:
        """Load YAML text or a YAML file; WorkflowError lists every problem at ``file:line:col``."""
        from sysflow.model.loader import load_yaml

        return load_yaml(text_or_path)

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> MaintenanceWorkflow:
        """Load JSON text or a JSON file; WorkflowError lists every problem at ``file:line:col``."""
        from sysflow.model.loader import load_json

        return load_json(text_or_path)

    @classmethod
    def from_file(cls, path: str | Path) -> MaintenanceWorkflow:
        """Load a ``.json`` file as JSON, anything else as YAML."""
        from sysflow.model.loader import load_file

        return load_file(path)

    def to_yaml(self) -> str:
        """YAML that :meth:`from_yaml` reads back into an equal workflow."""
        from sysflow.model.loader import dump_yaml

        return dump_yaml(self)

    def to_json(self, *, indent: int | None = 2) -> str:
        """JSON that :meth:`from_json` reads back into an equal workflow."""
        from sysflow.model.loader import dump_json

        return dump_json(self, indent=indent)

    # -- positions -------------------------------------------------------------------------------------

    @property
    def source(self) -> str | None:
        """The file this workflow was loaded from, if any."""
        return self._source

    def set_source(self, source: str | None, positions: Mapping[str, str]) -> None:
        """Record where the workflow came from: field path -> ``file:line:col`` (used by loaders)."""
        self._source = source
        self._positions = dict(positions)

    def locate(self, path: str) -> str:
        """``file:line:col`` of a field path (or of its nearest recorded parent), else the path."""
        aliased = path.replace("rollout.groups", "rollout.waves", 1)  # `waves` is the file's other name
        for probe, alias in zip(_ancestors(path), _ancestors(aliased), strict=True):
            for candidate in (probe, alias):
                if candidate in self._positions:
                    return self._positions[candidate]
        return path

    def task(self, task_id: str) -> Task:
        """The task named ``task_id``."""
        for t in self.tasks:
            if t.id == task_id:
                return t
        raise KeyError(task_id)

    # -- whole-workflow checks -----------------------------------------------------------------------

    def problems(self) -> list[Problem]:
        """Every inconsistency visible without an inventory: duplicates, unknown names, cycles."""
        from sysflow.model.workflow_checks import workflow_problems

        return [*workflow_problems(self), *expiry_problems(self)]

    def check(self) -> MaintenanceWorkflow:
        """Raise :class:`WorkflowError` with every problem of :meth:`problems`; return self if none."""
        found = self.problems()
        if found:
            raise WorkflowError(found, source=self._source)
        return self


Workflow = MaintenanceWorkflow


def expiry_problems(wf: MaintenanceWorkflow) -> list[Problem]:
    """``on_window_expiry: rollback`` needs something to roll back with: ``rollout.auto_rollback``
    and at least one task with a ``rollback`` command. Without them a window expiry would only end
    the run failed (or "rolled back" with nothing undone), so the workflow is refused instead."""
    if wf.on_window_expiry is not ExpiryPolicy.ROLLBACK:
        return []
    missing = []
    if not wf.rollout.auto_rollback:
        missing.append("rollout.auto_rollback is not true")
    if not any(task.rollback for task in wf.tasks):
        missing.append("no task has a rollback command")
    if not missing:
        return []
    return [
        Problem(
            "on_window_expiry: rollback needs rollout.auto_rollback: true and at least one task with a "
            f"rollback command, but {' and '.join(missing)} (add them, or use finish or abort)",
            wf.locate("on_window_expiry"),
        )
    ]


def _listify(value: str | Iterable[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _ancestors(path: str) -> Iterator[str]:
    """``a.b[1].c``, ``a.b[1]``, ``a.b``, ``a``."""
    while path:
        yield path
        path = _parent_path(path)


def _parent_path(path: str) -> str:
    if path.endswith("]"):
        return path[: path.rindex("[")]
    return path.rpartition(".")[0]


def _build(cls: type[_M], data: dict[str, Any], prefix: str) -> _M:
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise WorkflowError(problems_from_validation(exc, prefix)) from None
