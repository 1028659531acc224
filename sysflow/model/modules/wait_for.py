"""``wait_for``: wait on the host until a path exists (or is gone), a TCP port accepts (or refuses)
connections, or a command succeeds; fail with what was awaited when ``timeout`` passes. Never changes
anything, so it always reports ok."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from sysflow.model.base import FrozenModel
from sysflow.model.durations import Duration
from sysflow.model.modules.base import OK_MARK, ModuleActions, assign

__all__ = ["WaitForModule"]


class WaitForModule(FrozenModel):
    """One of ``path``, ``port`` (on ``host``, from the host itself) or ``command``."""

    path: str | None = Field(None, min_length=1, description="A path that must exist (or be absent).")
    port: int | None = Field(None, ge=1, le=65535, description="A TCP port that must accept connections.")
    host: str = Field(
        "127.0.0.1", pattern=r"^[A-Za-z0-9_.:-]+$", description="Where the port is, seen from the host."
    )
    command: str | None = Field(None, min_length=1, description="A command that must exit 0.")
    state: Literal["present", "absent"] = Field(
        "present", description="absent: the path gone, the port closed, the command failing."
    )
    timeout: Duration = Field(300.0, gt=0, description="Give up (fail) after this long.")
    interval: Duration = Field(1.0, gt=0, description="Time between two probes.")

    @model_validator(mode="after")
    def _one(self) -> WaitForModule:
        given = [n for n in ("path", "port", "command") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of path, port or command" + (f" (got {', '.join(given)})" if given else "")
            )
        return self

    def actions(self) -> ModuleActions:
        if self.path is not None:
            probe, what = '[ -e "$target" ]', f"path {self.path}"
            values: dict[str, str | int] = {"target": self.path}
        elif self.port is not None:
            probe = 'bash -c \'exec 3<>"/dev/tcp/$0/$1"\' "$target" "$port" 2>/dev/null'
            what, values = f"port {self.host}:{self.port}", {"target": self.host, "port": self.port}
        else:
            probe, what = 'sh -c "$target" >/dev/null 2>&1', "command"
            values = {"target": self.command or ""}
        test = probe if self.state == "present" else f"! {probe}"
        run = assign(**values, what=what, state=self.state) + (
            f"end=$(( $(date +%s) + {int(self.timeout + 0.999)} ))\n"
            "while :; do\n"
            f"  if {test}; then echo '{OK_MARK}'; echo \"$what is $state\"; exit 0; fi\n"
            '  if [ "$(date +%s)" -ge "$end" ]; then\n'
            f'    echo "wait_for: $what not $state after {self.timeout:g} s" >&2; exit 1\n'
            "  fi\n"
            f"  sleep {self.interval:g}\n"
            "done\n"
        )
        return ModuleActions(run=run, check=assign(**values) + test + "\n")
