"""The read-only scan: one shell script per host (apt or dnf, whichever the host has) printing its
managers' own output in ``### SECTION`` blocks, and the reading of that output into a
:class:`~sysflow.patch.records.HostScan`.

The script asks about the packages with a newer version offered, plus the names a baseline lists
(approved or rejected), so a rejected package already installed is seen even with nothing newer.
It changes nothing and needs no root: a scan may run any time, outside any window.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from datetime import date, datetime

from sysflow.model.versions import compare_debian, compare_rpm
from sysflow.model.workflow import MaintenanceWorkflow
from sysflow.patch.apt import (
    PolicyEntry,
    ReleaseInfo,
    is_security_suite,
    parse_apt_cache_policy,
    parse_apt_cache_show,
    parse_apt_list_upgradable,
    parse_release,
)
from sysflow.patch.dnf import (
    Advisory,
    AdvisoryInfo,
    parse_check_update,
    parse_rpm_installed,
    parse_updateinfo_info,
    parse_updateinfo_json,
    parse_updateinfo_list,
)
from sysflow.patch.records import Classification, Family, HostScan, Severity, Update

__all__ = ["SCAN_MARKER", "SCAN_TASK", "read_scan", "scan_script", "scan_workflow", "sections"]

SCAN_MARKER = "### sysflow-patch-scan 1"
SCAN_TASK = "patch_scan"

_SCRIPT = r"""LC_ALL=C; export LC_ALL
echo '__MARKER__'
if command -v apt-get >/dev/null 2>&1; then
  echo '### family debian'
  names="$(apt list --upgradable 2>/dev/null | sed -n 's|/.*||p') $extra"
  echo '### compact'
  apt-cache policy $names 2>/dev/null | awk '
    /^[^ ].*:$/ { n = substr($0, 1, length($0) - 1); v = ""; next }
    /^  Installed:/ { print "P " n " " $2 }
    /^ (\*\*\*|   ) [^ ]+ -?[0-9]+$/ { v = ($1 == "***") ? $2 : $1; next }
    /^ +-?[0-9]+ [^ ]/ && v != "" && $2 !~ /^\// { s = $3; sub(/\/.*/, "", s); print "S " n " " v " " s }'
  if [ "$fields" = 1 ]; then
    apt-cache show $names 2>/dev/null | awk '/^Package:/ { p = $2 } /^Version:/ { v = $2 }
      /^Priority:/ { r = $2 } /^Section:/ { c = $2 } /^$/ { if (p != "") print "F " p " " v " " r " " c; p = r = c = "" }'
  fi
  echo '### releases'
  for f in /var/lib/apt/lists/*Release; do
    [ -e "$f" ] || continue
    echo; grep -E '^(Suite|Codename|Origin|Label|Date):' "$f"
  done
  echo '### reboot'; if [ -e /var/run/reboot-required ]; then echo required; fi
elif command -v dnf >/dev/null 2>&1; then
  echo '### family redhat'
  offered="$(dnf -q check-update 2>/dev/null)"
  names="$(printf '%s\n' "$offered" | awk 'NF == 3 && $1 ~ /[.]/ { sub(/[.][^.]*$/, "", $1); print $1 }' | sort -u) $extra"
  echo '### installed'
  if [ -n "$(echo $names)" ]; then
    rpm -q --qf '%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE}\n' $names 2>/dev/null | grep -v ' is not installed$'
  fi
  echo '### check-update'; printf '%s\n' "$offered"
  if json=$(dnf -q updateinfo list --json 2>/dev/null); then
    echo '### updateinfo-json'; printf '%s\n' "$json"
  else
    echo '### updateinfo'; dnf -q updateinfo list 2>/dev/null
    echo '### updateinfo-info'; dnf -q updateinfo info 2>/dev/null | awk '
      { l = $0; sub(/ *:.*/, "", l); sub(/^ */, "", l) }
      l != "" { keep = (l ~ /^(Update ID|Type|Issued|Updated|Severity|CVEs)$/) }
      keep && /^ *[A-Za-z ]*:/ { print }'
  fi
  echo '### updateinfo-cve'; dnf -q updateinfo list --with-cve 2>/dev/null
  echo '### reboot'
  if command -v needs-restarting >/dev/null 2>&1; then
    needs-restarting -r >/dev/null 2>&1; [ $? = 1 ] && echo required
  fi
else
  echo 'patch scan: neither apt-get nor dnf on this host' >&2; exit 1
fi
echo '### end'
exit 0
"""


def scan_script(names: Iterable[str] = (), *, fields: bool = False) -> str:
    """The scan's shell script; ``names``: packages to report whether or not an update is offered;
    ``fields``: also read Debian's Priority and Section (only baselines with such rules need them).

    Debian hosts answer in a compact form (``P name installed``, ``S name version suite``,
    ``F name version priority section``) read from ``apt-cache policy`` and ``apt-cache show`` on
    the host, so a scan of a few hundred updates fits the output a run keeps per operation; a scan
    cut short (no ``### end``) is a failed scan, never a partial one."""
    extra = " ".join(sorted(set(names)))
    return f"extra={shlex.quote(extra)} fields={int(fields)}\n" + _SCRIPT.replace("__MARKER__", SCAN_MARKER)


def sections(text: str) -> dict[str, str]:
    """``### NAME`` blocks of the script's output → name → body (``family`` holds its value)."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("### "):
            head, _, value = line[4:].partition(" ")
            current = found.setdefault(head, [])
            if value:
                current.append(value)
        elif current is not None:
            current.append(line)
    return {k: "\n".join(v) for k, v in found.items()}


def read_scan(host: str, text: str, at: datetime, names: Iterable[str] = ()) -> HostScan:
    """The scan of ``host`` from its script's output; a host whose output lacks the marker is a
    failed scan (``error`` set), never an empty compliant one."""
    if SCAN_MARKER not in text:
        return HostScan(host, Family.DEBIAN, at, error="no scan output (the scan did not run)")
    parts = sections(text)
    if "end" not in parts:
        return HostScan(host, Family.DEBIAN, at, error="scan output cut short (too many updates to keep)")
    reboot = parts.get("reboot", "").strip().startswith("required")
    if parts.get("family", "").strip() == "redhat":
        return _redhat(host, parts, at, reboot, set(names))
    return _debian(host, parts, at, reboot)


# -- Debian / Ubuntu -------------------------------------------------------------------------------


def _releases(text: str) -> dict[str, ReleaseInfo]:
    found: dict[str, ReleaseInfo] = {}
    for block in text.split("\n\n"):
        info = parse_release(block)
        for key in (info.suite, info.codename):
            if key and (
                key not in found or (info.published or date.min) > (found[key].published or date.min)
            ):
                found[key] = info
    return found


def _compact(text: str) -> tuple[dict[str, PolicyEntry], dict[tuple[str, str], dict[str, str]]]:
    """The Debian scan's compact lines → policy entries and Priority/Section per version."""
    from sysflow.patch.apt import PolicyVersion

    installed: dict[str, str | None] = {}
    sources: dict[str, dict[str, list[str]]] = {}
    show: dict[tuple[str, str], dict[str, str]] = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) == 3 and f[0] == "P":
            installed[f[1]] = None if f[2] == "(none)" else f[2]
        elif len(f) == 4 and f[0] == "S":
            sources.setdefault(f[1], {}).setdefault(f[2], []).append(f"- {f[3]}")
        elif len(f) >= 3 and f[0] == "F":
            show[(f[1], f[2])] = {
                "Priority": f[3] if len(f) > 3 else "",
                "Section": f[4] if len(f) > 4 else "",
            }
    policy = {
        n: PolicyEntry(
            n, inst, None, tuple(PolicyVersion(v, 500, tuple(s)) for v, s in sources.get(n, {}).items())
        )
        for n, inst in installed.items()
    }
    return policy, show


def _debian(host: str, parts: Mapping[str, str], at: datetime, reboot: bool) -> HostScan:
    policy, show = _compact(parts.get("compact", ""))
    policy |= parse_apt_cache_policy(parts.get("policy", ""))
    for cand in parse_apt_list_upgradable(parts.get("upgradable", "")):
        policy.setdefault(cand.name, _entry_of(cand.name, cand.installed, cand.version, cand.suites))
    show |= parse_apt_cache_show(parts.get("show", ""))
    releases = _releases(parts.get("releases", ""))
    installed = {name: e.installed for name, e in policy.items() if e.installed}
    updates = [
        u for e in policy.values() if e.installed for u in _debian_updates(e, e.installed, show, releases)
    ]
    return HostScan(host, Family.DEBIAN, at, installed, tuple(updates), reboot)


def _entry_of(name: str, installed: str | None, version: str, suites: tuple[str, ...]) -> PolicyEntry:
    from sysflow.patch.apt import PolicyVersion

    return PolicyEntry(
        name, installed, version, (PolicyVersion(version, 500, tuple(f"- {s}" for s in suites)),)
    )


def _debian_updates(
    entry: PolicyEntry, installed: str, show: Mapping[tuple[str, str], Mapping[str, str]],
    releases: Mapping[str, ReleaseInfo],
) -> list[Update]:  # fmt: skip
    found = []
    for row in entry.versions:
        suites = row.suites
        if not suites or compare_debian(row.version, installed) <= 0:
            continue
        fields = show.get((entry.name, row.version), {})
        dates = [d for s in suites if s in releases and (d := releases[s].published) is not None]
        security = any(is_security_suite(s) for s in suites) or any(
            releases[s].label.endswith("-Security") for s in suites if s in releases
        )
        found.append(
            Update(
                entry.name,
                row.version,
                installed,
                Classification.SECURITY if security else Classification.OTHER,
                Severity.NONE,
                min(dates) if dates else None,
                (),
                ",".join(suites),
                fields.get("Priority", ""),
                fields.get("Section", ""),
            )
        )
    return found


# -- RHEL family ---------------------------------------------------------------------------------


def _redhat(host: str, parts: Mapping[str, str], at: datetime, reboot: bool, names: set[str]) -> HostScan:
    rpm = parse_rpm_installed(parts.get("installed", ""))
    advisories = (
        parse_updateinfo_json(parts["updateinfo-json"])
        if "updateinfo-json" in parts
        else parse_updateinfo_list(parts.get("updateinfo", ""))
    )
    info = parse_updateinfo_info(parts.get("updateinfo-info", ""))
    advisories = [_with_info(a, info.get(a.advisory)) for a in advisories]
    cves: dict[tuple[str, str], set[str]] = {}
    for row in parse_updateinfo_list(parts.get("updateinfo-cve", "")):
        cves.setdefault((row.name, row.version), set()).update(row.cves)
    merged: dict[tuple[str, str], Update] = {}
    for offered in parse_check_update(parts.get("check-update", "")):
        merged[(offered.name, offered.version)] = Update(
            offered.name, offered.version, rpm.get(offered.name), origin=offered.repo
        )
    for adv in advisories:
        key = (adv.name, adv.version)
        merged[key] = _with_advisory(merged.get(key), adv, rpm.get(adv.name))
    updates = tuple(
        _with_cves(u, cves.get((u.name, u.version), set()))
        for u in merged.values()
        if u.installed is not None and compare_rpm(u.version, u.installed) > 0
    )
    wanted = names | {u.name for u in updates}
    installed = {n: v for n, v in rpm.items() if n in wanted}
    return HostScan(host, Family.REDHAT, at, installed, updates, reboot)


def _with_info(adv: Advisory, info: AdvisoryInfo | None) -> Advisory:
    """dnf 4's list row completed from ``updateinfo info``: publication date, CVEs, severity."""
    if info is None:
        return adv
    from dataclasses import replace

    severity = adv.severity if adv.severity is not Severity.NONE else info.severity
    cves = tuple(sorted({*adv.cves, *info.cves}))
    return replace(adv, issued=adv.issued or info.issued, cves=cves, severity=severity)


def _with_advisory(update: Update | None, adv: Advisory, installed: str | None) -> Update:
    origin = update.origin if update is not None else ""
    return Update(
        adv.name, adv.version, installed, adv.classification, adv.severity, adv.issued,
        adv.cves, origin, advisory=adv.advisory,
    )  # fmt: skip


def _with_cves(update: Update, cves: set[str]) -> Update:
    if not cves:
        return update
    from dataclasses import replace

    return replace(update, cves=tuple(sorted(set(update.cves) | cves)))


def scan_workflow(names: Iterable[str] = (), *, fields: bool = False) -> MaintenanceWorkflow:
    """A one-task workflow running the scan on every host, failures stopping nothing (read-only:
    no become, no window)."""
    wf = MaintenanceWorkflow("patch_scan", description="sysflow patch scan (read-only)")
    wf.add_task(SCAN_TASK, scan_script(names, fields=fields), description="package scan (read-only)")
    wf.set_progressive_execution({"strategy": "waves", "max_failures": "100%"})
    return wf
