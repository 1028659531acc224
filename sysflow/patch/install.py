"""The install operation: a workflow that puts on each host exactly the approved versions its scan
lacks, pinned (``apt-get install name=version``, ``dnf install name-version``, through the
``package`` module), in the rollout's waves and inside the workflow's windows; then verifies each
pinned version is installed (a verification probe) and reboots per the baseline's policy through
the ``reboot`` module (``if-needed``: where the host asks for it; ``always``; ``never``).

Each host's pins travel as its variable ``patch_pins`` (``"openssl=3.0.15-1 curl=7.88.1-10"``).
With ``rejected_action: block`` a guard task first asks the manager what the pins would pull in
and refuses a host on which a rejected package would be installed, naming it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sysflow.model.inventory import Inventory
from sysflow.model.selection import limited_inventory
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.patch.baseline import Baseline, HostCompliance

__all__ = ["PINS_VAR", "VERIFIED", "install_inventory", "install_workflow"]

PINS_VAR = "patch_pins"
VERIFIED = "approved versions installed"

_GUARD = r"""set -f
pins={{ vars.patch_pins }}
rejected=__REJECTED__
if command -v apt-get >/dev/null 2>&1; then
  pulled=$(LC_ALL=C apt-get -s -q install $pins 2>&1 | sed -n 's/^Inst \([^ ]*\) .*/\1/p')
else
  pulled=$(LC_ALL=C dnf -q --assumeno install $pins 2>&1 | awk 'NF >= 4 && $1 !~ /:$/ { print $1 }')
fi
bad=
for r in $rejected; do
  for p in $pulled; do [ "$p" = "$r" ] && bad="$bad $r"; done
done
if [ -n "$bad" ]; then echo "patch: the approved versions would install rejected package(s):$bad" >&2; exit 1; fi
echo "no rejected package pulled in"
"""

_PROBE = r"""set -f
pins={{ vars.patch_pins }}
missing=
for p in $pins; do
  n=${p%%=*} want=${p#*=}
  if command -v dpkg-query >/dev/null 2>&1; then
    now=$(dpkg-query -W -f='${Version}' "$n" 2>/dev/null)
  else
    now=$(rpm -q --qf '%{EPOCHNUM}:%{VERSION}-%{RELEASE}' "$n" 2>/dev/null); now=${now#0:}
  fi
  [ "$now" = "$want" ] || missing="$missing $n=${now:-(none)}(want $want)"
done
if [ -n "$missing" ]; then echo "missing:$missing"; else echo '__VERIFIED__'; fi
"""

_REBOOT_NEEDED = r"""if [ -e /var/run/reboot-required ]; then echo "required: /var/run/reboot-required exists"
elif command -v needs-restarting >/dev/null 2>&1 && ! needs-restarting -r >/dev/null 2>&1; then echo "required: needs-restarting -r"
else echo "not required"; fi
"""


def install_workflow(
    baseline: Baseline,
    *,
    rollout: Mapping[str, Any] | None = None,
    windows: Mapping[str, Any] | None = None,
    reboot_timeout: str = "10m",
) -> MaintenanceWorkflow:
    """The install workflow for ``baseline`` (hosts carry their pins as ``patch_pins``)."""
    import shlex

    tasks: list[dict[str, Any]] = []
    after: list[str] = []
    rejected = " ".join(sorted({s.partition("=")[0] for s in baseline.rejected}))
    if rejected and baseline.rejected_action == "block":
        guard = _GUARD.replace("__REJECTED__", shlex.quote(rejected))
        tasks.append(
            {
                "id": "patch_guard",
                "run": guard,
                "idempotent": True,
                "description": "no rejected package pulled in",
            }
        )
        after = ["patch_guard"]
    tasks.append(
        {
            "id": "patch_install",
            "depends_on": after,
            "package": {"name": "{{ vars.patch_pins }}", "state": "present"},
            "description": f"approved versions of baseline {baseline.name}, pinned",
        }
    )
    tasks.extend(_reboot_tasks(baseline, reboot_timeout))
    data: dict[str, Any] = {
        "name": f"patch_{_ident(baseline.name)}",
        "description": f"install the approved versions of baseline {baseline.name}",
        "become": True,
        "tasks": tasks,
        "verifications": {
            "approved_versions": {
                "after_tasks": ["patch_install"],
                "commands": {"approved": _PROBE.replace("__VERIFIED__", VERIFIED)},
                "comparisons": {"approved": {"type": "equals", "expected": VERIFIED}},
            }
        },
        "rollout": dict(rollout or {"strategy": "waves", "max_failures": "100%"}),
    }
    if windows:
        data["windows"] = dict(windows)
    return MaintenanceWorkflow.model_validate(data)


def _reboot_tasks(baseline: Baseline, timeout: str) -> list[dict[str, Any]]:
    reboot: dict[str, Any] = {
        "id": "patch_reboot",
        "depends_on": ["patch_install"],
        "reboot": {"timeout": timeout},
    }
    if baseline.reboot == "never":
        return []
    if baseline.reboot == "always":
        return [reboot]
    needed = {
        "id": "patch_reboot_needed",
        "depends_on": ["patch_install"],
        "run": _REBOOT_NEEDED,
        "register": "patch_reboot_needed",
        "idempotent": True,
    }
    reboot |= {
        "depends_on": ["patch_reboot_needed"],
        "when": 'matches(results.patch_reboot_needed.stdout, "^required")',
    }
    return [needed, reboot]


def _ident(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


def install_inventory(inventory: Inventory, compliance: Iterable[HostCompliance]) -> Inventory:
    """``inventory`` narrowed to the hosts with approved versions to install, each carrying its
    pins as ``patch_pins``; hosts with nothing to install are left out (nothing runs there)."""
    pins = {c.host: " ".join(c.pins) for c in compliance if c.pins and c.host in inventory.hosts}
    narrowed = limited_inventory(inventory, pins)
    for host, value in pins.items():
        narrowed.host_vars_dir[host] = {**narrowed.host_vars_dir.get(host, {}), PINS_VAR: value}
    return narrowed
