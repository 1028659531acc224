"""``template``: a Jinja2 file rendered for each host and installed as ``copy`` installs a file.

The template is read and parsed when the workflow loads; each host's content is rendered when the
run is compiled, over ``host`` and ``vars`` (the inventory's variables and ``-e``), with the sandbox
and strict undefined of command templates but no shell quoting (it is a file, not a command).
Facts and registered results do not exist yet then, so a template that reads them is refused at
load. The content travels in memory: the host compares checksums, asks for it only when it
differs, and installs it atomically with the diff and a backup, as ``copy`` does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import field_validator

from sysflow.model.modules.base import ModuleActions
from sysflow.model.modules.copy import CopyModule
from sysflow.model.modules.textedit import restore_backup
from sysflow.transport import Upload

__all__ = ["MAX_TEMPLATE_BYTES", "TemplateModule"]

MAX_TEMPLATE_BYTES = 1024 * 1024  # a template is configuration: rendered copies live in memory per host


class TemplateModule(CopyModule):
    """Render the local Jinja2 template ``src`` for each host and install it as ``dest``."""

    @field_validator("src")
    @classmethod
    def _parses(cls, value: str) -> str:
        from sysflow.model.templates import TemplateError, file_template_references

        path = Path(value)
        size = path.stat().st_size
        if size > MAX_TEMPLATE_BYTES:
            raise ValueError(
                f"src {value}: {size} bytes; a template holds at most {MAX_TEMPLATE_BYTES} (use copy)"
            )
        try:
            file_template_references(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise ValueError(f"src {value}: not UTF-8 text (use copy for binary files)") from None
        except TemplateError as exc:
            raise ValueError(f"src {value}: {exc}") from None
        return value

    def source(self) -> str:
        return Path(self.src).read_text(encoding="utf-8")

    def rendered(self, context: Mapping[str, Any], source: str | None = None) -> Upload:
        """This host's content (``context``: its ``host`` and ``vars``; ``source``: the template's
        text when the caller read it already), ready to send."""
        from sysflow.model.templates import render_file

        data = render_file(self.source() if source is None else source, context).encode()
        return Upload(self.src, hashlib.sha256(data).hexdigest(), len(data), content=data)

    def upload(self) -> Upload:  # the content is per host: see rendered()
        raise TypeError("a template's content is rendered per host (TemplateModule.rendered)")

    def actions(self) -> ModuleActions:
        return ModuleActions(
            run=self._script(None, check_only=False),
            check=self._script(None, check_only=True),
            rollback=restore_backup(self.dest) if self.backup else None,
        )
