"""``file``: a path's kind (file, directory, touched, absent) and its mode, owner and group."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from sysflow.model.base import FrozenModel
from sysflow.model.modules.base import HostPath, ModuleActions, assign, script

__all__ = ["FileModule", "Mode", "Name", "attributes"]

Mode = Annotated[str, Field(pattern=r"^0?[0-7]{3,4}$")]
"""An octal mode, e.g. ``'0644'``."""
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.][A-Za-z0-9_.-]*$")]
"""A user or group name."""


class FileModule(FrozenModel):
    """Ensure ``path`` is a file (it must exist), a directory, an existing or new (``touch``) file,
    or ``absent``; with ``mode``/``owner``/``group`` set where given. Reports what it changed."""

    path: HostPath = Field(description="Absolute path on the host.")
    state: Literal["file", "directory", "touch", "absent"] = Field(
        "file", description="file (must exist), directory (created with parents), touch, absent."
    )
    mode: Mode | None = Field(None, description="Octal mode, e.g. '0644'.")
    owner: Name | None = Field(None, description="User that owns the path.")
    group: Name | None = Field(None, description="Group that owns the path.")

    def actions(self) -> ModuleActions:
        """Run and check scripts (no rollback: what was removed or replaced is not kept)."""
        return ModuleActions(run=self._script(check_only=False), check=self._script(check_only=True))

    def _script(self, *, check_only: bool) -> str:
        prelude = assign(p=self.path)
        detect, apply = self._kind()
        preview = f'echo "would make $p {self.state}"\n' if self.state != "file" else ""
        if self.state != "absent":
            more_detect, more_apply, more_preview = attributes(self.mode, self.owner, self.group)
            detect, apply, preview = detect + more_detect, apply + more_apply, preview + more_preview
        return script(prelude, detect, apply, check_only=check_only, preview=preview)

    def _kind(self) -> tuple[str, str]:
        if self.state == "absent":
            return (
                'if [ -e "$p" ] || [ -L "$p" ]; then c=1; fi\n',
                'rm -rf -- "$p" || exit 1\necho "removed $p"\n',
            )
        if self.state == "directory":
            return (
                '[ -d "$p" ] || c=1\n',
                'if [ ! -d "$p" ]; then mkdir -p -- "$p" || exit 1; echo "created directory $p"; fi\n',
            )
        if self.state == "touch":
            return (
                '[ -e "$p" ] || c=1\n',
                'if [ ! -e "$p" ]; then touch -- "$p" || exit 1; echo "created file $p"; fi\n',
            )
        return (
            '[ -f "$p" ] || { echo "file: $p does not exist or is not a file (state: touch creates it)" >&2;'
            " exit 1; }\n",
            "",
        )


def attributes(mode: str | None, owner: str | None, group: str | None) -> tuple[str, str, str]:
    """Scripts for ``$p``'s mode, owner and group (where given): detection reads each attribute once
    (``stat``) and sets ``c=1`` when one differs; apply sets the ones that differ and says so;
    preview only says what would change."""
    wanted = [
        (flag, value, tool)
        for flag, value, tool in (
            ("%a", None if mode is None else format(int(mode, 8), "o"), "chmod"),
            ("%U", owner, "chown"),
            ("%G", group, "chgrp"),
        )
        if value is not None
    ]
    detect, apply, preview = "", "", ""
    for i, (flag, value, tool) in enumerate(wanted):
        detect += assign(**{f"want{i}": value})
        detect += f'now{i}=$(stat -c {flag} -- "$p" 2>/dev/null || true)\n[ "$now{i}" = "$want{i}" ] || c=1\n'
        what = {"chmod": "mode", "chown": "owner", "chgrp": "group"}[tool]
        said = f'echo "{what}: ${{now{i}:-(new)}} -> $want{i}"'
        apply += f'if [ "$now{i}" != "$want{i}" ]; then {tool} -- "$want{i}" "$p" || exit 1; {said}; fi\n'
        preview += f'if [ "$now{i}" != "$want{i}" ]; then {said}; fi\n'
    return detect, apply, preview
