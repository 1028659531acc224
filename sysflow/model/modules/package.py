"""``package``: packages present (any version, or an exact one), at the latest version, or absent,
through the host's own manager: apt-get, dnf, yum or zypper, the first the host has.

A name may pin a version with ``=`` whatever the manager (``nginx=1.22.1-9``; dnf and yum are
asked for ``nginx-1.22.1-9``), or be the absolute path of a package file on the host (``.deb`` for
apt, ``.rpm`` for the others): the file's package at the file's version. ``latest`` compares with
the package lists the host already has; the module never refreshes them (``apt-get update``), so a
run installs nothing the host's lists do not already name.

Run prints one line per package it changed, read back from the package database afterwards:
``nginx: (none) -> 1.22.1-9``; check prints what would change the same way and exits 1. Changing
anything needs root (``become: true``); checking does not. The manager's own output is shown (on
stderr) only when it fails. No rollback: the version a package had may not be installable again.
"""

from __future__ import annotations

import re
import shlex
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from sysflow.model.base import FrozenModel
from sysflow.model.modules.base import ModuleActions, assign, script

__all__ = ["PackageModule"]

_NAME = r"^([A-Za-z0-9][A-Za-z0-9+._-]*(=[A-Za-z0-9][A-Za-z0-9.+~:_-]*)?|/\S+\.(deb|rpm))$"


def _package_name(value: str) -> str:
    if value.endswith((".deb", ".rpm")) and not value.startswith(("/", "{{")):
        raise ValueError(f"a package file is named by its absolute path on the host: {value!r}")
    if "{{" not in value and not re.match(_NAME, value):  # a template is checked when rendered
        raise ValueError(
            f"not a package name, NAME=VERSION or absolute path of a .deb or .rpm file: {value!r}"
        )
    return value


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


PackageName = Annotated[str, AfterValidator(_package_name)]
PackageNames = Annotated[
    list[PackageName], Field(min_length=1), BeforeValidator(_as_list, json_schema_input_type=str | list[str])
]

_MANAGERS = {"apt": "apt-get", "dnf": "dnf", "yum": "yum", "zypper": "zypper"}

# Functions of every package script: installed NAME, candidate NAME, file_info FILE, same NOW WANT.
_FUNCTIONS = r"""installed() {  # the installed version of $1; nothing when it is not installed
  case $pm in
    apt-get) dpkg-query -W -f='${db:Status-Status} ${Version}' "$1" 2>/dev/null | sed -n 's/^installed //p' ;;
    *) rpm -q "$1" >/dev/null 2>&1 && rpm -q --qf '%{VERSION}-%{RELEASE}' "$1" ;;
  esac
}
candidate() {  # the version the manager would install of $1, from the lists the host has
  case $pm in
    apt-get) apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: //p' | grep -v '^(none)$' ;;
    zypper) zypper --non-interactive --quiet info "$1" 2>/dev/null | sed -n 's/^Version *: //p' ;;
    *) $pm -q list available "$1" 2>/dev/null | awk -v n="$1." 'index($1, n) == 1 { v = $2 } END { print v }' ;;
  esac
}
file_info() {  # "NAME VERSION" of the package file $1
  case $pm in
    apt-get) dpkg-deb -f "$1" Package Version 2>/dev/null | sed 's/^[A-Za-z]*: //' | tr '\n' ' ' | sed 's/ $//' ;;
    *) rpm -qp --qf '%{NAME} %{VERSION}-%{RELEASE}' "$1" 2>/dev/null ;;
  esac
}
same() {  # version $1 (installed) is what $2 asks for (rpm: VERSION alone matches any release)
  [ "$1" = "$2" ] && return 0
  [ "$pm" != apt-get ] && case $1 in "$2"-*) return 0 ;; esac
  return 1
}
"""

# Sets c=1 when a package differs; install/remove: the manager's arguments; changes: NAME=BEFORE
_DETECT = r"""set -f  # the lists below are split on spaces (no name holds one), never globbed
install= remove= changes= plan= touched=
for item in $names; do
  file= want=
  case $item in
    /*)
      [ -r "$item" ] || { echo "package: $item does not exist or cannot be read" >&2; exit 1; }
      info=$(file_info "$item")
      [ -n "$info" ] || { echo "package: $item is not a package file $pm can install" >&2; exit 1; }
      file=$item n=${info%% *} want=${info#* } ;;
    *=*) n=${item%%=*} want=${item#*=} ;;
    *) n=$item ;;
  esac
  now=$(installed "$n")
  if [ "$state" = absent ]; then
    [ -n "$now" ] || continue
    remove="$remove $n" want="(none)"
  else
    if [ -z "$want" ] && { [ -z "$now" ] || [ "$state" = latest ]; }; then
      want=$(candidate "$n")
      if [ -z "$want" ] && [ -z "$now" ]; then
        echo "package: $n is not installed and $pm knows no version of it" >&2; exit 1
      fi
    fi
    if [ -z "$want" ] || same "$now" "$want"; then continue; fi
    if [ -n "$file" ]; then spec=$file
    elif [ "$pm" = dnf ] || [ "$pm" = yum ]; then spec="$n-$want"
    else spec="$n=$want"; fi
    install="$install $spec"
  fi
  c=1 touched="$touched $n" changes="$changes $n=${now:-(none)}" plan="$plan$n: ${now:-(none)} -> $want
"
done
if [ "$check" = 1 ]; then printf '%s' "$plan"; fi
"""

_APPLY = r"""[ "$(id -u)" = 0 ] || { echo "package: changing$touched needs root (become: true)" >&2; exit 1; }
log=$(mktemp "${TMPDIR:-/tmp}/sysflow-package.XXXXXX") || exit 1
trap 'rm -f -- "$log"' EXIT
manage() {  # manage ACTION ARGS...: the manager's ACTION, its output shown only when it fails
  action=$1; shift
  case $pm in
    apt-get) DEBIAN_FRONTEND=noninteractive apt-get "$action" -y -q -o DPkg::Lock::Timeout=300 \
      -o Dpkg::Options::=--force-confold $([ "$action" = install ] && echo --allow-downgrades) "$@" ;;
    zypper) [ "$action" = purge ] && action=remove; zypper --non-interactive "$action" $([ "$action" = install ] && echo --oldpackage) "$@" ;;
    *) [ "$action" = purge ] && action=remove; $pm "$action" -y "$@" ;;
  esac > "$log" 2>&1 || { cat "$log" >&2; echo "package: $pm $action $* failed" >&2; exit 1; }
}
if [ -n "$install" ]; then manage install $install; fi
if [ -n "$remove" ]; then manage "$remove_action" $remove; fi
for pair in $changes; do
  n=${pair%%=*}
  after=$(installed "$n")
  echo "$n: ${pair#*=} -> ${after:-(none)}"
done
"""


class PackageModule(FrozenModel):
    """Ensure ``name`` (one or a list) is installed (``present``: any version unless pinned),
    at the candidate version (``latest``) or removed (``absent``)."""

    name: PackageNames = Field(
        description="Package names, NAME=VERSION, or absolute paths of .deb/.rpm files on the host."
    )
    state: Literal["present", "latest", "absent"] = "present"
    manager: Literal["auto", "apt", "dnf", "yum", "zypper"] = Field(
        "auto", description="auto: the first of apt-get, dnf, yum, zypper the host has."
    )
    purge: bool = Field(False, description="absent with apt: remove the configuration files too.")

    def actions(self) -> ModuleActions:
        """Run and check scripts (no rollback, see the module's docstring)."""
        return ModuleActions(run=self._script(check_only=False), check=self._script(check_only=True))

    def _script(self, *, check_only: bool) -> str:
        pm = _MANAGERS.get(self.manager, "auto")
        prelude = assign(
            names=" ".join(self.name),
            state=self.state,
            pm=pm,
            check=int(check_only),
            remove_action="purge" if self.purge else "remove",
        )
        prelude += (
            'if [ "$pm" = auto ]; then\n'
            "  for pm in apt-get dnf yum zypper none; do command -v $pm >/dev/null 2>&1 && break; done\n"
            "fi\n"
            'if [ "$pm" = none ]; then\n'
            f"  echo {shlex.quote('package: no apt-get, dnf, yum or zypper on this host')} >&2; exit 1\n"
            "fi\n"
            'command -v "$pm" >/dev/null 2>&1 || { echo "package: $pm is not on this host" >&2; exit 1; }\n'
            + _FUNCTIONS
        )
        return script(prelude, _DETECT, _APPLY, check_only=check_only)
