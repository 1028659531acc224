"""The default rule set for the patching workflow, and the built-in responders that read host state.

Rules in order (the first whose regex is found in the command wins):

=================  =====================================================  ==============================
name               matches                                                does
=================  =====================================================  ==============================
rollback           ``rollback``, ``restore``, ``--allow-downgrades``      restores the ``backup`` snapshot
backup             ``backup``, ``tar c...``, ``rsync``, ``etckeeper``     saves the ``backup`` snapshot
apt_update         ``apt-get update``                                     refreshes the package index
upgrade_packages   ``apt-get -y upgrade`` / ``dist-upgrade``              upgrades what the index offers
restart_service    ``systemctl restart|start|reload NAME``                starts it (fails if broken)
stop_service       ``systemctl stop NAME``                                stops it
is_active          ``systemctl is-active NAME...``                        prints states, exit 3 if not
health_check       ``curl``                                               OK while nginx is active
dpkg_list          ``dpkg -l``                                            ``ii  name  version`` table
dpkg_query         ``dpkg-query -W [-f=FMT] [PKG...]``                    formatted versions
uname              ``uname``                                              the running kernel
cat                ``cat PATH``                                           file contents (os-release)
dnf_upgrade        ``dnf|yum ... upgrade|update``                         upgrades (RHEL-like hosts)
nproc, df          ``nproc``, ``df``                                      4 CPUs, a 40 GB root (facts)
reboot             ``reboot``, ``shutdown -r``                            host down for 90 s, new kernel
=================  =====================================================  ==============================

Ahead of them, the ``reboot`` module's own two (``reboot_probe``, ``boot_id``: sysflow/sim/reboots.py).

A trailing ``| grep [-E|-i|-v|-c|-q] PATTERN`` filters any rule's output as grep does.
"""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sysflow.sim import reboots
from sysflow.sim.profile import DEFAULT_REBOOT_DOWNTIME, Effect, Failure, LogNormal, Rule
from sysflow.sim.state import HostState

__all__ = ["DEFAULT_RULES", "RESPONDERS", "Reply", "grep_filter", "pipeline", "respond"]


@dataclass(frozen=True, slots=True)
class Reply:
    """What a command printed and how it exited."""

    exit_status: int | None
    stdout: str = ""
    stderr: str = ""


def _ln(mean: float, sigma: float) -> LogNormal:
    return LogNormal(mean=mean, sigma=sigma)


_APT = r"\bapt(?:-get)?\s(?:.*\s)?"

DEFAULT_RULES: tuple[Rule, ...] = (
    Rule(
        name="rollback",
        match=r"\brollback\b|\brestore\b|--allow-downgrades",
        duration=_ln(60.0, 0.3),
        stdout="restored backup\n",
        effect=Effect(restore="backup"),
    ),
    Rule(
        name="backup",
        match=r"\bbackup\b|\btar\s+-?c|\brsync\b|\betckeeper\b",
        duration=_ln(30.0, 0.3),
        effect=Effect(snapshot="backup"),
    ),
    Rule(name="apt_update", match=_APT + r"update\b", duration=_ln(20.0, 0.4), effect=Effect(refresh=True)),
    Rule(
        name="upgrade_packages",
        match=_APT + r"(?:dist-|full-)?upgrade\b",
        duration=_ln(120.0, 0.5),
        effect=Effect(upgrade="all"),
        failure=Failure(
            exit_status=100,
            stderr="E: Sub-process /usr/bin/dpkg returned an error code (1)\n",
            effect=Effect(upgrade="all", break_services=["nginx"]),
        ),
    ),
    Rule(
        name="restart_service",
        match=r"\bsystemctl\s+(?:restart|start|reload|try-restart)\s+(?P<service>[\w@.-]+?)(?:\.service)?(?:\s|$)",
        duration=_ln(3.0, 0.3),
        respond="systemctl",
    ),
    Rule(
        name="stop_service",
        match=r"\bsystemctl\s+stop\s+(?P<service>[\w@.-]+?)(?:\.service)?(?:\s|$)",
        duration=_ln(2.0, 0.3),
        effect=Effect(services={"{service}": "inactive"}),
    ),
    Rule(name="is_active", match=r"\bsystemctl\s+is-active\b", duration=_ln(0.2, 0.2), respond="is_active"),
    Rule(name="health_check", match=r"\bcurl\b", duration=_ln(0.5, 0.3), respond="health"),
    Rule(name="dpkg_list", match=r"\bdpkg\s+(?:-l|--list)\b", duration=_ln(0.4, 0.2), respond="dpkg_list"),
    Rule(name="dpkg_query", match=r"\bdpkg-query\b", duration=_ln(0.3, 0.2), respond="dpkg_query"),
    Rule(name="uname", match=r"\buname\b", duration=_ln(0.1, 0.1), respond="uname"),
    Rule(name="cat", match=r"\bcat\s+\S+", duration=_ln(0.1, 0.1), respond="cat"),
    Rule(
        name="dnf_upgrade",
        match=r"\b(?:dnf|yum)\s(?:.*\s)?(?:upgrade|update)\b",
        duration=_ln(150.0, 0.5),
        effect=Effect(upgrade="all"),
    ),
    Rule(name="nproc", match=r"^\s*nproc\b", duration=_ln(0.1, 0.1), stdout="4\n"),
    Rule(
        name="df",
        match=r"^\s*df\b",
        duration=_ln(0.1, 0.1),
        stdout="Filesystem     1024-blocks     Used Available Capacity Mounted on\n"
        "/dev/vda1         41152736 12345678  26693418      32% /\n",
    ),
    Rule(
        name="reboot",
        match=r"^\s*(?:sudo\s+)?(?:systemctl\s+)?reboot\b|\bshutdown\s+-r\b",
        duration=_ln(1.0, 0.1),
        effect=Effect(reboot=DEFAULT_REBOOT_DOWNTIME),
    ),
)


# -- responders ---------------------------------------------------------------------------------

Responder = Callable[[HostState, str, str, Mapping[str, str]], Reply]


def pipeline(command: str) -> list[list[str]]:
    """The words of each stage of a shell pipeline (quotes respected; ``||``, ``&&`` end it)."""
    return [list(stage) for stage in _pipeline(command)]


@functools.lru_cache(maxsize=4096)  # a fleet runs the same few commands on every host
def _pipeline(command: str) -> tuple[tuple[str, ...], ...]:
    lexer = shlex.shlex(command, posix=True, punctuation_chars="|&;")
    lexer.whitespace_split = True
    stages: list[list[str]] = [[]]
    try:
        for token in lexer:
            if token == "|":
                stages.append([])
            elif token and set(token) <= set("|&;"):
                break
            else:
                stages[-1].append(token)
    except ValueError:
        return (tuple(command.split()),)
    return tuple(tuple(stage) for stage in stages)


def _args(command: str) -> list[str]:
    """The words of the first stage of ``command``."""
    return pipeline(command)[0]


def _dpkg_list(state: HostState, host: str, command: str, groups: Mapping[str, str]) -> Reply:
    lines = [
        "Desired=Unknown/Install/Remove/Purge/Hold",
        "| Status=Not/Inst/Conf-files/Unpacked/halF-conf/Half-inst/trig-aWait/Trig-pend",
        "|/ Err?=(none)/Reinst-required (Status,Err: uppercase=bad)",
        "||/ Name                 Version              Architecture Description",
        "+++-====================-====================-============-================",
    ]
    lines += [f"ii  {n:<20} {v:<20} amd64        {n}" for n, v in sorted(state.packages.items())]
    return Reply(0, "\n".join(lines) + "\n")


def _dpkg_query(state: HostState, host: str, command: str, groups: Mapping[str, str]) -> Reply:
    args = _args(command)[1:]
    fmt = "${Package}\t${Version}\n"
    names: list[str] = []
    it = iter(args)
    for arg in it:
        if arg in ("-f", "--showformat"):
            fmt = next(it, fmt)
        elif arg.startswith(("--showformat=", "-f=")):
            fmt = arg.split("=", 1)[1]
        elif not arg.startswith("-"):
            names.append(arg)
    fmt = fmt.replace("\\n", "\n").replace("\\t", "\t")
    chosen = names or sorted(state.packages)
    out, missing = [], []
    for name in chosen:
        version = state.packages.get(name)
        if version is None:
            missing.append(name)
            continue
        out.append(
            fmt.replace("${Package}", name)
            .replace("${binary:Package}", name)
            .replace("${Version}", version)
            .replace("${Status}", "install ok installed")
            .replace("${db:Status-Abbrev}", "ii ")
        )
    err = "".join(f"dpkg-query: no packages found matching {m}\n" for m in missing)
    return Reply(1 if missing else 0, "".join(out), err)


def _is_active(state: HostState, host: str, command: str, groups: Mapping[str, str]) -> Reply:
    names = [a.removesuffix(".service") for a in _args(command) if not a.startswith("-")]
    names = names[names.index("is-active") + 1 :] if "is-active" in names else []
    states = [state.services.get(n, "inactive") for n in names]
    ok = bool(states) and all(s == "active" for s in states)
    return Reply(0 if ok else 3, "".join(f"{s}\n" for s in states))


def _systemctl(state: HostState, host: str, command: str, groups: Mapping[str, str]) -> Reply:
    name = groups.get("service", "")
    if state.start_service(name):
        return Reply(0)
    return Reply(
        1,
        stderr=f"Job for {name}.service failed because the control process exited with error code.\n"
        f'See "systemctl status {name}.service" and "journalctl -xeu {name}.service" for details.\n',
    )


def _health(state: HostState, host: str, command: str, groups: Mapping[str, str]) -> Reply:
    if state.services.get("nginx") == "active":
        return Reply(0, "OK\n")
    return Reply(7, stderr="curl: (7) Failed to connect to localhost port 80: Connection refused\n")


def _uname(state: HostState, host: str, command: str, groups: Mapping[str, str]) -> Reply:
    args = _args(command)[1:]
    if "-a" in args or "--all" in args:
        return Reply(0, f"Linux {host} {state.kernel} #1 SMP PREEMPT_DYNAMIC Debian x86_64 GNU/Linux\n")
    if "-r" in args or "--kernel-release" in args:
        return Reply(0, f"{state.kernel}\n")
    return Reply(0, "Linux\n")


def _cat(state: HostState, host: str, command: str, groups: Mapping[str, str]) -> Reply:
    paths = [a for a in _args(command)[1:] if not a.startswith("-")]
    out, err = [], []
    for path in paths:
        if path in state.files:
            out.append(state.files[path])
        else:
            err.append(f"cat: {path}: No such file or directory\n")
    return Reply(1 if err else 0, "".join(out), "".join(err))


RESPONDERS: Mapping[str, Responder] = {
    "cat": _cat,
    "dpkg_list": _dpkg_list,
    "dpkg_query": _dpkg_query,
    "health": _health,
    "is_active": _is_active,
    "systemctl": _systemctl,
    "uname": _uname,
    "boot_id": lambda *a: Reply(*reboots.boot_id(*a)),
    "reboot_probe": lambda *a: Reply(*reboots.reboot_probe(*a)),
}


def respond(kind: str, state: HostState, host: str, command: str, groups: Mapping[str, str]) -> Reply:
    """Answer ``command`` from ``state`` with the built-in responder ``kind``."""
    return RESPONDERS[kind](state, host, command, groups)


# -- grep ---------------------------------------------------------------------------------------

_GREP_FLAGS = frozenset("EivcqFw")


def grep_filter(command: str, reply: Reply) -> Reply:
    """Apply the ``| grep ...`` stages of ``command`` to ``reply``'s output, as a shell pipeline would."""
    if "|" not in command:
        return reply
    for words in pipeline(command)[1:]:
        if words and words[0] in ("grep", "egrep"):
            reply = _grep(words[1:], reply)
    return reply


def _grep(args: list[str], reply: Reply) -> Reply:
    flags: set[str] = set()
    pattern: str | None = None
    for arg in args:
        if arg.startswith("-") and len(arg) > 1 and set(arg[1:]) <= _GREP_FLAGS:
            flags.update(arg[1:])
        elif pattern is None:
            pattern = arg
    if pattern is None:
        return Reply(2, "", "Usage: grep [OPTION]... PATTERNS [FILE]...\n")
    text = re.escape(pattern) if "F" in flags else pattern
    if "w" in flags:
        text = rf"\b(?:{text})\b"
    rx = re.compile(text, re.IGNORECASE if "i" in flags else 0)
    lines = [ln for ln in reply.stdout.splitlines() if bool(rx.search(ln)) != ("v" in flags)]
    status = 0 if lines else 1
    if "q" in flags:
        return Reply(status, "", reply.stderr)
    if "c" in flags:
        return Reply(status, f"{len(lines)}\n", reply.stderr)
    return Reply(status, "".join(f"{ln}\n" for ln in lines), reply.stderr)
