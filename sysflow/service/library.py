"""Stored workflows and inventories: files under the service's ``library/`` with SHA-256 digests.

A workflow is checked before it is stored (the same problems, with file and line, as ``sysflow
validate`` prints); runs start from stored names, so what ran is what was stored (its digest is in
the audit record of the start).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from sysflow.errors import Problem, StoreError, WorkflowError

__all__ = ["Entry", "Kind", "Library"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_MAX_BYTES = 4 * 1024 * 1024


class Kind(StrEnum):
    WORKFLOW = "workflows"
    INVENTORY = "inventories"


_SUFFIX = {Kind.WORKFLOW: ".yaml", Kind.INVENTORY: ".ini"}


@dataclass(frozen=True, slots=True)
class Entry:
    """One stored file: its kind, name, digest and size."""

    kind: Kind
    name: str
    digest: str
    size: int
    path: Path

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind.value, "name": self.name, "sha256": self.digest, "size": self.size}


class Library:
    """Workflows (YAML) and inventories (INI or YAML, by content) under one directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, kind: Kind, name: str) -> Path:
        if not _NAME.match(name):
            raise StoreError(f"{kind.value[:-1] if kind is Kind.WORKFLOW else 'inventory'} name {name!r}: "
                             "letters, digits, '_', '.', '-' (up to 64)")  # fmt: skip
        return self.root / kind.value / f"{name}{_SUFFIX[kind]}"

    def put(self, kind: Kind, name: str, text: str) -> Entry:
        """Store ``text`` under ``name`` after checking it loads (``WorkflowError`` naming file:line)."""
        path = self.path(kind, name)
        if len(text.encode()) > _MAX_BYTES:
            raise WorkflowError([Problem(f"larger than {_MAX_BYTES} bytes", name)], source=name)
        path.parent.mkdir(parents=True, exist_ok=True)
        staged = path.with_suffix(path.suffix + ".new")
        staged.write_text(text)
        try:
            _check(kind, staged, name)
        except BaseException:
            staged.unlink()
            raise
        staged.replace(path)
        return self.get(kind, name)

    def get(self, kind: Kind, name: str) -> Entry:
        path = self.path(kind, name)
        if not path.exists():
            raise StoreError(f"no stored {_what(kind)} {name!r}")
        data = path.read_bytes()
        return Entry(kind, name, hashlib.sha256(data).hexdigest(), len(data), path)

    def list(self, kind: Kind) -> list[Entry]:
        folder = self.root / kind.value
        names = sorted(p.stem for p in folder.glob(f"*{_SUFFIX[kind]}")) if folder.exists() else []
        return [self.get(kind, n) for n in names]


def _what(kind: Kind) -> str:
    return "workflow" if kind is Kind.WORKFLOW else "inventory"


def _check(kind: Kind, path: Path, name: str) -> None:
    from sysflow.errors import InventoryError
    from sysflow.model.inventory import Inventory
    from sysflow.model.workflow import MaintenanceWorkflow

    try:
        if kind is Kind.WORKFLOW:
            MaintenanceWorkflow.from_file(path)
        else:
            Inventory.load(path)
    except (WorkflowError, InventoryError) as exc:
        problems = [Problem(p.message, str(p.location).replace(str(path), name)) for p in exc.problems]
        raise WorkflowError(problems, source=name) from None
    except (OSError, ValueError) as exc:
        raise WorkflowError([Problem(str(exc), name)], source=name) from None
