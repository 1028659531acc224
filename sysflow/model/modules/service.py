"""``service``: a systemd unit started, stopped, restarted or reloaded, and enabled or not.

``started``/``stopped`` and ``enabled`` change the host only where it differs; ``restarted`` and
``reloaded`` always act (their check never passes: a resumed run repeats them). After ``started`` or
``restarted`` the unit must be active, else the run fails with the unit's last log lines. Run prints
``nginx.service: inactive -> active`` and ``enabled: disabled -> enabled``.

What a change replaced (``ActiveState`` and ``UnitFileState``) is kept in
``/run/sysflow/service/UNIT.prev`` for the task's rollback, which starts or stops the unit and
enables or disables it back (a restart or reload has nothing to undo); a run that finds nothing to
change removes the file. Hosts without a running systemd (containers, SysV init) fail with that said.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from sysflow.model.base import FrozenModel
from sysflow.model.modules.base import ModuleActions, assign, script

__all__ = ["STATE_DIR", "ServiceModule"]

STATE_DIR = "/run/sysflow/service"  # UNIT.prev: "ACTIVE ENABLED" before the last change

_SYSTEMD = r"""command -v systemctl >/dev/null 2>&1 || { echo "service: systemctl is not on this host" >&2; exit 1; }
[ -d /run/systemd/system ] || { echo "service: systemd is not running on this host (no /run/systemd/system)" >&2; exit 1; }
"""

_PRELUDE = rf"""load=$(systemctl show -p LoadState --value -- "$u" 2>/dev/null)
[ "$load" = loaded ] || {{ echo "service: no unit $u on this host (LoadState: ${{load:-unknown}})" >&2; exit 1; }}
active=$(systemctl is-active -- "$u" 2>/dev/null)
enabled_now=$(systemctl is-enabled -- "$u" 2>/dev/null)
prev="{STATE_DIR}/$u.prev"
ctl() {{  # ctl VERB: systemctl VERB UNIT, with the unit's status and last log lines when it fails
  systemctl "$1" -- "$u" || {{ echo "service: systemctl $1 $u failed" >&2; systemctl status --no-pager --lines=10 -- "$u" >&2; exit 1; }}
}}
"""

_DETECT = {
    "started": '[ "$active" = active ] || c=1\n',
    "stopped": "case $active in active|activating|reloading|deactivating) c=1 ;; esac\n",
    "restarted": "c=1\n",
    "reloaded": "c=1\n",
    None: "",
}

_APPLY = {
    "started": 'if [ "$active" != active ]; then ctl start; fi\n',
    "stopped": "case $active in active|activating|reloading|deactivating) ctl stop ;; esac\n",
    "restarted": "ctl restart\n",
    "reloaded": "ctl reload\n",
    None: "",
}

_REPORT = {
    "started": 'if [ "$active" != active ]; then echo "$u: $active -> $(systemctl is-active -- "$u")"; fi\n',
    "stopped": 'echo "$u: $active -> $(systemctl is-active -- "$u")"\n',
    "restarted": 'echo "$u: restarted, $(systemctl is-active -- "$u")"\n',
    "reloaded": 'echo "$u: reloaded"\n',
    None: "",
}

_ROLLBACK = rf"""[ -f "{STATE_DIR}/$u.prev" ] || exit 0
read -r was_active was_enabled < "{STATE_DIR}/$u.prev" || exit 1
now=$(systemctl is-active -- "$u" 2>/dev/null)
if [ -n "$undo_state" ] && [ "$was_active" = active ] && [ "$now" != active ]; then
  systemctl start -- "$u" || exit 1; echo "$u: started again"
elif [ -n "$undo_state" ] && [ "$was_active" != active ] && [ "$now" = active ]; then
  systemctl stop -- "$u" || exit 1; echo "$u: stopped again"
fi
if [ -n "$undo_enabled" ] && [ "$(systemctl is-enabled -- "$u" 2>/dev/null)" != "$was_enabled" ]; then
  case $was_enabled in enabled) systemctl enable -- "$u" ;; disabled) systemctl disable -- "$u" ;; esac || exit 1
  echo "enabled: back to $was_enabled"
fi
rm -f -- "{STATE_DIR}/$u.prev"
"""


class ServiceModule(FrozenModel):
    """Ensure the systemd unit ``name`` is in ``state`` and (or) ``enabled`` at boot or not."""

    name: str = Field(
        pattern=r"^([A-Za-z0-9@:._\\-]+|\{\{.*\}\})$", description="Unit name (nginx or nginx.service)."
    )
    state: Literal["started", "stopped", "restarted", "reloaded"] | None = Field(
        None, description="started/stopped: only when it differs; restarted/reloaded: always."
    )
    enabled: bool | None = Field(None, description="Started at boot (systemctl enable) or not.")
    daemon_reload: bool = Field(False, description="systemctl daemon-reload first (after editing a unit).")

    @model_validator(mode="after")
    def _something(self) -> ServiceModule:
        if self.state is None and self.enabled is None:
            raise ValueError("give state or enabled (or both)")
        return self

    def actions(self) -> ModuleActions:
        undo = assign(
            u=self.name,
            undo_state="1" if self.state in ("started", "stopped") else "",
            undo_enabled="" if self.enabled is None else "1",
        )
        return ModuleActions(
            run=self._script(check_only=False), check=self._script(check_only=True), rollback=undo + _ROLLBACK
        )

    def _script(self, *, check_only: bool) -> str:
        detect, apply = _DETECT[self.state], _APPLY[self.state] + self._verify() + _REPORT[self.state]
        if self.enabled is not None:
            want = "enabled" if self.enabled else "disabled"
            verb = "enable" if self.enabled else "disable"
            detect += f'[ "$enabled_now" = {want} ] || c=1\n'
            apply += f'if [ "$enabled_now" != {want} ]; then ctl {verb}; echo "enabled: ${{enabled_now:-(none)}} -> {want}"; fi\n'
        keep = f'mkdir -p {STATE_DIR} && echo "$active $enabled_now" > "$prev" || exit 1\n'
        reload = "systemctl daemon-reload || exit 1\n" if self.daemon_reload else ""
        prelude = assign(u=self.name) + _SYSTEMD + (reload if not check_only else "") + _PRELUDE
        on_ok = 'rm -f -- "$prev"\n'
        return script(prelude, detect, keep + apply, check_only=check_only, on_ok=on_ok)

    def _verify(self) -> str:
        """After a start or restart the unit must be active (a unit that exits at once is not)."""
        if self.state not in ("started", "restarted"):
            return ""
        return (
            'systemctl is-active --quiet -- "$u" || { echo "service: $u is $(systemctl is-active -- "$u") after'
            f' {self.state}" >&2; systemctl status --no-pager --lines=10 -- "$u" >&2; exit 1; }}\n'
        )
