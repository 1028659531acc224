"""A host's connection settings, resolved the way ``ansible`` + ``ssh`` resolve them.

Ansible runs ``ssh`` against ``ansible_host`` (or the inventory name) and passes ``ansible_port``,
``ansible_user`` and ``ansible_ssh_private_key_file`` as command-line options. ``ssh`` then reads its
client config, where the first value obtained for an option wins and command-line options come
first. So:

- ``ansible_ssh_host`` / ``ansible_ssh_port`` / ``ansible_ssh_user`` (Ansible's legacy names) are
  read when the current names are unset; ``~`` in key paths is expanded;
- the name looked up in the config (``Host`` patterns, ``%n``) is ``ansible_host`` or the inventory
  name, matched case-sensitively; ``HostName`` from the config maps it further, and the final
  hostname is lowercased, as ``ssh`` does;
- ``ansible_port`` / ``ansible_user`` override ``Port`` / ``User`` from the config, which override
  the defaults (port 22, the current user);
- ``ansible_ssh_private_key_file`` is tried first, then every ``IdentityFile`` from the config;
- ``ProxyJump`` comes from ``-J host`` / ``-o ProxyJump=host`` in ``ansible_ssh_common_args`` or
  ``ansible_ssh_extra_args`` (command-line options come first), else from the config; ``none``
  means no jump host. A ``ProxyCommand`` is not represented.

The config is parsed by asyncssh's ``SSHClientConfig`` (imported when first needed, so that
``import sysflow`` stays light). It supports ``Host`` patterns with wildcards and ``!`` negation,
``Include``, percent and environment expansion, and ``Match`` on host, originalhost, user,
localuser and exec. Like asyncssh (and unlike ``ssh``), unknown options are ignored and there is no
``CanonicalizeHostname`` second pass; ``Match canonical``/``final`` blocks apply as asyncssh
decides on a single pass.

Each config file is tokenized once per content (not once per host, as asyncssh alone does) and
replayed through asyncssh's handlers, so resolving a fleet stays linear in the config's size.

When no identity file is configured, ``identity_files`` is empty: the credential provider decides
which default keys to try.
"""

from __future__ import annotations

import bisect
import functools
import getpass
import io
import os
import re
import shlex
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sysflow.errors import InventoryError, Problem

__all__ = [
    "DEFAULT_SSH_CONFIG",
    "DEFAULT_SSH_PORT",
    "ConnectionSettings",
    "SSHConfigSource",
    "resolve_connection",
]

DEFAULT_SSH_PORT = 22
DEFAULT_SSH_CONFIG = Path("~", ".ssh", "config")
SSH_ARGS_VARS = ("ansible_ssh_common_args", "ansible_ssh_extra_args")  # extra ssh command-line options

SSHConfigSource = str | Path | Sequence[str | Path] | None
"""One config file, several (read in order), ``()`` for none, or None for ``~/.ssh/config`` if readable."""

_ASYNCSSH_ERROR = re.compile(r"^(?P<path>.*) line (?P<line>\d+): (?P<reason>.*)$", re.S)


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """Where and as whom to connect to one inventory host. Holds no secret: key *paths* only."""

    name: str
    hostname: str
    port: int
    username: str
    identity_files: tuple[str, ...] = ()
    proxy_jump: str | None = None
    known_hosts_files: tuple[str, ...] = ()  # the config's UserKnownHostsFile, "none" dropped


def resolve_connection(
    name: str, host_vars: Mapping[str, Any], ssh_config: SSHConfigSource = None
) -> ConnectionSettings:
    """Resolve how to reach inventory host ``name`` given its merged variables and an ssh config."""
    alias = str(_first(host_vars, "ansible_host", "ansible_ssh_host") or name)
    port = _explicit_port(name, _first(host_vars, "ansible_port", "ansible_ssh_port"))
    user = _first(host_vars, "ansible_user", "ansible_ssh_user")
    config = _load_config(_config_paths(ssh_config), alias, None if user is None else str(user), port)
    return ConnectionSettings(
        name=name,
        hostname=str(config.get("Hostname") or alias).lower(),  # ssh lowercases the name it connects to
        port=int(config.get("Port") or DEFAULT_SSH_PORT),
        username=str(config.get("User") or getpass.getuser()),
        identity_files=_identity_files(
            host_vars.get("ansible_ssh_private_key_file"), config.get("IdentityFile")
        ),
        proxy_jump=_proxy_jump(_args_proxy_jump(host_vars) or config.get("ProxyJump")),
        known_hosts_files=_identity_files(None, config.get("UserKnownHostsFile")),
    )


def _first(host_vars: Mapping[str, Any], *keys: str) -> Any:
    """The first variable set among ``keys`` (Ansible's current name, then its legacy alias)."""
    for key in keys:
        if host_vars.get(key) is not None:
            return host_vars[key]
    return None


def _explicit_port(name: str, value: Any) -> int | None:
    if value is None:
        return None
    try:
        port = int(value)
    except (TypeError, ValueError):
        port = 0
    if isinstance(value, bool | float) or not 0 < port < 65536:
        raise InventoryError([Problem(f"ansible_port {value!r} is not a TCP port", f"host {name}")])
    return port


def _config_paths(ssh_config: SSHConfigSource) -> list[Path]:
    if ssh_config is None:
        default = DEFAULT_SSH_CONFIG.expanduser()
        return [default] if default.is_file() else []
    if isinstance(ssh_config, str | Path):
        return [Path(ssh_config).expanduser()]
    return [Path(p).expanduser() for p in ssh_config]


def _load_config(paths: list[Path], alias: str, user: str | None, port: int | None) -> Any:
    """Parse the config files for one host with asyncssh; explicit user/port are obtained first."""
    from asyncssh.config import ConfigParseError

    for path in paths:
        if not path.is_file():
            raise InventoryError([Problem("ssh config file not found", str(path))])
    explicit_user: Any = () if user is None else user
    explicit_port: Any = () if port is None else port
    try:
        return _cached_config_class().load(
            None, paths, False, False, False, getpass.getuser(), explicit_user, alias, explicit_port
        )
    except (ConfigParseError, ValueError, OSError) as exc:
        raise InventoryError([_config_problem(str(exc), paths)]) from None


def _config_problem(message: str, paths: list[Path]) -> Problem:
    m = _ASYNCSSH_ERROR.match(message)
    if m:
        return Problem(f"ssh config: {m['reason']}", f"{m['path']}:{m['line']}")
    return Problem(f"ssh config: {message}", ", ".join(str(p) for p in paths))


def _identity_files(explicit: Any, configured: Any) -> tuple[str, ...]:
    files: list[str] = [] if explicit is None else [os.path.expanduser(str(explicit))]
    for item in configured or ():
        text = os.path.expanduser(str(item))
        if text.lower() != "none" and text not in files:
            files.append(text)
    return tuple(files)


def _args_proxy_jump(host_vars: Mapping[str, Any]) -> str | None:
    """A jump host given on Ansible's ssh command line (``-J h`` or ``-o ProxyJump=h``), if any.

    Ansible passes ``ansible_ssh_common_args`` then ``ansible_ssh_extra_args`` to ``ssh``; command
    line options are obtained before the config file, so the first one found wins.
    """
    for key in SSH_ARGS_VARS:
        value = host_vars.get(key)
        if value:
            found = _jump_in_args(str(value))
            if found is not None:
                return found
    return None


def _jump_in_args(text: str) -> str | None:
    try:
        args = shlex.split(text)
    except ValueError:
        return None
    for i, arg in enumerate(args):
        following = args[i + 1] if i + 1 < len(args) else ""
        if arg == "-J":
            return following or None
        if arg.startswith("-J"):
            return arg[2:]
        option = following if arg == "-o" else arg[2:] if arg.startswith("-o") else ""
        key, sep, val = option.replace("=", " ", 1).partition(" ")
        if sep and key.lower() == "proxyjump":
            return val.strip()
    return None


def _proxy_jump(value: Any) -> str | None:
    if value is None or str(value).lower() == "none":
        return None
    return str(value)


# -- parsing each config file once ------------------------------------------------------------------
#
# asyncssh reads and shlex-splits the whole config for every host it resolves, so resolving a fleet
# through a config with a block per host is quadratic (100 hosts: 70,000 shlex.split calls). The
# subclass below tokenizes each file once (cached by content, so an edited file is re-read) and
# replays the tokens through asyncssh's own option handlers, in order: what each host gets, and
# every error with its file and line, stay asyncssh's. ``Host`` lines that list literal names only
# (no wildcard, no negation) match by set membership, which is what fnmatch does for such names.

_PARSED_CACHE_SIZE = 32  # distinct config file contents kept tokenized
_WILDCARDS = frozenset("*?!")


@dataclass(frozen=True, slots=True)
class _Line:
    """One config line as asyncssh's parser sees it: option (lowercase), its arguments, or an error."""

    number: int
    option: str
    args: tuple[str, ...]
    error: str | None = None
    literal_hosts: frozenset[str] | None = None  # a ``Host`` line naming hosts without wildcards


@dataclass(frozen=True, slots=True)
class _Parsed:
    """A file's lines, with the indexes that let a host skip the blocks that cannot apply to it.

    ``resume[i]``: the next ``Host``/``Match`` (or error) line after line ``i``, where parsing
    resumes once a block does not match. Literal ``Host`` lines in a row (only bodies between
    them) form a run: ``run_end[i]`` is the first line after line ``i``'s run, and ``named`` lists
    for each host name the literal ``Host`` lines naming it, so a host goes straight to its block.
    """

    lines: tuple[_Line, ...]
    resume: tuple[int, ...]
    run_end: tuple[int, ...]
    named: Mapping[str, tuple[int, ...]]

    def next_block(self, index: int, host: str) -> int:
        """From literal ``Host`` line ``index``: the first line of its run naming ``host``, else the run's end."""
        found = self.named.get(host, ())
        k = bisect.bisect_left(found, index)
        end = self.run_end[index]
        return found[k] if k < len(found) and found[k] < end else end


_parsed: dict[tuple[type, bytes], _Parsed] = {}


def _split_line(line: str, conditionals: Collection[str], no_split: Collection[str]) -> tuple[str, list[str]]:
    """asyncssh's ``SSHConfig.parse`` tokenizing of one stripped line: (option lowercased, args)."""
    split_args = shlex.split(line)
    args: list[str] = []
    loption = ""
    allow_equal = True
    for i, arg in enumerate(split_args, 1):
        if arg.startswith("="):
            if len(arg) > 1:
                args.append(arg[1:])
        elif not allow_equal:
            args.extend(split_args[i - 1 :])
            break
        elif arg.endswith("="):
            args.append(arg[:-1])
        elif "=" in arg:
            key, val = arg.split("=", 1)
            args.extend((key, val))
        else:
            args.append(arg)
        if i == 1:
            loption = args.pop(0).lower()
            allow_equal = loption in conditionals
    if loption in no_split:
        args = [line.lstrip()[len(loption) :].strip()]
    return loption, args


def _tokenize(text: Iterable[str], cls: Any) -> _Parsed:
    """The lines of a config that reach an option handler; a line shlex cannot split ends it."""
    lines: list[_Line] = []
    for number, raw in enumerate(text, 1):
        line = raw.strip()
        if not line or line[0] == "#":
            continue
        try:
            option, args = _split_line(line, cls._conditionals, cls._no_split)
        except ValueError as exc:
            lines.append(_Line(number, "", (), str(exc)))
            break
        if option in cls._handlers:
            lines.append(_Line(number, option, tuple(args), literal_hosts=_literal_hosts(option, args)))
    return _index(tuple(lines), cls._conditionals)


def _index(lines: tuple[_Line, ...], conditionals: Collection[str]) -> _Parsed:
    resume = [0] * len(lines)
    run_end = [0] * len(lines)
    following = boundary = len(lines)
    named: dict[str, list[int]] = {}
    for index in range(len(lines) - 1, -1, -1):
        line = lines[index]
        resume[index] = following
        stop = line.option in conditionals or line.error is not None
        if stop:
            following = index
        if line.literal_hosts is not None:
            run_end[index] = boundary
            for name in line.literal_hosts:
                named.setdefault(name, []).append(index)
        elif stop:
            boundary = index
    found = {name: tuple(reversed(at)) for name, at in named.items()}
    return _Parsed(lines, tuple(resume), tuple(run_end), found)


def _literal_hosts(option: str, args: list[str]) -> frozenset[str] | None:
    if option != "host" or not args:
        return None
    patterns = ",".join(args).split(",")
    if any(_WILDCARDS.intersection(p) for p in patterns):
        return None
    return frozenset(patterns)


def _parsed_lines(path: Path, cls: Any) -> _Parsed | None:
    """The tokenized lines of ``path`` (None when asyncssh should read it itself, to fail its way)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    key = (cls, data)
    lines = _parsed.get(key)
    if lines is None:
        try:  # decoded exactly as asyncssh's open(path) would (locale encoding, universal newlines)
            lines = _tokenize(io.TextIOWrapper(io.BytesIO(data)), cls)
        except UnicodeDecodeError:
            return None
        if len(_parsed) >= _PARSED_CACHE_SIZE:
            del _parsed[next(iter(_parsed))]
        _parsed[key] = lines
    return lines


@functools.cache
def _cached_config_class() -> Any:
    """``SSHClientConfig`` parsing each file once (built on first use: asyncssh stays a lazy import)."""
    from asyncssh.config import SSHClientConfig

    class _CachedClientConfig(SSHClientConfig):
        def parse(self, path: Path) -> None:
            parsed = _parsed_lines(path, type(self))
            if parsed is None:
                super().parse(path)
                return
            self._path = path
            self._line_no = 0
            self._matching = True
            self._tokens = {"%": "%"}
            index, lines = 0, parsed.lines
            while index < len(lines):
                if lines[index].literal_hosts is not None:
                    index = parsed.next_block(index, self._orig_host)
                    if index == len(lines) or lines[index].literal_hosts is None:
                        self._matching = False  # no Host line of the run names this host
                        continue
                self._apply(lines[index])
                index = index + 1 if self._matching else parsed.resume[index]
            self._after_parse()

        def _apply(self, line: _Line) -> None:
            self._line_no = line.number
            if line.error is not None:
                self._error(line.error)
            if line.literal_hosts is not None:
                self._matching = self._orig_host in line.literal_hosts
                return
            if not self._matching and line.option not in self._conditionals:
                return
            option, handler = self._handlers[line.option]
            args = list(line.args)
            if not args:
                self._error(f"Missing {option} value")
            handler(self, option, args)
            if args:
                self._error(f"Extra data at end: {' '.join(args)}")

        def _after_parse(self) -> None:
            """The tail of asyncssh's ``parse``: percent tokens expanded in the options that take them."""
            self._set_tokens()
            for option in self._percent_expand:
                value = self._options.get(option)
                if isinstance(value, list):
                    self._options[option] = [self._expand_val(item) for item in value]
                elif isinstance(value, str):
                    self._options[option] = self._expand_val(value)

    return _CachedClientConfig
