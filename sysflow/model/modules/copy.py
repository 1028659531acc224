"""``copy``: a local file installed on the host, sent over SFTP only when the host's copy differs.

The run compares the host's file with the local one by SHA-256 first; when they are equal nothing is
sent (the host's mode, owner and group are still set where given). When they differ the command
asks for the file (:data:`sysflow.transport.UPLOAD_MARK`), the host pool sends it to a stage path
of the login user's (mode 0600), and the command runs again: it checks the stage's checksum,
prints a diff (text) or the checksums (binary), keeps the replaced file for the task's rollback, and
renames a copy into place in the file's own directory (atomic: readers see the old or the new file).

The transfer's rate is the bandwidth the task demands from the workflow's bandwidth pools (a pool
whose ``unit`` is a rate such as ``Mbit/s``): see :mod:`sysflow.planner.bandwidth`.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shlex
from pathlib import Path

from pydantic import Field

from sysflow.model.base import FrozenModel
from sysflow.model.modules.base import CHANGED_MARK, OK_MARK, HostPath, LocalFile, ModuleActions, assign
from sysflow.model.modules.file import Mode, Name, attributes
from sysflow.model.modules.textedit import drop_backup, keep_backup, restore_backup
from sysflow.transport import STAGE_SHA_VAR, STAGE_SIZE_VAR, UPLOAD_MARK, UPLOAD_NEEDED, Upload

__all__ = ["DIFF_LIMIT", "CopyModule"]

DIFF_LIMIT = 256 * 1024  # bytes: larger (or binary) files report checksums instead of a diff


class CopyModule(FrozenModel):
    """Install the local file ``src`` as ``dest`` on the host, with ``mode``/``owner``/``group``."""

    src: LocalFile = Field(description="Local file on the controller (relative: to the current directory).")
    dest: HostPath = Field(description="Absolute path on the host; its directory must exist.")
    mode: Mode | None = Field(
        None, description="Octal mode, e.g. '0644' (default: the replaced file's, or 0644)."
    )
    owner: Name | None = Field(None, description="User that owns the file.")
    group: Name | None = Field(None, description="Group that owns the file.")
    backup: bool = Field(True, description="Keep the replaced file for the task's rollback.")

    def upload(self) -> Upload:
        """The file as the host pool sends it (checksum and size: read again only when it changed)."""
        st = os.stat(self.src)
        return _read_upload(self.src, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def actions(self) -> ModuleActions:
        up = self.upload()
        return ModuleActions(
            run=self._script(up, check_only=False),
            check=self._script(up, check_only=True),
            rollback=restore_backup(self.dest) if self.backup else None,
        )

    def _script(self, up: Upload | None, *, check_only: bool) -> str:
        """The install script; ``up`` None: the checksum and size come from the host pool's
        environment (``STAGE_SHA_VAR``, ``STAGE_SIZE_VAR``): a template's differ per host."""
        more_detect, more_apply, more_preview = attributes(self.mode, self.owner, self.group)
        known = (
            assign(want=up.sha256, size=up.size)
            if up is not None
            else f'want="${{{STAGE_SHA_VAR}:-}}"\nsize="${{{STAGE_SIZE_VAR}:-0}}"\n'
        )
        head = (
            assign(p=self.dest, label=Path(self.src).name) + known + 's="${SYSFLOW_STAGE:-}"\nc=0\n'
            'if [ -L "$p" ] || { [ -e "$p" ] && [ ! -f "$p" ]; }; then\n'
            '  echo "copy: $p exists and is not a regular file" >&2\n  exit 1\nfi\n'
            'd=$(dirname -- "$p")\n'
            '[ -d "$d" ] || { echo "copy: directory $d does not exist on the host" >&2; exit 1; }\n'
            'now=\nif [ -e "$p" ]; then now=$(sha256sum < "$p") || exit 1; now=${now%% *}; fi\n'
            '[ "$now" = "$want" ] || c=1\n' + more_detect
        )
        if check_only:
            said = 'if [ "$now" != "$want" ]; then echo "content: sha256 ${now:-(new)} -> $want"; fi\n'
            return head + f'if [ "$c" = 1 ]; then\n{said}{more_preview}fi\n[ "$c" = 0 ]\n'
        on_ok = drop_backup() if self.backup else ""
        mode = "" if self.mode else 'else chmod 644 "$tmp" || { rm -f -- "$tmp"; exit 1; }; '
        return (
            head
            + (
                f'if [ "$c" = 0 ]; then\n{on_ok}'
                f'  if [ -n "$s" ]; then rm -f -- "$s"; fi\n  echo {shlex.quote(OK_MARK)}\n  exit 0\nfi\n'
                'if [ "$now" != "$want" ]; then\n'
                "  got=\n"
                '  if [ -n "$s" ] && [ -f "$s" ] && [ ! -L "$s" ]; then got=$(sha256sum < "$s") || exit 1; got=${got%% *}; fi\n'
                '  if [ "$got" != "$want" ]; then\n'
                '    if [ -n "${SYSFLOW_SENT:-}" ]; then\n      rm -f -- "$s"\n'
                '      echo "copy: the file sent to $s is not $label (sha256 ${got:-missing}, expected $want)" >&2\n'
                "      exit 1\n    fi\n"
                '    if [ -z "$s" ]; then echo "copy: this connection cannot send files" >&2; exit 1; fi\n'
                '    rm -f -- "$s" || exit 1\n'  # a stale stage (an interrupted transfer): sent again
                f"    echo {shlex.quote(UPLOAD_MARK)}\n    exit {UPLOAD_NEEDED}\n  fi\nfi\n"
                f"echo {shlex.quote(CHANGED_MARK)}\n"
                'if [ "$now" != "$want" ]; then\n'
                '  if [ -n "${SYSFLOW_SENT:-}" ]; then echo "sent $label: $SYSFLOW_SENT bytes"; fi\n'
                f'  if [ -n "$now" ] && [ "$size" -le {DIFF_LIMIT} ] && [ "$(wc -c < "$p")" -le {DIFF_LIMIT} ] \\\n'
                '     && grep -qI . "$p" && grep -qI . "$s"; then\n'
                '    diff -u --label "$p (before)" --label "$p (after)" "$p" "$s"\n'
                '  else\n    echo "content: sha256 ${now:-(new)} -> $want"\n  fi\n'
                + "".join(f"  {line}\n" for line in (keep_backup() if self.backup else "").splitlines())
                + '  tmp=$(mktemp "$d/.sysflow.XXXXXX") || exit 1\n'
                '  cat -- "$s" > "$tmp" || { rm -f -- "$tmp"; exit 1; }\n'
                '  if [ -e "$p" ]; then chmod --reference="$p" "$tmp" && chown --reference="$p" "$tmp"'
                f' || {{ rm -f -- "$tmp"; exit 1; }}; {mode}fi\n'
                '  mv -f -- "$tmp" "$p" || { rm -f -- "$tmp"; exit 1; }\n'
                '  rm -f -- "$s"\nfi\n' + more_apply
            )
        )


@functools.lru_cache(maxsize=256)
def _read_upload(src: str, inode: int, size: int, mtime_ns: int, ctime_ns: int) -> Upload:
    """``src`` checksummed, once per version of the file (a workflow's every operation asks)."""
    digest = hashlib.sha256()
    read = 0
    with open(src, "rb") as f:
        while chunk := f.read(1024 * 1024):
            digest.update(chunk)
            read += len(chunk)
    return Upload(src, digest.hexdigest(), read)
