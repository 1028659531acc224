"""Task modules whose whole effect is one shell script: ``file``, ``lineinfile``, ``blockinfile``,
``package``, ``git``, ``service``, ``wait_for``, ``http``; and ``copy``, ``script`` and ``reboot``, whose
command asks the host pool for more (a file sent, a reboot awaited).

A task names one module instead of ``run:`` (``lineinfile: {path: /etc/ntp.conf, line: ...}``). The
module's arguments are validated like every field a user writes (file:line errors), and the module
renders three commands the engine already knows how to run: ``run`` (idempotent: it changes the host
only where it differs from what is asked), ``check`` (exits 0 when nothing would change: what
``resume`` asks of an interrupted operation) and ``rollback`` (where the module can undo itself).

The first line ``run`` prints says what happened: :data:`CHANGED_MARK` or :data:`OK_MARK`; what
changed follows (a unified diff for files, ``mode: 644 -> 600`` for attributes). Values are shell-quoted
into variables at the top of each script, so templates (``{{ vars.ntp_server }}``) render safely.

Modules that need a session of their own (files over SFTP, reboot-and-wait, delegation) are not
here: they belong with the engine (``sysflow/modules/``), since a command cannot express them.
"""

from __future__ import annotations

from sysflow.model.modules.base import CHANGED_MARK, OK_MARK, ModuleActions, changed_of
from sysflow.model.modules.blockinfile import BlockInFileModule
from sysflow.model.modules.copy import CopyModule
from sysflow.model.modules.fetch import FetchModule
from sysflow.model.modules.file import FileModule
from sysflow.model.modules.git import GitModule
from sysflow.model.modules.http import HttpModule
from sysflow.model.modules.lineinfile import LineInFileModule
from sysflow.model.modules.package import PackageModule
from sysflow.model.modules.reboot import RebootModule
from sysflow.model.modules.script import ScriptModule
from sysflow.model.modules.service import ServiceModule
from sysflow.model.modules.template import TemplateModule
from sysflow.model.modules.wait_for import WaitForModule

__all__ = [
    "CHANGED_MARK",
    "MODULES",
    "OK_MARK",
    "BlockInFileModule",
    "CopyModule",
    "FetchModule",
    "FileModule",
    "GitModule",
    "HttpModule",
    "LineInFileModule",
    "ModuleActions",
    "PackageModule",
    "RebootModule",
    "ScriptModule",
    "ServiceModule",
    "TemplateModule",
    "WaitForModule",
    "changed_of",
]

MODULES = (
    "copy",
    "template",
    "fetch",
    "file",
    "lineinfile",
    "blockinfile",
    "package",
    "git",
    "service",
    "wait_for",
    "reboot",
    "script",
    "http",
)  # the Task fields that name a module
