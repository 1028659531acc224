"""What every shell module shares: the commands it renders, the marker its run prints, quoting."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field

__all__ = [
    "CHANGED_MARK",
    "OK_MARK",
    "HostPath",
    "LocalFile",
    "ModuleActions",
    "OneLine",
    "assign",
    "changed_of",
    "local_file",
    "script",
]

CHANGED_MARK = "::sysflow changed"  # the first line of a module's output when it changed the host
OK_MARK = "::sysflow ok"  # ... when the host already was as asked


def _absolute(value: str) -> str:
    if not value.startswith(("/", "{{")):  # a template may render the leading slash
        raise ValueError(f"path must be absolute: {value!r}")
    return value


HostPath = Annotated[str, Field(min_length=1), AfterValidator(_absolute)]
"""An absolute path on the host (or a template that renders one)."""


def _one_line(value: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError("must be one line (no newline)")
    return value


OneLine = Annotated[str, AfterValidator(_one_line)]
"""Text that must fit on one line of a file (no newline)."""


@dataclass(frozen=True, slots=True)
class ModuleActions:
    """The commands a module renders: run (idempotent), check (0: nothing to change), rollback;
    whether running it again is safe, and whether it runs on the controller (``local``)."""

    run: str
    check: str
    rollback: str | None = None
    idempotent: bool = True
    local: bool = False


def local_file(value: str) -> str:
    """A file on the controller, read once when the workflow loads: absolute, existing, readable."""
    if "{{" in value:
        raise ValueError("src is read on the controller once, before the run: it cannot be a template")
    path = Path(value).expanduser().resolve()
    if not path.is_file():
        raise ValueError(f"src {value}: no such file on the controller")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise ValueError(f"src {value}: {exc.strerror}") from None
    return str(path)


LocalFile = Annotated[str, Field(min_length=1), AfterValidator(local_file)]
"""A file on the controller (relative: to the current directory), checked when the workflow loads."""


def changed_of(stdout: str) -> bool | None:
    """True when a module changed the host, False when it found nothing to change, None otherwise."""
    first = stdout.split("\n", 1)[0].rstrip("\r")
    if first == CHANGED_MARK:
        return True
    if first == OK_MARK:
        return False
    return None


def assign(**values: str | int) -> str:
    """``name='value'`` lines (shell-quoted): every argument enters the script once, as a variable."""
    return "".join(f"{name}={shlex.quote(str(value))}\n" for name, value in values.items())


def script(
    prelude: str, detect: str, apply: str, *, check_only: bool, on_ok: str = "", preview: str = ""
) -> str:
    """A module script: ``detect`` sets ``c=1`` when the host differs; then either say what would
    change (``preview``) and exit with the verdict (``check_only``), or print the marker and run
    ``apply`` (changed) or ``on_ok`` (not)."""
    head = f"{prelude}c=0\n{detect}"
    if check_only:
        said = "".join(f"  {line}\n" for line in preview.splitlines())
        return head + (f'if [ "$c" = 1 ]; then\n{said}fi\n' if said else "") + '[ "$c" = 0 ]\n'
    ok = "".join(f"  {line}\n" for line in on_ok.splitlines())
    return (
        head
        + f'if [ "$c" = 0 ]; then\n{ok}  echo {shlex.quote(OK_MARK)}\n  exit 0\nfi\n'
        + f"echo {shlex.quote(CHANGED_MARK)}\n{apply}"
    )
