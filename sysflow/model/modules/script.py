"""``script``: a local script sent to the host, run there with an interpreter, then removed.

The file travels as ``copy``'s does (:mod:`sysflow.model.modules.copy`): the command looks for it at
the stage path first (its SHA-256), asks for it when it is missing or another file
(:data:`sysflow.transport.UPLOAD_MARK`), and the host pool sends it over SFTP and runs the command
again. Then the command prints :data:`CHANGED_MARK` and runs the script (``interpreter``, else the
script's ``#!`` line, else ``/bin/sh``) with ``args``, in ``chdir``, with ``env`` added; its own
output follows the marker, its exit status is the task's, and the staged file is removed either way.

``creates`` (a path that exists once the script has done its work) and ``removes`` (one that is gone)
skip the script with ok and send nothing; they are also the module's check (what ``resume`` and check
mode ask). A script without either cannot say whether it ran: its check always answers "would run",
and the task is idempotent only when the workflow says so (``idempotent: true``).
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

from pydantic import Field, field_validator

from sysflow.model.base import FrozenModel
from sysflow.model.modules.base import CHANGED_MARK, OK_MARK, HostPath, LocalFile, ModuleActions, assign
from sysflow.model.modules.copy import _read_upload
from sysflow.transport import UPLOAD_MARK, UPLOAD_NEEDED, Upload

__all__ = ["DEFAULT_INTERPRETER", "ScriptModule"]

DEFAULT_INTERPRETER = "/bin/sh"  # a script without a #! line (and no interpreter given)
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class ScriptModule(FrozenModel):
    """Send the local script ``src``, run it on the host with ``args``, remove it."""

    src: LocalFile = Field(description="Local script on the controller (relative: to the current directory).")
    args: list[str] = Field(default_factory=list, description="Arguments, each passed as one word.")
    interpreter: str | None = Field(
        None,
        min_length=1,
        description=f"Command that runs the script, e.g. 'python3 -u' (default: its #! line, else "
        f"{DEFAULT_INTERPRETER}).",
    )
    chdir: HostPath | None = Field(None, description="Directory on the host the script runs in.")
    creates: HostPath | None = Field(
        None, description="Skip (ok) when this path exists on the host: the script's work is done."
    )
    removes: HostPath | None = Field(
        None, description="Skip (ok) when this path does not exist on the host: nothing to remove."
    )
    env: dict[str, str] = Field(default_factory=dict, description="Environment variables for the script.")

    @field_validator("interpreter")
    @classmethod
    def _words(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                words = shlex.split(value)
            except ValueError as exc:
                raise ValueError(f"interpreter {value!r}: {exc}") from None
            if not words:
                raise ValueError("interpreter is empty")
        return value

    @field_validator("env")
    @classmethod
    def _names(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [name for name in value if not re.fullmatch(_ENV_NAME, name)]
        if bad:
            raise ValueError(f"not an environment variable name: {', '.join(map(repr, bad))}")
        return value

    def upload(self) -> Upload:
        """The script as the host pool sends it (checksum and size: read again only when it changed)."""
        st = os.stat(self.src)
        return _read_upload(self.src, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def interpreter_words(self) -> list[str]:
        """What runs the script: ``interpreter``, else its ``#!`` line (as Linux reads it: the
        program and at most one argument), else ``/bin/sh``."""
        if self.interpreter is not None:
            return shlex.split(self.interpreter)
        with open(self.src, "rb") as f:
            first = f.readline(4096)
        if first.startswith(b"#!"):
            words = first[2:].decode(errors="replace").strip().split(None, 1)
            if words:
                return words
        return [DEFAULT_INTERPRETER]

    def actions(self) -> ModuleActions:
        up = self.upload()
        return ModuleActions(
            run=self._run(up),
            check=self._check(),
            idempotent=self.creates is not None or self.removes is not None,
        )

    def _skip(self, *, check_only: bool) -> str:
        """Exit ok (``check_only``: exit 0) where ``creates``/``removes`` say the work is done."""
        tests = []
        if self.creates is not None:
            tests.append(('[ -e "$creates" ]', "$creates exists"))
        if self.removes is not None:
            tests.append(('[ ! -e "$removes" ]', "$removes does not exist"))
        out = ""
        for test, why in tests:
            if check_only:
                out += f"if {test}; then exit 0; fi\n"
            else:
                out += (
                    f"if {test}; then\n"
                    '  if [ -n "$s" ]; then rm -f -- "$s"; fi\n'
                    f'  echo {shlex.quote(OK_MARK)}\n  echo "skipped: {why}"\n  exit 0\nfi\n'
                )
        return out

    def _values(self) -> str:
        values: dict[str, str | int] = {"label": Path(self.src).name}
        if self.creates is not None:
            values["creates"] = self.creates
        if self.removes is not None:
            values["removes"] = self.removes
        return assign(**values)

    def _check(self) -> str:
        why = []
        if self.creates is not None:
            why.append("$creates does not exist")
        if self.removes is not None:
            why.append("$removes exists")
        said = f" ({' and '.join(why)})" if why else ""
        return self._values() + self._skip(check_only=True) + f'echo "would run $label{said}"\nexit 1\n'

    def _run(self, up: Upload) -> str:
        argv = " ".join([*map(shlex.quote, self.interpreter_words()), '"$s"', *map(shlex.quote, self.args)])
        inside = "".join(f"export {name}={shlex.quote(value)}\n" for name, value in self.env.items())
        where = ""
        if self.chdir is not None:
            inside = 'cd -- "$dir" || exit 1\n' + inside
            where = (
                assign(dir=self.chdir)
                + 'if [ ! -d "$dir" ]; then echo "script: directory $dir does not exist on the host" >&2; exit 1; fi\n'
            )
        inside += f"exec {argv} < /dev/null\n"
        return (
            self._values()
            + assign(want=up.sha256)
            + 's="${SYSFLOW_STAGE:-}"\n'
            + self._skip(check_only=False)
            + where
            + "got=\n"
            'if [ -n "$s" ] && [ -f "$s" ] && [ ! -L "$s" ]; then got=$(sha256sum < "$s") || exit 1; got=${got%% *}; fi\n'
            'if [ "$got" != "$want" ]; then\n'
            '  if [ -n "${SYSFLOW_SENT:-}" ]; then\n    rm -f -- "$s"\n'
            '    echo "script: the file sent to $s is not $label (sha256 ${got:-missing}, expected $want)" >&2\n'
            "    exit 1\n  fi\n"
            '  if [ -z "$s" ]; then echo "script: this connection cannot send files" >&2; exit 1; fi\n'
            '  rm -f -- "$s" || exit 1\n'  # a stale stage (an interrupted transfer): sent again
            f"  echo {shlex.quote(UPLOAD_MARK)}\n  exit {UPLOAD_NEEDED}\nfi\n"
            'if [ ! -r "$s" ]; then\n'
            '  echo "script: $s cannot be read as $(id -un) (become_user cannot read the login user\'s file)" >&2\n'
            '  rm -f -- "$s" 2>/dev/null\n  exit 1\nfi\n'
            f"echo {shlex.quote(CHANGED_MARK)}\n"
            "(\n" + "".join(f"  {line}\n" for line in inside.splitlines()) + ")\n"
            "rc=$?\n"
            'rm -f -- "$s" 2>/dev/null\n'
            'if [ "$rc" != 0 ]; then echo "script: $label exited $rc" >&2; fi\n'
            'exit "$rc"\n'
        )
