"""``lineinfile``: one line present (replacing the last line a regexp matches) or absent in a file.

The new content is computed aside, compared, and only when it differs is the file replaced:
written to a temporary file in the same directory with the old one's mode and owner, then renamed
over it (atomic). The replaced file is kept as ``PATH.sysflow-bak`` (or ``PATH.sysflow-new`` marks a
file the module created) for the task's rollback; a run that finds nothing to change removes
those, so a rollback never restores what an earlier run replaced.
"""

from __future__ import annotations

import shlex
from typing import Literal

from pydantic import Field, field_validator, model_validator

from sysflow.model.base import FrozenModel
from sysflow.model.modules.base import HostPath, ModuleActions, assign, script

__all__ = ["BACKUP_SUFFIX", "CREATED_SUFFIX", "LineInFileModule"]

BACKUP_SUFFIX = ".sysflow-bak"
CREATED_SUFFIX = ".sysflow-new"

# ENVIRON, not -v: awk -v would interpret backslashes in the line and the regexp
_AWK_PRESENT = (
    'BEGIN { line = ENVIRON["SF_LINE"]; re = ENVIRON["SF_RE"] }\n'
    '{ all[NR] = $0; if ((re != "" && $0 ~ re) || (re == "" && $0 == line)) last = NR }\n'
    'END { for (i = 1; i <= NR; i++) print ((i == last && re != "") ? line : all[i]); if (!last) print line }'
)
_AWK_ABSENT = (
    'BEGIN { line = ENVIRON["SF_LINE"]; re = ENVIRON["SF_RE"] }\n'
    '{ if ((re != "" && $0 ~ re) || (re == "" && $0 == line)) next; print }'
)


class LineInFileModule(FrozenModel):
    """Ensure ``line`` is in ``path`` (replacing the last line matching ``regexp``, else appended),
    or that no line equal to ``line`` (or matching ``regexp``) is, with ``state: absent``."""

    path: HostPath = Field(description="Absolute path of a text file on the host.")
    line: str | None = Field(None, description="The whole line (without newline).")
    regexp: str | None = Field(
        None, min_length=1, description="POSIX extended regexp (awk) of the line to replace or remove."
    )
    state: Literal["present", "absent"] = "present"
    create: bool = Field(False, description="Create the file when it does not exist (state: present).")
    backup: bool = Field(True, description="Keep the replaced file for the task's rollback.")

    @field_validator("line")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is not None and ("\n" in value or "\r" in value):
            raise ValueError("line must be one line (no newline)")
        return value

    @model_validator(mode="after")
    def _what(self) -> LineInFileModule:
        if self.state == "present" and self.line is None:
            raise ValueError("state: present needs line")
        if self.state == "absent" and self.line is None and self.regexp is None:
            raise ValueError("state: absent needs line or regexp")
        return self

    def actions(self) -> ModuleActions:
        rollback = None
        if self.backup:
            rollback = assign(p=self.path) + (
                f'if [ -e "$p{BACKUP_SUFFIX}" ]; then mv -f -- "$p{BACKUP_SUFFIX}" "$p" && echo "restored $p";\n'
                f'elif [ -e "$p{CREATED_SUFFIX}" ]; then rm -f -- "$p" "$p{CREATED_SUFFIX}" && echo "removed $p"; fi\n'
            )
        return ModuleActions(
            run=self._script(check_only=False), check=self._script(check_only=True), rollback=rollback
        )

    def _script(self, *, check_only: bool) -> str:
        prelude = assign(p=self.path, SF_LINE=self.line or "", SF_RE=self.regexp or "")
        prelude += "export SF_LINE SF_RE\n"
        prelude += (
            'cand=$(mktemp "${TMPDIR:-/tmp}/sysflow-line.XXXXXX") || exit 1\ntrap \'rm -f -- "$cand"\' EXIT\n'
        )
        awk = _AWK_PRESENT if self.state == "present" else _AWK_ABSENT
        if self.state == "present" and self.create:
            missing = "  src=/dev/null\n"
        elif self.state == "absent":
            missing = "  exit_ok=1\n"
        else:
            missing = '  echo "lineinfile: $p does not exist (create: true creates it)" >&2\n  exit 1\n'
        detect = (
            'src="$p"\nexit_ok=0\nif [ ! -e "$p" ]; then\n' + missing + "fi\n"
            'if [ "$exit_ok" = 0 ]; then\n'
            f'  awk {shlex.quote(awk)} "$src" > "$cand" || exit 1\n'
            '  cmp -s "$src" "$cand" || c=1\n'
            "fi\n"
        )
        on_ok = f'rm -f -- "$p{BACKUP_SUFFIX}" "$p{CREATED_SUFFIX}" || exit 1\n' if self.backup else ""
        keep = (
            f'if [ -e "$p" ]; then cp -p -- "$p" "$p{BACKUP_SUFFIX}" || exit 1; rm -f -- "$p{CREATED_SUFFIX}";\n'
            f'else : > "$p{CREATED_SUFFIX}" || exit 1; rm -f -- "$p{BACKUP_SUFFIX}"; fi\n'
            if self.backup
            else ""
        )
        apply = (
            'diff -u --label "$p (before)" --label "$p (after)" "$src" "$cand"\n'
            + keep
            + 'if [ ! -e "$p" ]; then cat "$cand" > "$p" || exit 1; exit 0; fi\n'  # new: the umask's mode
            'tmp=$(mktemp "$(dirname -- "$p")/.sysflow.XXXXXX") || exit 1\n'
            'cat "$cand" > "$tmp" || { rm -f -- "$tmp"; exit 1; }\n'
            'chmod --reference="$p" "$tmp" && chown --reference="$p" "$tmp" || { rm -f -- "$tmp"; exit 1; }\n'
            'mv -f -- "$tmp" "$p" || { rm -f -- "$tmp"; exit 1; }\n'
        )
        return script(prelude, detect, apply, check_only=check_only, on_ok=on_ok)
