"""``lineinfile``: one line present (replacing the last line a regexp matches) or absent in a file.

The file is edited as every text-editing module edits it (:mod:`sysflow.model.modules.textedit`):
atomically, with ``PATH.sysflow-bak`` kept for the task's rollback.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from sysflow.model.modules.base import OneLine
from sysflow.model.modules.textedit import BACKUP_SUFFIX, CREATED_SUFFIX, TextEdit

__all__ = ["BACKUP_SUFFIX", "CREATED_SUFFIX", "LineInFileModule"]

_AWK_PRESENT = (
    'BEGIN { line = ENVIRON["SF_LINE"]; re = ENVIRON["SF_RE"] }\n'
    '{ all[NR] = $0; if ((re != "" && $0 ~ re) || (re == "" && $0 == line)) last = NR }\n'
    'END { for (i = 1; i <= NR; i++) print ((i == last && re != "") ? line : all[i]); if (!last) print line }'
)
_AWK_ABSENT = (
    'BEGIN { line = ENVIRON["SF_LINE"]; re = ENVIRON["SF_RE"] }\n'
    '{ if ((re != "" && $0 ~ re) || (re == "" && $0 == line)) next; print }'
)


class LineInFileModule(TextEdit):
    """Ensure ``line`` is in ``path`` (replacing the last line matching ``regexp``, else appended),
    or that no line equal to ``line`` (or matching ``regexp``) is, with ``state: absent``."""

    module_name: ClassVar[str] = "lineinfile"

    line: OneLine | None = Field(None, description="The whole line (without newline).")
    regexp: str | None = Field(
        None, min_length=1, description="POSIX extended regexp (awk) of the line to replace or remove."
    )

    @model_validator(mode="after")
    def _what(self) -> LineInFileModule:
        if self.state == "present" and self.line is None:
            raise ValueError("state: present needs line")
        if self.state == "absent" and self.line is None and self.regexp is None:
            raise ValueError("state: absent needs line or regexp")
        return self

    def _program(self) -> tuple[str, dict[str, str]]:
        awk = _AWK_PRESENT if self.state == "present" else _AWK_ABSENT
        return awk, {"SF_LINE": self.line or "", "SF_RE": self.regexp or ""}
