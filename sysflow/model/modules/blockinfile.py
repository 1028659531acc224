"""``blockinfile``: a block of lines between two marker lines present (inserted or replaced) or absent.

The markers are ``# BEGIN SYSFLOW MANAGED BLOCK`` and ``# END SYSFLOW MANAGED BLOCK`` by default
(``marker`` with ``{mark}`` standing for ``marker_begin``/``marker_end``); give each block of a file
its own marker. A block found between its markers is replaced where it is; a new one goes where
``insertafter``/``insertbefore`` say (EOF, BOF, or after/before the last line matching a regexp,
else at the end). The file is edited as every text-editing module edits it
(:mod:`sysflow.model.modules.textedit`): atomically, with ``PATH.sysflow-bak`` kept for the rollback.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from sysflow.model.modules.base import OneLine
from sysflow.model.modules.textedit import TextEdit

__all__ = ["DEFAULT_MARKER", "BlockInFileModule"]

DEFAULT_MARKER = "# {mark} SYSFLOW MANAGED BLOCK"

# all[]: the file; bl/el: the lines of the block's markers; at: the last line matching SF_RE;
# pos: the line after which a new block goes (0: before the first)
_AWK = """\
BEGIN { b = ENVIRON["SF_BEGIN"]; e = ENVIRON["SF_END"]; block = ENVIRON["SF_BLOCK"]
  where = ENVIRON["SF_WHERE"]; re = ENVIRON["SF_RE"]; present = (ENVIRON["SF_STATE"] == "present") }
{ all[NR] = $0
  if (!bl && $0 == b) bl = NR
  else if (bl && !el && $0 == e) el = NR
  if (re != "" && $0 ~ re) at = NR }
END {
  if (bl && !el) {
    print "blockinfile: " ENVIRON["p"] ": line " bl " begins a block (" b ") but no line ends it (" e ")" | "cat 1>&2"
    exit 1
  }
  pos = NR
  if (where == "BOF") pos = 0
  else if (where == "after" && at) pos = at
  else if (where == "before" && at) pos = at - 1
  if (!bl && present && pos == 0) emit()
  for (i = 1; i <= NR; i++) {
    if (bl && i >= bl && i <= el) { if (i == bl && present) emit(); continue }
    print all[i]
    if (!bl && present && i == pos) emit()
  }
}
function emit() { print b; if (block != "") print block; print e }
"""


class BlockInFileModule(TextEdit):
    """Ensure ``block`` stands between its markers in ``path`` (replacing what was between them), or,
    with ``state: absent``, that the markers and what is between them are gone."""

    module_name: ClassVar[str] = "blockinfile"

    block: str | None = Field(
        None, description="The lines between the markers (a trailing newline is dropped)."
    )
    marker: OneLine = Field(
        DEFAULT_MARKER, description="The marker lines; {mark} stands for marker_begin and marker_end."
    )
    marker_begin: OneLine = Field("BEGIN", min_length=1, description="{mark} in the first marker line.")
    marker_end: OneLine = Field("END", min_length=1, description="{mark} in the last marker line.")
    insertafter: OneLine | None = Field(
        None, min_length=1, description="A new block goes after the last line matching this regexp (or EOF)."
    )
    insertbefore: OneLine | None = Field(
        None, min_length=1, description="A new block goes before the last line matching this regexp (or BOF)."
    )

    @model_validator(mode="after")
    def _what(self) -> BlockInFileModule:
        if self.state == "present" and self.block is None:
            raise ValueError("state: present needs block")
        if "{mark}" not in self.marker:
            raise ValueError("marker must contain {mark} (else both marker lines are the same)")
        if self.marker_begin == self.marker_end:
            raise ValueError("marker_begin and marker_end must differ")
        if self.insertafter is not None and self.insertbefore is not None:
            raise ValueError("give insertafter or insertbefore, not both")
        return self

    def _program(self) -> tuple[str, dict[str, str]]:
        if self.insertbefore is not None:
            where, regexp = ("BOF", "") if self.insertbefore == "BOF" else ("before", self.insertbefore)
        elif self.insertafter is not None and self.insertafter != "EOF":
            where, regexp = "after", self.insertafter
        else:
            where, regexp = "EOF", ""
        block = self.block or ""
        return _AWK, {
            "SF_BEGIN": self.marker.replace("{mark}", self.marker_begin),
            "SF_END": self.marker.replace("{mark}", self.marker_end),
            "SF_BLOCK": block[:-1] if block.endswith("\n") else block,
            "SF_WHERE": where,
            "SF_RE": regexp,
            "SF_STATE": self.state,
        }
