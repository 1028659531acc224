"""A task: one command (or one module) run on each target host, with its retries, rollback, check,
conditions and become settings."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, field_validator, model_validator

from sysflow.model.base import FrozenModel
from sysflow.model.become import BecomeMethod, BecomeSetting, become_method_problem
from sysflow.model.durations import Duration
from sysflow.model.modules import (
    MODULES,
    BlockInFileModule,
    CopyModule,
    FetchModule,
    FileModule,
    GitModule,
    HttpModule,
    LineInFileModule,
    ModuleActions,
    PackageModule,
    RebootModule,
    ScriptModule,
    ServiceModule,
    TemplateModule,
    WaitForModule,
)
from sysflow.model.modules.reboot import DEFAULT_REBOOT_ESTIMATE
from sysflow.transport import Download, Reboot, Upload

__all__ = ["DEFAULT_EXPECTED_DURATION", "TASK_ID_PATTERN", "StrList", "Task"]

LOCALHOST = ("localhost", "127.0.0.1")  # delegate_to values that mean the controller itself
DEFAULT_EXPECTED_DURATION = 60.0  # seconds: the prior of a task that gives no expected_duration
TASK_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]*$"


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


StrList = Annotated[list[str], BeforeValidator(_as_list, json_schema_input_type=str | list[str])]


class Task(FrozenModel):
    """One command run on each target host (or once per wave, or on the controller)."""

    id: str = Field(pattern=TASK_ID_PATTERN, description="Unique task name.")
    run: str = Field("", description="Shell command run on the host (or give one module instead).")
    copy_file: CopyModule | None = Field(
        None,
        alias="copy",  # ``copy`` would shadow BaseModel.copy
        description="Module: a local file installed on the host (sent over SFTP only when it differs).",
    )
    file: FileModule | None = Field(None, description="Module: a path's kind, mode, owner and group.")
    lineinfile: LineInFileModule | None = Field(
        None, description="Module: one line present or absent in a file."
    )
    blockinfile: BlockInFileModule | None = Field(
        None, description="Module: a block of lines between marker lines present or absent in a file."
    )
    package: PackageModule | None = Field(
        None, description="Module: packages present, latest or absent (apt-get, dnf, yum or zypper)."
    )
    git: GitModule | None = Field(
        None, description="Module: a checkout of a git repository at a branch, tag or commit."
    )
    service: ServiceModule | None = Field(
        None, description="Module: a systemd unit started, stopped, restarted or reloaded; enabled or not."
    )
    fetch: FetchModule | None = Field(
        None, description="Module: a file brought from each host to DEST/HOST/PATH on the controller."
    )
    template: TemplateModule | None = Field(
        None, description="Module: a Jinja2 file rendered for each host (host, vars) and installed like copy."
    )
    wait_for: WaitForModule | None = Field(
        None, description="Module: wait until a path, a TCP port or a command answers on the host."
    )
    reboot: RebootModule | None = Field(
        None, description="Module: reboot the host and wait until a new boot id answers (within its timeout)."
    )
    script: ScriptModule | None = Field(
        None, description="Module: a local script sent to the host, run with an interpreter, then removed."
    )
    http: HttpModule | None = Field(
        None, description="Module: an HTTP request from the host (or the controller), its answer checked."
    )
    targets: StrList = Field(default_factory=lambda: ["all"], description="Host patterns (Ansible syntax).")
    depends_on: StrList = Field(default_factory=list, description="Tasks that must finish first, per host.")
    tags: StrList = Field(
        default_factory=list, description="Names for --tags/--skip-tags ('always' and 'never' as in Ansible)."
    )
    timeout: Duration | None = Field(None, description="Stop the command after this long.")
    retries: int = Field(0, ge=0, le=100, description="Extra attempts after a failed command.")
    retry_delay: Duration | None = Field(
        None,
        description="Seconds before the first retry; doubles per retry up to 60 s, jittered x0.5-1.5 "
        "(default 1 s: the one retry policy of the HostPool).",
    )
    expected_duration: Duration | None = Field(
        None, description=f"Prior duration estimate (default {DEFAULT_EXPECTED_DURATION:g}s)."
    )
    resources: dict[str, float] = Field(
        default_factory=dict, description="Pool name -> demand while running."
    )
    rollback: str | None = Field(None, description="Command that undoes this task on the host.")
    run_once: bool = Field(False, description="One operation per wave (a wave hook), not one per host.")
    local: bool = Field(False, description="Run on the controller instead of over SSH.")
    delegate_to: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$",
        description="Run each host's step on this inventory host instead (a load balancer draining "
        "it), over that host's connection and as its become settings say, with the host's own variables "
        "in the command; `localhost` runs it on the controller.",
    )
    idempotent: bool = Field(
        False, description="Safe to repeat; resume may re-run it instead of re-checking."
    )
    check: str | None = Field(
        None,
        description="Command that exits 0 when this task already took effect; resume runs it for an "
        "operation interrupted by a crash instead of repeating the task.",
    )
    description: str | None = None
    when: str | None = Field(
        None,
        description="Run only where this condition holds (over vars, facts, results, host); "
        "else the operation is skipped with the reason.",
    )
    register_as: str | None = Field(
        None,
        alias="register",
        pattern=TASK_ID_PATTERN,
        description="Keep this task's result (stdout, stderr, rc, ok) as results.<name> for later tasks.",
    )
    on_failure: StrList = Field(
        default_factory=list,
        description="Tasks run instead when this task fails on a host (diagnostics, a restart); then "
        "this task runs once more and its result decides. Tasks named here run only as branches.",
    )
    until: str | None = Field(
        None,
        description="Repeat the command (up to `retries` more times, `delay` apart) until this "
        "condition holds; `result` is the latest attempt.",
    )
    delay: Duration = Field(5.0, description="Seconds between `until` attempts.")
    become: bool | None = Field(
        None, description="Run through sudo (default: the host's ansible_become, else the workflow's)."
    )
    become_user: str | None = Field(None, pattern=r"^\S+$", description="User to become (default root).")
    become_method: BecomeMethod | None = Field(None, description="Only sudo runs (su/doas need a tty).")

    @model_validator(mode="after")
    def _module_commands(self) -> Task:
        """A module task's run, check and rollback are the module's (see sysflow.model.modules)."""
        given = [name for name in MODULES if self.module_args(name) is not None]
        if not given:
            if not self.run:
                raise ValueError(f"a task needs run: (a shell command) or one module: {', '.join(MODULES)}")
            return self
        if len(given) > 1:
            raise ValueError(f"one module per task, not {' and '.join(given)}")
        actions = self._module_actions(given[0])
        from sysflow.model.templates import template_references

        for command in (actions.run, actions.check, actions.rollback):
            if command is not None:  # the module's arguments are templates too: they must parse
                template_references(command)
        if self.run and self.run != actions.run:  # equal: a stored workflow read back
            raise ValueError(f"give run: or the {given[0]} module, not both")
        filled: dict[str, object] = {
            "run": actions.run,
            "check": self.check or actions.check,
            "rollback": self.rollback or actions.rollback,
            "idempotent": self.idempotent or actions.idempotent,
        }
        if actions.local:  # http from: controller: the controller makes the request, as for localhost
            if self.delegate_to is not None:
                raise ValueError(f"{given[0]} from: controller runs on the controller: no delegate_to")
            filled["local"] = True
        if self.reboot is not None:  # the reboot's bound is the operation's, and counts in its chain
            filled["timeout"] = self.timeout or self.reboot.timeout
            filled["expected_duration"] = self.expected_duration or min(
                DEFAULT_REBOOT_ESTIMATE, self.reboot.timeout
            )
            if self.local or self.run_once or self.delegate_to is not None:
                raise ValueError("reboot runs on each target host itself: not local, run_once or delegated")
        for name, value in filled.items():  # still validating: the frozen model is not yet handed out
            object.__setattr__(self, name, value)
        return self

    def module_args(self, name: str) -> Any:
        """The arguments of module ``name`` (as written in YAML), None when this task does not use it."""
        return getattr(self, "copy_file" if name == "copy" else name)

    def _module_actions(self, name: str) -> ModuleActions:
        actions: ModuleActions = self.module_args(name).actions()
        return actions

    @property
    def upload(self) -> Upload | None:
        """The local file this task's command may ask to be sent first (``copy``, ``script``)."""
        sends = self.copy_file or self.script
        return sends.upload() if sends is not None else None

    @property
    def reboot_spec(self) -> Reboot | None:
        """How this task's operations reboot their host once the command asks (``reboot``)."""
        return self.reboot.spec() if self.reboot is not None else None

    def download_for(self, host: str) -> Download | None:
        """Where ``host``'s file goes on the controller (``fetch``)."""
        return self.fetch.download(host) if self.fetch is not None else None

    @property
    def module(self) -> str | None:
        """The module this task runs (None: a shell command)."""
        return next((name for name in MODULES if self.module_args(name) is not None), None)

    @model_validator(mode="after")
    def _delegation(self) -> Task:
        if self.delegate_to in LOCALHOST:
            if self.local:
                raise ValueError("give delegate_to: localhost or local: true, not both")
            object.__setattr__(self, "local", True)  # still validating: the model is not yet handed out
        elif self.delegate_to is not None and self.local:
            raise ValueError(f"a local task cannot be delegated to {self.delegate_to}")
        return self

    @property
    def delegate_host(self) -> str | None:
        """The inventory host this task's steps run on instead of their own (None: their own)."""
        return None if self.delegate_to is None or self.delegate_to in LOCALHOST else self.delegate_to

    @model_validator(mode="after")
    def _become_usable(self) -> Task:
        problem = become_method_problem(self.become_method)
        if problem is None and self.local and (self.become or self.become_user or self.become_method):
            problem = "become cannot be used on a local task (it runs on the controller as you)"
        if problem is not None:
            raise ValueError(problem)
        return self

    @property
    def become_setting(self) -> BecomeSetting:
        """This task's become fields (see :mod:`sysflow.model.become`)."""
        return BecomeSetting(self.become, self.become_user, self.become_method)

    @field_validator("run", "rollback", "check")
    @classmethod
    def _template_parses(cls, value: str | None) -> str | None:
        from sysflow.model.templates import template_references

        if value is not None:
            template_references(value)
        return value

    @field_validator("when")
    @classmethod
    def _when_parses(cls, value: str | None) -> str | None:
        from sysflow.model.conditions import parse_condition

        if value is not None:
            parse_condition(value)
        return value

    @field_validator("until")
    @classmethod
    def _until_parses(cls, value: str | None) -> str | None:
        from sysflow.model.conditions import CONTEXT_ROOTS, parse_condition

        if value is not None:
            parse_condition(value, CONTEXT_ROOTS | {"result"})
        return value

    @field_validator("resources")
    @classmethod
    def _non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        bad = [k for k, v in value.items() if v < 0]
        if bad:
            raise ValueError(f"resource demands must be >= 0: {', '.join(bad)}")
        return value

    @property
    def estimate(self) -> float:
        """Expected duration in seconds, with the default applied."""
        return DEFAULT_EXPECTED_DURATION if self.expected_duration is None else self.expected_duration
