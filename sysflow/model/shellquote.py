"""Where each ``{{ }}`` of a command lands in POSIX shell syntax, and how its value is escaped there.

A command template is rendered to a *skeleton*: the literal text (and ``| raw`` values, which are
shell syntax on purpose) with a marker ``\\0<n>\\0`` where the n-th value goes. :func:`classify`
reads the skeleton as the shell will, tracking quote state — single and double quotes, backslash
escapes, ``$( )`` command substitution, comments, heredocs — and decides for every marker:

- :data:`PLAIN` (outside quotes): the value becomes one word, :func:`shlex.quote`;
- :data:`SINGLE` (inside ``'...'``): every ``'`` of the value becomes ``'\\''``; nothing else is
  special inside single quotes;
- :data:`DOUBLE` (inside ``"..."``): ``\\``, ``"``, ``$`` and a backquote get a backslash; nothing else
  is special inside double quotes (``!`` only in interactive shells, which ``ssh host command`` is not).

Markers where no escaping is provably safe are refused, with the reason: inside backquotes, inside
``$( )`` that is itself inside double quotes, inside ``$'...'`` or ``$"..."``, inside ``${...}``, inside
a heredoc or a comment, in arithmetic (``$(( ))``, ``(( ))``, ``$[ ]``, ``let``, ``[[ ... -eq ... ]]``,
where bash evaluates a quoted value as code), right after a backslash or a ``$`` (which would
change the meaning of the quoting added). After a construct whose end cannot be found the same way
by every POSIX shell (a ``$'...'`` with backslashes, a backquote holding quotes, a ``$( )`` holding
``case`` inside double quotes, a ``${...}`` with quotes or nesting), every later marker is refused.

A value in code that another interpreter parses again is refused too, as far as the command's words
show it: the command string of ``sh -c`` / ``bash -c`` (also after ``sudo``, ``find -exec``,
``xargs``), the arguments of ``eval``, ``su -c``, ``watch`` and of ``ssh host`` (the remote shell) —
unless the value is ``| quote``d, which quotes it once more for that shell
(``sh -c 'echo {{ x | quote }}'``); the program text of ``python -c``, ``perl -e``, ``ruby -e``,
``node -e``, ``php -r`` always (pass the value as a separate argument there). Positional arguments
after ``sh -c '...' name`` are data and are accepted.

The shell is assumed POSIX (sh, dash, bash, ksh, zsh). Not covered: values a bash builtin reads as a
variable name (``printf -v``, ``read``, ``unset``, ``declare``/``local``, ``test -v``) whose array
subscripts bash evaluates; program text of ``awk``/``sed`` (GNU sed's ``e`` runs commands); values
piped to a shell's stdin.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from functools import lru_cache

__all__ = ["DOUBLE", "MARK", "PLAIN", "SINGLE", "WORD", "classify", "escape", "marker"]

PLAIN = "plain"
WORD = "word"  # outside quotes where even a safe-looking word must be quoted (before < or >: 2>f)
SINGLE = "single"
DOUBLE = "double"
MARK = "\0"  # the marker's delimiter: no command can hold a NUL, so no literal text holds one

_WORD_BREAK = frozenset(" \t\n;&|<>()")
_COMMAND_END = frozenset(";&|\n")
_SIMPLE_PARAM = re.compile(r"[A-Za-z0-9_@*#?!:=+%/.,^~ \-\[\]$]*")
_ARITH_TEST = re.compile(r"(?<!\S)-(?:eq|ne|lt|le|gt|ge|v|R)(?!\S)")  # bash evaluates these operands
_MARKER = re.compile(r"\0(\d+)\0")

BACKQUOTE = "inside backquotes (`...`): use $( ) instead"
NESTED = 'inside $( ) that is inside double quotes: set a variable first (v={{ }}; ... "$(cmd "$v")")'
ANSI_C = "inside $'...'"
LOCALE = 'inside $"..."'
PARAM = "inside ${...}"
HEREDOC = "inside a heredoc: feed the value on stdin instead (printf '%s\\n' {{ }} | cmd)"
COMMENT = "inside a shell comment"
ARITH = "in arithmetic ($(( )), (( )), $[ ], let, [[ -eq ]]): the shell would evaluate the value as code"
BACKSLASH = "right after a backslash, which would escape the quoting sysflow adds"
DOLLAR = "right after $, which would turn the value's quoting into an expansion"


def marker(index: int) -> str:
    """The skeleton's stand-in for the ``index``-th value."""
    return f"{MARK}{index}{MARK}"


def escape(value: str, context: str) -> str:
    """``value`` written so the shell reads it back literally in ``context``."""
    if context == SINGLE:
        return value.replace("'", "'\\''")
    if context == DOUBLE:
        return re.sub(r'([\\"$`])', r"\\\1", value)
    quoted = shlex.quote(value)
    if context == WORD or (quoted == value and "," in value):  # a,b: bash brace expansion's comma
        return "'" + value.replace("'", "'\\''") + "'"
    return quoted


@dataclass
class _Frame:
    kind: str  # "cmd" (shell code), "sq", "dq", "arith"
    in_dq: bool = False  # some enclosing frame is double-quoted
    subst: bool = False  # a $( ) body: ends at its matching ")"
    parens: int = 0
    closer: str = ""  # arith: "))" or "]"
    locale: bool = False  # dq: a $"..." string
    words: list[str] = field(default_factory=list)  # cmd: the current simple command's words so far
    word_start: int | None = None  # cmd: where the word being read began
    redirect: bool = False  # cmd: the word being read is a redirection's target, not an argument


@dataclass
class _Scan:
    text: str
    contexts: dict[int, str] = field(default_factory=dict)
    refused: dict[int, str] = field(default_factory=dict)
    stack: list[_Frame] = field(default_factory=lambda: [_Frame("cmd")])
    unknown: str | None = None
    force: str | None = None  # the reason the next marker is refused (a backslash or $ before it)
    heredocs: list[tuple[str, bool]] = field(default_factory=list)
    test: tuple[int, list[int]] | None = None  # an open [[ ... ]]: its start and the markers in it
    let: bool = False  # inside a `let` command
    closed_at: int = -1  # position of the last ")" that closed an expansion (not a word break)
    quoted: frozenset[int] = frozenset()  # markers whose value went through `| quote`

    def site(self, i: int, reason: str | None = None) -> int:
        """Decide the marker at ``i`` (in ``reason``'s favour if given); the position after it."""
        m = _MARKER.match(self.text, i)
        if m is None:  # a NUL that is not a marker: the caller checks values for NUL first
            raise ValueError("a NUL character in a command")
        index = int(m.group(1))
        reason = reason or self.force or self.unknown
        if index in self.contexts or index in self.refused:
            self.contexts.pop(index, None)
            reason = "repeated in the command (a {% filter %} block?)"
        self.force = None
        top = self.stack[-1]
        if reason is None:
            if top.kind == "arith" or self.let:
                reason = ARITH
            elif top.in_dq:
                reason = NESTED
            elif top.kind == "dq" and top.locale:
                reason = LOCALE
            else:
                reason = _nested_code(self.stack, index in self.quoted)
        if reason is not None:
            self.refused[index] = reason
        else:
            context = {"cmd": PLAIN, "sq": SINGLE, "dq": DOUBLE}[top.kind]
            if context == PLAIN and self.text[m.end() : m.end() + 1] in ("<", ">"):
                context = WORD  # an unquoted number before < or > would name a file descriptor
            self.contexts[index] = context
            if self.test is not None:
                self.test[1].append(index)
        return m.end()

    def skip_to(self, i: int, end: int, reason: str) -> None:
        """Refuse every marker in ``text[i:end]`` with ``reason``."""
        for m in _MARKER.finditer(self.text, i, end):
            self.refused[int(m.group(1))] = self.unknown or reason

    def give_up(self, reason: str) -> None:
        if self.unknown is None:
            self.unknown = f"after {reason}, the quoting cannot be followed"


@lru_cache(maxsize=4096)  # one template over many hosts renders to the same skeleton
def classify(skeleton: str, quoted: frozenset[int] = frozenset()) -> tuple[dict[int, str], dict[int, str]]:
    """(marker -> context, marker -> why it is refused) for every marker of ``skeleton``; ``quoted``:
    markers whose value is already shell-quoted (``| quote``), allowed in code another shell runs.
    The result is cached and shared: do not change it."""
    scan = _Scan(skeleton, quoted=quoted)
    i, n = 0, len(skeleton)
    while i < n:
        if scan.unknown is not None:
            scan.skip_to(i, n, scan.unknown)
            break
        top = scan.stack[-1]
        if top.kind == "cmd" and top.word_start is None and skeleton[i] not in _WORD_BREAK:
            top.word_start = i
        if skeleton[i] == MARK:
            i = scan.site(i)
            continue
        kind = scan.stack[-1].kind
        if kind == "sq":
            i = _single(scan, i)
        elif kind == "dq":
            i = _double(scan, i)
        elif kind == "arith":
            i = _arith(scan, i)
        else:
            i = _code(scan, i)
    return scan.contexts, scan.refused


def _single(scan: _Scan, i: int) -> int:
    if scan.text[i] == "'":
        scan.stack.pop()
    return i + 1


def _double(scan: _Scan, i: int) -> int:
    c = scan.text[i]
    if c == '"':
        scan.stack.pop()
        return i + 1
    if c == "\\":
        return _backslash(scan, i)
    if c == "$":
        return _dollar(scan, i, in_dq=True)
    if c == "`":
        return _backquote(scan, i)
    return i + 1


def _arith(scan: _Scan, i: int) -> int:
    text, c, top = scan.text, scan.text[i], scan.stack[-1]
    if c in "'\"`\\":
        scan.give_up("quotes inside arithmetic")
        return i
    if top.closer == "]":
        if c == "[":
            top.parens += 1
        elif c == "]":
            if top.parens == 0:
                _close(scan, i)
            else:
                top.parens -= 1
        return i + 1
    if c == "(":
        top.parens += 1
    elif c == ")":
        if top.parens > 0:
            top.parens -= 1
        elif text.startswith("))", i):
            _close(scan, i + 1)
            return i + 2
        else:
            scan.give_up("an unbalanced ) in arithmetic")
    return i + 1


def _close(scan: _Scan, i: int) -> None:
    """Pop an expansion frame whose last character is at ``i``."""
    scan.stack.pop()
    scan.closed_at = i


def _word_start(scan: _Scan, i: int) -> bool:
    if i == 0:
        return True
    prev = scan.text[i - 1]
    return prev in _WORD_BREAK and not (prev == ")" and scan.closed_at == i - 1)


def _word_at(scan: _Scan, i: int, word: str) -> bool:
    """Whether ``word`` stands at ``i`` as a whole word (a keyword or command name)."""
    end = i + len(word)
    text = scan.text
    return (
        text.startswith(word, i) and (end == len(text) or text[end] in _WORD_BREAK) and _word_start(scan, i)
    )


def _code(scan: _Scan, i: int) -> int:
    text, c, top = scan.text, scan.text[i], scan.stack[-1]
    if c in _WORD_BREAK and not (c == "(" and _word_start(scan, i) and text.startswith("((", i)):
        _end_word(scan, top, i)
        if c in "<>":
            top.redirect = True
        elif c != " " and c != "\t":
            top.words.clear()  # ; & | newline ( ): a new command
    if c == "'":
        scan.stack.append(_Frame("sq", in_dq=top.in_dq))
    elif c == '"':
        scan.stack.append(_Frame("dq", in_dq=top.in_dq))
    elif c == "\\":
        return _backslash(scan, i)
    elif c == "$":
        return _dollar(scan, i, in_dq=top.in_dq)
    elif c == "`":
        return _backquote(scan, i)
    elif c == "#" and _word_start(scan, i):
        end = text.find("\n", i)
        end = len(text) if end < 0 else end
        scan.skip_to(i, end, COMMENT)
        return end
    elif c == "<" and text.startswith("<<<", i):
        return i + 3
    elif c == "<" and text.startswith("<<", i):
        return _heredoc_operator(scan, i)
    elif c == "\n":
        scan.let = False
        if scan.heredocs:
            return _heredoc_bodies(scan, i + 1)
    elif c in _COMMAND_END:
        scan.let = False
    elif c == "(":
        if text.startswith("((", i) and _word_start(scan, i):
            scan.stack.append(_Frame("arith", in_dq=top.in_dq, closer="))"))
            return i + 2
        top.parens += 1
    elif c == ")":
        scan.let = False
        if top.subst:
            if top.parens == 0:
                _close(scan, i)
            else:
                top.parens -= 1
    elif c == "[" and _word_at(scan, i, "[["):
        scan.test = (i, [])
        return i + 2
    elif c == "]" and scan.test is not None and _word_at(scan, i, "]]"):
        start, inside = scan.test
        scan.test = None
        if _ARITH_TEST.search(text, start, i):
            for index in inside:
                scan.contexts.pop(index, None)
                scan.refused[index] = ARITH
        return i + 2
    elif c == "l" and _word_at(scan, i, "let"):
        scan.let = True
    elif c == "c" and top.subst and top.in_dq and _word_at(scan, i, "case"):
        scan.give_up("case inside $( ) within double quotes")
    return i + 1


def _backslash(scan: _Scan, i: int) -> int:
    """``\\x``: the next character is literal (in double quotes only some are, which is the same
    for finding where quotes end). A marker right after the backslash is refused."""
    if i + 1 < len(scan.text) and scan.text[i + 1] == MARK:
        scan.force = BACKSLASH
        return i + 1
    return i + 2


def _dollar(scan: _Scan, i: int, *, in_dq: bool) -> int:
    text, top = scan.text, scan.stack[-1]
    nxt = text[i + 1] if i + 1 < len(text) else ""
    if nxt == MARK:
        scan.force = DOLLAR
        return i + 1
    if nxt == "(":
        if text.startswith("((", i + 1):
            scan.stack.append(_Frame("arith", in_dq=in_dq, closer="))"))
            return i + 3
        scan.stack.append(_Frame("cmd", in_dq=in_dq or top.kind == "dq", subst=True))
        return i + 2
    if nxt == "[":
        scan.stack.append(_Frame("arith", in_dq=in_dq, closer="]"))
        return i + 2
    if nxt == "{":
        return _param(scan, i)
    if top.kind == "cmd" and nxt == "'":
        return _ansi_c(scan, i)
    if top.kind == "cmd" and nxt == '"':
        scan.stack.append(_Frame("dq", in_dq=in_dq, locale=True))
        return i + 2
    return i + 1


def _param(scan: _Scan, i: int) -> int:
    """``${...}``: followed only when its body is simple (then every shell ends it at the first ``}``)."""
    text = scan.text
    end = text.find("}", i + 2)
    if end < 0:
        scan.skip_to(i, len(text), PARAM)
        scan.give_up("an unterminated ${")
        return len(text)
    body = text[i + 2 : end]
    scan.skip_to(i, end, PARAM)
    if MARK in body or not _SIMPLE_PARAM.fullmatch(body):
        scan.give_up("a ${...} holding quotes, nesting or a value")
    scan.closed_at = end
    return end + 1


def _ansi_c(scan: _Scan, i: int) -> int:
    """``$'...'``: bash, ksh and zsh end it at the first unescaped ``'``; dash at the first ``'``."""
    text = scan.text
    j = i + 2
    while j < len(text) and text[j] != "'":
        j += 2 if text[j] == "\\" else 1
    scan.skip_to(i, min(j, len(text)), ANSI_C)
    if j >= len(text) or text.find("'", i + 2) != j:  # dash (no $'...') ends it at the first '
        scan.give_up("a $'...' string with an escaped quote (shells end it differently)")
    return j + 1


def _backquote(scan: _Scan, i: int) -> int:
    """```...```: ends at the first unescaped backquote; quotes inside make the end unspecified."""
    text = scan.text
    j = i + 1
    while j < len(text) and text[j] != "`":
        j += 2 if text[j] == "\\" else 1
    body = text[i + 1 : j]
    scan.skip_to(i, min(j, len(text)), BACKQUOTE)
    if j >= len(text) or any(s in body for s in ("'", '"', "#", "$(", "<<", "\\")):
        scan.give_up("a backquoted command holding quotes, comments or escapes")
    return j + 1


def _heredoc_operator(scan: _Scan, i: int) -> int:
    """``<<WORD`` / ``<<-WORD``: remember the delimiter; the body starts after the next newline."""
    text = scan.text
    j = i + 2
    strip = j < len(text) and text[j] == "-"
    j += strip
    while j < len(text) and text[j] in " \t":
        j += 1
    start = j
    quote = ""
    while j < len(text) and (quote or text[j] not in _WORD_BREAK):
        c = text[j]
        if quote and c == quote:
            quote = ""
        elif not quote and c in "'\"":
            quote = c
        elif c == "\\" and quote != "'":
            j += 1
        j += 1
    word = text[start:j]
    if MARK in word or not word or quote or "$" in word or "`" in word:
        scan.skip_to(start, j, HEREDOC)
        scan.give_up("a heredoc whose delimiter is not plain text")
    scan.heredocs.append((re.sub(r"[\"'\\]", "", word), strip))
    top = scan.stack[-1]
    top.word_start, top.redirect = None, False
    return j


def _end_word(scan: _Scan, frame: _Frame, i: int) -> None:
    """The word that began at ``frame.word_start`` ends before ``i``: record it (quotes removed)."""
    if frame.word_start is None:
        return
    word = re.sub(r"[\"'\\]", "", scan.text[frame.word_start : i])
    frame.word_start = None
    if frame.redirect:
        frame.redirect = False
    else:
        frame.words.append(word)


_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "yash", "posh"})
_INTERPRETERS = {
    **dict.fromkeys(("python", "python2", "python3", "pypy3"), frozenset({"-c"})),
    **dict.fromkeys(("perl", "ruby", "node", "nodejs", "lua"), frozenset({"-e", "-E"})),
    "php": frozenset({"-r"}),
}
_SSH_ARG_OPTIONS = frozenset("BbcDEeFIiJLlmOopQRSWw")


def _nested_code(stack: list[_Frame], quoted: bool) -> str | None:
    """Why a value in the word being read of the innermost command is refused as code that another
    interpreter runs (``sh -c``, ``eval``, ``su -c``, ``ssh host``, ``watch``, ``python -c``), or None."""
    frame = next(f for f in reversed(stack) if f.kind == "cmd")
    words = frame.words
    here = len(words)  # the index of the word the value is in
    for k, word in enumerate(words):
        name = word.rsplit("/", 1)[-1]
        if name in _INTERPRETERS:
            flags = _INTERPRETERS[name]
            if (
                here >= k + 2
                and words[here - 1] in flags
                and all(w.startswith("-") for w in words[k + 1 : here])
            ):
                return (
                    f"inside {name} {words[here - 1]} code, which the shell's quoting cannot protect: "
                    "pass the value as a separate argument (sys.argv, ARGV) instead"
                )
            continue
        if quoted:
            continue
        runner = None
        if name == "eval":
            runner = "eval"
        elif (name in _SHELLS and _shell_code_word(words, k + 1) == here) or (
            name in ("su", "runuser") and here > k + 1 and words[here - 1] in ("-c", "--command")
        ):
            runner = f"{name} -c"
        elif name == "ssh" and here > _first_operand(words, k + 1, _SSH_ARG_OPTIONS):
            runner = "ssh (the remote shell)"
        elif (
            name == "watch" and "-x" not in words[k + 1 : here] and here >= _first_operand(words, k + 1, "n")
        ):
            runner = "watch"
        if runner is not None:
            return (
                f"inside code that {runner} runs, where it would be parsed again: "
                "write {{ ... | quote }} to quote it for that shell too"
            )
    return None


def _shell_code_word(words: list[str], j: int) -> int | None:
    """The index of the command string of ``sh [options] -c [options] STRING``, if ``-c`` is given."""
    seen_c = False
    while j < len(words):
        word = words[j]
        if seen_c and not word.startswith("-"):
            return j
        if not word.startswith(("-", "+")):
            return None  # a script file: the words after it are its arguments, data
        if word in ("-o", "+o", "-O", "+O"):
            j += 2
            continue
        if not word.startswith("--") and "c" in word[1:]:
            seen_c = True
        j += 1
    return j if seen_c else None


def _first_operand(words: list[str], j: int, with_argument: str | frozenset[str]) -> int:
    """The index of the first word after options (``-x``; ``-o value`` for options taking one)."""
    while j < len(words) and words[j].startswith("-"):
        if words[j] == "--":
            return j + 1
        j += 2 if len(words[j]) == 2 and words[j][1] in with_argument else 1
    return j


def _heredoc_bodies(scan: _Scan, i: int) -> int:
    """Skip the bodies of the pending heredocs from ``i``; markers in them are refused."""
    text = scan.text
    for delimiter, strip in scan.heredocs:
        while i < len(text):
            end = text.find("\n", i)
            end = len(text) if end < 0 else end
            line = text[i:end]
            scan.skip_to(i, end, HEREDOC)
            i = end + 1
            if (line.lstrip("\t") if strip else line) == delimiter:
                break
    scan.heredocs.clear()
    return i
