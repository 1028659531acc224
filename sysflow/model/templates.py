"""Command templates: sandboxed Jinja2 over host, vars, facts and registered results, shell-quoted.

Task commands, rollback commands, checks and probe commands may hold ``{{ host.name }}``,
``{{ vars.backup_dir }}``, ``{{ facts.os_family }}`` or ``{{ results.check_disk.stdout }}``. They are
rendered by an :class:`~jinja2.sandbox.ImmutableSandboxedEnvironment` (no attribute starting with
``_``, no mutation of the context) with :class:`~jinja2.StrictUndefined`, so a missing variable is an
error, never an empty string. Every value a ``{{ ... }}`` puts into the command is escaped for the
shell quoting it lands in (:mod:`sysflow.model.shellquote`): outside quotes it is passed through
:func:`shlex.quote` — a host variable holding ``; rm -rf /`` becomes one harmless word —, inside
``'...'`` its single quotes are escaped, inside ``"..."`` its backslashes, double quotes, dollars and
backquotes are; so ``echo {{ v }}``,
``echo '{{ v }}'`` and ``echo "{{ v }}"`` all print the value as it is, whatever it holds. Where no
escaping is safe (inside backquotes, ``$( )`` within double quotes, heredocs, comments, arithmetic,
right after a backslash or ``$``) the template is refused at validation with the reason, and again at render
time (the render-time check reads the command as rendered, so control flow and ``| raw`` values cannot
move a value into such a place unnoticed). ``| raw`` inserts a value as is (shell syntax on purpose);
``| quote`` adds one more layer of shell quoting, for values inside code another shell runs
(``sh -c 'echo {{ vars.x | quote }}'``). A value holding a NUL character is an error (no command can
carry one).

Secrets: variables whose names mark them secret (``secret_*``, ``*_password``, ``*_passwd``,
``*_pass``, ``*_passphrase``, ``*_token``, ``*_secret``, ``*_key``; the rule reads the *end* of the
name, so ``ansible_ssh_private_key_file``, a path, is not one), those an inventory declares under a
``secrets:`` mapping and those a workflow lists under ``secrets:`` are replaced by :data:`REDACTED`
in the *recorded* command (:attr:`Rendered.redacted`); only :attr:`Rendered.command` is sent to the
host, and it is never stored. In outputs, :func:`redact_text` masks a secret's whole value: a value
of :data:`SUBSTRING_MIN` characters or more wherever it occurs, a shorter one only where it stands
as a word of its own (not inside a longer word). Secrets shorter than :data:`MIN_SECRET_LENGTH`
are refused when a workflow is validated against its inventory, and never masked.

:func:`template_references` lists what a template reads, so workflows can be checked before a run
(unknown namespaces and syntax errors at load time, host vars missing for a host at compile time).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Collection, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sysflow.errors import SysflowError
from sysflow.model.conditions import CONTEXT_ROOTS, Reference
from sysflow.model.shellquote import MARK, classify, escape, marker

FILE_CONTEXT_ROOTS = frozenset({"host", "vars"})  # what a file template (the template module) reads

__all__ = [
    "MIN_SECRET_LENGTH",
    "REDACTED",
    "SUBSTRING_MIN",
    "Raw",
    "Rendered",
    "SecretMasker",
    "TemplateError",
    "file_template_references",
    "is_secret_name",
    "is_template",
    "redact_text",
    "render",
    "render_file",
    "secret_value",
    "template_references",
]

REDACTED = "********"
MIN_SECRET_LENGTH = 4  # shorter secrets are refused: masking them would hide ordinary text
SUBSTRING_MIN = 8  # secrets this long are masked inside words too; shorter ones only as whole words
_SECRET_NAME = re.compile(r"^secret_|(?:^|_)(?:password|passwd|pass|passphrase|token|secret|key)$", re.I)
_WORD_CHAR = r"[A-Za-z0-9_]"
_MARKERS = ("{{", "{%", "{#")
_SITE = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.S)
_MARKED = re.compile(r"\0(\d+)\0")
_VALUES: ContextVar[list[tuple[str, bool]] | None] = ContextVar("sysflow_template_values", default=None)
_UNSUPPORTED = {
    "FilterBlock": "filter",
    "Macro": "macro",
    "CallBlock": "call",
    "AssignBlock": "set ... endset",
}


class TemplateError(SysflowError, ValueError):
    """A template that does not parse, or reads something undefined (a ``ValueError`` for pydantic)."""


class Raw(str):
    """A value inserted into a command as is (the ``raw`` filter), not shell-quoted."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Rendered:
    """A rendered command: ``command`` is sent; ``redacted`` (secrets masked) is what is recorded."""

    command: str
    redacted: str
    secrets: tuple[str, ...] = ()  # secret values that were substituted (to mask in output too)


def is_template(text: str) -> bool:
    """Whether ``text`` holds Jinja syntax (plain commands skip rendering altogether)."""
    return any(m in text for m in _MARKERS)


def is_secret_name(name: str, declared: Collection[str] = ()) -> bool:
    """Whether a variable of this name holds a secret (by its name or because it is declared one).

    By name: ``secret_*`` and ``*_password``, ``*_passwd``, ``*_pass``, ``*_passphrase``,
    ``*_token``, ``*_secret``, ``*_key`` (also the bare words). Only the name's end counts, so paths
    such as ``ansible_ssh_private_key_file`` are not secrets.
    """
    return name in declared or _secret_by_name(name)


@lru_cache(maxsize=4096)
def _secret_by_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def secret_value(value: Any) -> str | None:
    """The text of a secret variable's value that masking looks for (None: nothing to mask).

    ``None``, booleans and empty values hold nothing secret (``use_token: true`` must not mask
    every ``True``); containers are masked as their text.
    """
    if value is None or isinstance(value, bool):
        return None
    text = str(value)
    return text or None


def render(
    source: str,
    context: Mapping[str, Any],
    *,
    secrets: Collection[str] = (),
) -> Rendered:
    """Render ``source`` over ``context`` (``host``, ``vars``, ``facts``, ``results``).

    ``secrets`` adds variable names to redact beyond those whose names mark them secret.
    Raises TemplateError on a syntax error or an undefined variable.
    """
    if not is_template(source):
        return Rendered(source, source)
    import jinja2

    template = _compile(source)
    try:
        command = _shell_render(template, context)
        hidden = _secret_values(context, secrets)
        redacted = command
        if hidden:
            masked = {**context, "vars": _masked_vars(context.get("vars", {}), secrets)}
            redacted = _shell_render(template, masked)
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"undefined variable: {exc.message}") from None
    except jinja2.TemplateError as exc:  # a sandbox refusal or a filter's error
        raise TemplateError(f"template error: {exc}") from None
    return Rendered(command, redacted, tuple(hidden))


def redact_text(text: str, secrets: Collection[str]) -> str:
    """``text`` with every secret value (as is, and shell-quoted) replaced by :data:`REDACTED`.

    Whole values only: a value of :data:`SUBSTRING_MIN` characters or more is masked wherever it
    occurs; a shorter one only where it is not part of a longer word (``abcd`` is masked in
    ``pw=abcd`` but not in ``abcdef``). Values shorter than :data:`MIN_SECRET_LENGTH` are never
    masked (validation refuses them as secrets).
    """
    if not text:
        return text
    for value in sorted(secrets, key=len, reverse=True):
        if len(value) < MIN_SECRET_LENGTH:
            continue
        for form in dict.fromkeys((shlex.quote(value), value)):
            if form not in text:
                continue
            if len(value) >= SUBSTRING_MIN:
                text = text.replace(form, REDACTED)
            else:
                text = _whole_word(form).sub(REDACTED, text)
    return text


class SecretMasker:
    """A growing set of secret values masked in texts as :func:`redact_text` masks them.

    A run may know thousands of secrets (one password per host); trying each in every output would
    cost that many searches per record. The masker indexes each value (and its shell-quoted form)
    by its first :data:`MIN_SECRET_LENGTH` characters, so a large set costs one pass over the text:
    only the values whose prefix occurs in it are then looked for.
    """

    _SCAN_ABOVE = 64  # fewer values than this: try each, as redact_text does

    def __init__(self, values: Collection[str] = ()) -> None:
        self._values: set[str] = set()
        self._by_prefix: dict[str, set[str]] = {}
        self.update(values)

    def add(self, value: str) -> None:
        if len(value) < MIN_SECRET_LENGTH or value in self._values:
            return
        self._values.add(value)
        for form in {value, shlex.quote(value)}:
            self._by_prefix.setdefault(form[:MIN_SECRET_LENGTH], set()).add(value)

    def update(self, values: Collection[str]) -> None:
        for value in values:
            self.add(value)

    def __len__(self) -> int:
        return len(self._values)

    def __bool__(self) -> bool:
        return bool(self._values)

    def __contains__(self, value: object) -> bool:
        return value in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def mask(self, text: str) -> str:
        """``text`` with every known secret value masked (see :func:`redact_text`)."""
        if not text or not self._values:
            return text
        if len(self._values) < self._SCAN_ABOVE:
            return redact_text(text, self._values)
        index, n = self._by_prefix, MIN_SECRET_LENGTH
        found: set[str] = set()
        for i in range(len(text) - n + 1):
            hit = index.get(text[i : i + n])
            if hit is not None:
                found |= hit
        return redact_text(text, found) if found else text


@lru_cache(maxsize=1024)
def _whole_word(form: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!{_WORD_CHAR}){re.escape(form)}(?!{_WORD_CHAR})")


def template_references(source: str) -> list[Reference]:
    """What ``source`` reads: ``Reference(root, key)`` per access; TemplateError if it does not parse
    or names something outside ``host``, ``vars``, ``facts``, ``results``."""
    if not is_template(source):
        return []
    from jinja2 import meta, nodes

    env = _environment()
    try:
        ast = env.parse(source)
    except Exception as exc:  # jinja2.TemplateSyntaxError
        raise TemplateError(f"invalid template: {exc}") from None
    unknown = sorted(meta.find_undeclared_variables(ast) - CONTEXT_ROOTS)
    if unknown:
        known = ", ".join(sorted(CONTEXT_ROOTS))
        raise TemplateError(f"unknown name(s) {', '.join(unknown)} in template (known: {known})")
    _check_quoting(source, ast, nodes)
    return list(_jinja_references(ast, nodes))


def file_template_references(source: str) -> list[Reference]:
    """What a file template (``template`` module) reads; TemplateError if it does not parse or names
    something outside ``host`` and ``vars`` (a file is rendered before the run, where no facts or
    results exist yet). Nothing is shell-quoted in a file, so no quoting rule applies."""
    from jinja2 import meta, nodes

    try:
        ast = _file_environment().parse(source)
    except Exception as exc:  # jinja2.TemplateSyntaxError
        raise TemplateError(f"invalid template: {exc}") from None
    unknown = sorted(meta.find_undeclared_variables(ast) - FILE_CONTEXT_ROOTS)
    if unknown:
        raise TemplateError(
            f"unknown name(s) {', '.join(unknown)} in template (a file template reads host and vars)"
        )
    return list(_jinja_references(ast, nodes))


def render_file(source: str, context: Mapping[str, Any]) -> str:
    """``source`` rendered over ``context`` (``host``, ``vars``) as file content: the same sandbox and
    strict undefined as commands, values as they are (no shell quoting)."""
    import jinja2

    try:
        return str(_compile_file(source).render(context))
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"undefined variable: {exc.message}") from None
    except jinja2.TemplateError as exc:
        raise TemplateError(f"template error: {exc}") from None


@lru_cache(maxsize=64)
def _compile_file(source: str) -> Any:
    """A file template compiled once, however many hosts it is rendered for."""
    return _file_environment().from_string(source)


@lru_cache(maxsize=1)
def _file_environment() -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
    )


def _check_quoting(source: str, ast: Any, nodes: Any) -> None:
    """TemplateError for a ``{{ }}`` that lands where its value cannot be escaped (read as straight-line
    text: ``{% %}`` tags are transparent, ``| raw`` values unknown; :func:`render` checks again)."""
    if MARK in source:
        raise TemplateError("a NUL character in a command")
    for name, tag in _UNSUPPORTED.items():
        found = ast.find(getattr(nodes, name))
        if found is not None:
            raise TemplateError(
                f"{{% {tag} %}} blocks are not supported in commands (line {found.lineno}): "
                "their output could not be quoted for where it lands"
            )
    parts: list[str] = []
    exprs: list[Any] = []  # every {{ }} in source order
    marked: list[int] = []  # marker index -> position in exprs (raw values get no marker)
    quoted: set[int] = set()  # markers whose value is `| quote`d
    for output in ast.find_all(nodes.Output):
        for child in output.nodes:
            if isinstance(child, nodes.TemplateData):
                parts.append(child.data)
                continue
            if not (isinstance(child, nodes.Filter) and child.name == "raw"):
                if isinstance(child, nodes.Filter) and child.name == "quote":
                    quoted.add(len(marked))
                parts.append(marker(len(marked)))
                marked.append(len(exprs))
            exprs.append(child)
    if not marked:
        return
    _, refused = classify("".join(parts), frozenset(quoted))
    if refused:
        index = min(refused)
        position = marked[index]
        sites = list(_SITE.finditer(source))
        if len(sites) == len(exprs):
            site = sites[position]
            line = source.count("\n", 0, site.start()) + 1
            column = site.start() - source.rfind("\n", 0, site.start())
            what = f"{{{{ {site.group(1)} }}}} (line {line}, column {column} of the command)"
        else:
            what = f"the value at line {exprs[position].lineno} of the command"
        raise TemplateError(f"{what} is {refused[index]}")


def _jinja_references(ast: Any, nodes: Any) -> Iterator[Reference]:
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        if not isinstance(node.node, nodes.Name) or node.node.name not in CONTEXT_ROOTS:
            continue
        if isinstance(node, nodes.Getattr):
            yield Reference(node.node.name, node.attr)
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            yield Reference(node.node.name, node.arg.value)
        else:
            yield Reference(node.node.name, None)


def _secret_values(context: Mapping[str, Any], declared: Collection[str]) -> list[str]:
    values = context.get("vars", {})
    if not isinstance(values, Mapping):
        return []
    found = (secret_value(v) for k, v in values.items() if is_secret_name(str(k), declared))
    return [v for v in found if v is not None]


def _masked_vars(values: Any, declared: Collection[str]) -> Any:
    if not isinstance(values, Mapping):
        return values
    return {k: (REDACTED if is_secret_name(str(k), declared) else v) for k, v in values.items()}


def _shell_render(template: Any, context: Mapping[str, Any]) -> str:
    """Render to a skeleton (values as markers), then escape each value for the quoting it is in."""
    values: list[tuple[str, bool]] = []
    token = _VALUES.set(values)
    try:
        skeleton = template.render(**context)
    finally:
        _VALUES.reset(token)
    if not values:
        return str(skeleton)
    contexts, refused = classify(skeleton, frozenset(i for i, (_, quoted) in enumerate(values) if quoted))
    if refused:
        index = min(refused)
        raise TemplateError(f"value {index + 1} of the command ({len(values)} in all) lands {refused[index]}")
    if sorted(contexts) != list(range(len(values))):  # e.g. a {% filter %} block rewrote a marker
        raise TemplateError("a value was lost or repeated while rendering the command")
    return _MARKED.sub(lambda m: escape(values[int(m.group(1))][0], contexts[int(m.group(1))]), skeleton)


def _finalize(value: Any) -> str:
    """What a ``{{ }}`` writes: a raw value as is, any other value as a marker (or shell-quoted,
    when rendered outside :func:`render`)."""
    text = "" if value is None else str(value)
    if MARK in text:
        raise TemplateError("a value holds a NUL character, which no command can carry")
    if isinstance(value, Raw):
        return text
    values = _VALUES.get()
    if values is None:
        return shlex.quote(text)
    values.append((text, isinstance(value, Quoted)))
    return marker(len(values) - 1)


def _raw(value: Any) -> Raw:
    return Raw("" if value is None else str(value))


class Quoted(str):
    """A value already shell-quoted by the ``quote`` filter (for code another shell runs)."""

    __slots__ = ()


def _shell_quote(value: Any) -> Quoted:
    return Quoted(shlex.quote("" if value is None else str(value)))


@lru_cache(maxsize=1)
def _environment() -> Any:
    from jinja2 import StrictUndefined, pass_context
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    @pass_context  # a context-taking finalize is never applied at compile time (markers are per render)
    def finalize(_context: Any, value: Any) -> str:
        return _finalize(value)

    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, finalize=finalize, autoescape=False)
    env.filters["raw"] = _raw
    env.filters["quote"] = _shell_quote
    return env


@lru_cache(maxsize=1024)
def _compile(source: str) -> Any:
    if MARK in source:
        raise TemplateError("a NUL character in a command")
    try:
        return _environment().from_string(source)
    except Exception as exc:  # jinja2.TemplateSyntaxError
        raise TemplateError(f"invalid template: {exc}") from None
