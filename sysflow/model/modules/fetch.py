"""``fetch``: a file brought from each host to the controller, as ``DEST/HOST/PATH`` (Ansible's layout).

The host compares its file's SHA-256 with the controller's copy first: equal, nothing moves. Else it
copies the file (through sudo when it is root's) to a new private file of the login user's in
``/tmp`` and asks; the host pool brings it over SFTP, checks the checksum, renames it into place,
and runs the command again, which removes the staged copy.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from pydantic import Field, field_validator

from sysflow.model.base import FrozenModel
from sysflow.model.modules.base import CHANGED_MARK, OK_MARK, HostPath, ModuleActions, assign
from sysflow.transport import FETCH_MARK, FETCH_NEEDED, Download

__all__ = ["FetchModule"]


class FetchModule(FrozenModel):
    """Bring ``src`` from each host into ``dest/HOST/src`` on the controller."""

    src: HostPath = Field(description="Absolute path of a file on the host (not a template).")
    dest: str = Field(min_length=1, description="Local directory (relative: to the current directory).")
    fail_on_missing: bool = Field(
        True, description="A host without the file fails (else: ok, nothing fetched)."
    )

    @field_validator("src")
    @classmethod
    def _literal(cls, value: str) -> str:
        if "{{" in value:
            raise ValueError("src names the file on every host: it cannot be a template")
        return value

    @field_validator("dest")
    @classmethod
    def _local(cls, value: str) -> str:
        if "{{" in value:
            raise ValueError("dest is a directory on the controller: it cannot be a template")
        return str(Path(value).expanduser().resolve())

    def download(self, host: str) -> Download:
        """Where ``host``'s copy goes."""
        return Download(os.path.join(self.dest, host, self.src.lstrip("/")))

    def actions(self) -> ModuleActions:
        return ModuleActions(run=self._script(check_only=False), check=self._script(check_only=True))

    def _script(self, *, check_only: bool) -> str:
        missing = (
            'echo "fetch: $p does not exist" >&2\n  exit 1\n'
            if self.fail_on_missing
            else f'echo {shlex.quote(OK_MARK)}\n  echo "fetch: $p does not exist (fail_on_missing: false)"\n  exit 0\n'
        )
        head = (
            assign(p=self.src)
            + f'if [ ! -e "$p" ]; then\n  {missing}fi\n'
            + '[ -f "$p" ] || { echo "fetch: $p is not a regular file" >&2; exit 1; }\n'
            + 'sum=$(sha256sum < "$p") || exit 1\nsum=${sum%% *}\n'
        )
        if check_only:
            return head + (
                'if [ "$sum" != "${SYSFLOW_HAVE_SHA256:-}" ]; then echo "would fetch $p (sha256 $sum)"; exit 1; fi\n'
            )
        return head + (
            's="${SYSFLOW_STAGE:-}"\n'
            'if [ -n "${SYSFLOW_FETCHED:-}" ]; then\n'
            '  case "$s" in /tmp/sysflow-fetch.*) rm -f -- "$s";; esac\n'
            f"  echo {shlex.quote(CHANGED_MARK)}\n"
            '  echo "fetched $p: $SYSFLOW_FETCHED bytes (sha256 $sum)"\n  exit 0\nfi\n'
            f'if [ "$sum" = "${{SYSFLOW_HAVE_SHA256:-}}" ]; then echo {shlex.quote(OK_MARK)}; exit 0; fi\n'
            # a new private file (mktemp: never through a link someone planted), the login user's
            "s=$(mktemp /tmp/sysflow-fetch.XXXXXXXX) || exit 1\n"
            'cat -- "$p" > "$s" || { rm -f -- "$s"; exit 1; }\n'
            'if [ -n "${SUDO_USER:-}" ] && [ "$(id -u)" = 0 ]; then chown -- "$SUDO_USER" "$s" || exit 1; fi\n'
            'size=$(wc -c < "$s")\n'
            f'echo "{FETCH_MARK} $sum $size $s"\nexit {FETCH_NEEDED}\n'
        )
