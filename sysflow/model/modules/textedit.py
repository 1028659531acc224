"""What ``lineinfile`` and ``blockinfile`` share: a text file edited by an awk program, atomically.

The new content is computed aside (awk reads the file, writes a candidate), compared, and only when
it differs is the file replaced: written to a temporary file in the same directory with the old
one's mode and owner, then renamed over it (atomic). The replaced file is kept as ``PATH.sysflow-bak``
(or ``PATH.sysflow-new`` marks a file the module created) for the task's rollback; a run that finds
nothing to change removes those, so a rollback never restores what an earlier run replaced.

Values reach awk through the environment (``ENVIRON``), never ``awk -v``, which would interpret
backslashes in them.
"""

from __future__ import annotations

import shlex
from typing import ClassVar, Literal

from pydantic import Field

from sysflow.model.base import FrozenModel
from sysflow.model.modules.base import HostPath, ModuleActions, assign, script

__all__ = ["BACKUP_SUFFIX", "CREATED_SUFFIX", "TextEdit", "drop_backup", "keep_backup", "restore_backup"]

BACKUP_SUFFIX = ".sysflow-bak"
CREATED_SUFFIX = ".sysflow-new"


def restore_backup(path: str) -> str:
    """The rollback of a module that replaced or created the file ``path`` (kept by :func:`keep_backup`)."""
    return assign(p=path) + (
        f'if [ -e "$p{BACKUP_SUFFIX}" ]; then mv -f -- "$p{BACKUP_SUFFIX}" "$p" && echo "restored $p";\n'
        f'elif [ -e "$p{CREATED_SUFFIX}" ]; then rm -f -- "$p" "$p{CREATED_SUFFIX}" && echo "removed $p"; fi\n'
    )


def keep_backup() -> str:
    """Before ``$p`` is replaced: keep it as ``$p.sysflow-bak``, or mark that the module creates it."""
    return (
        f'if [ -e "$p" ]; then cp -p -- "$p" "$p{BACKUP_SUFFIX}" || exit 1; rm -f -- "$p{CREATED_SUFFIX}";\n'
        f'else : > "$p{CREATED_SUFFIX}" || exit 1; rm -f -- "$p{BACKUP_SUFFIX}"; fi\n'
    )


def drop_backup() -> str:
    """When ``$p`` already was as asked: an older backup must not be what a rollback restores."""
    return f'rm -f -- "$p{BACKUP_SUFFIX}" "$p{CREATED_SUFFIX}" || exit 1\n'


class TextEdit(FrozenModel):
    """The fields and scripts of a module that edits one text file through an awk program."""

    module_name: ClassVar[str] = "textedit"  # names the module in its error messages

    path: HostPath = Field(description="Absolute path of a text file on the host.")
    state: Literal["present", "absent"] = "present"
    create: bool = Field(False, description="Create the file when it does not exist (state: present).")
    backup: bool = Field(True, description="Keep the replaced file for the task's rollback.")

    def _program(self) -> tuple[str, dict[str, str]]:
        """The awk program (stdin: the file, stdout: the new content) and its ENVIRON values."""
        raise NotImplementedError

    def actions(self) -> ModuleActions:
        rollback = restore_backup(self.path) if self.backup else None
        return ModuleActions(
            run=self._script(check_only=False), check=self._script(check_only=True), rollback=rollback
        )

    def _script(self, *, check_only: bool) -> str:
        awk, env = self._program()
        prelude = assign(p=self.path, **env) + f"export p {' '.join(env)}\n"
        prelude += (
            'cand=$(mktemp "${TMPDIR:-/tmp}/sysflow-edit.XXXXXX") || exit 1\ntrap \'rm -f -- "$cand"\' EXIT\n'
        )
        if self.state == "present" and self.create:
            missing = "  src=/dev/null\n"
        elif self.state == "absent":
            missing = "  exit_ok=1\n"
        else:
            missing = (
                f'  echo "{self.module_name}: $p does not exist (create: true creates it)" >&2\n  exit 1\n'
            )
        detect = (
            'src="$p"\nexit_ok=0\nif [ ! -e "$p" ]; then\n' + missing + "fi\n"
            'if [ "$exit_ok" = 0 ]; then\n'
            f'  awk {shlex.quote(awk)} "$src" > "$cand" || exit 1\n'
            '  cmp -s "$src" "$cand" || c=1\n'
            "fi\n"
        )
        on_ok = drop_backup() if self.backup else ""
        keep = keep_backup() if self.backup else ""
        apply = (
            'diff -u --label "$p (before)" --label "$p (after)" "$src" "$cand"\n'
            + keep
            + 'if [ ! -e "$p" ]; then cat "$cand" > "$p" || exit 1; exit 0; fi\n'  # new: the umask's mode
            'tmp=$(mktemp "$(dirname -- "$p")/.sysflow.XXXXXX") || exit 1\n'
            'cat "$cand" > "$tmp" || { rm -f -- "$tmp"; exit 1; }\n'
            'chmod --reference="$p" "$tmp" && chown --reference="$p" "$tmp" || { rm -f -- "$tmp"; exit 1; }\n'
            'mv -f -- "$tmp" "$p" || { rm -f -- "$tmp"; exit 1; }\n'
        )
        preview = 'diff -u --label "$p (before)" --label "$p (after)" "$src" "$cand"\n'
        return script(prelude, detect, apply, check_only=check_only, on_ok=on_ok, preview=preview)
