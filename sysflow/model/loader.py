"""Workflow files: YAML and JSON in, YAML and JSON out, with every problem at its ``file:line:col``.

YAML is composed into PyYAML's node tree first, which keeps the start mark of every key and item;
walking it gives a map from field path (``tasks[3].depends_on``) to position. Pydantic reports errors
by ``loc`` tuples, which become the same field paths, so each error is shown at the line of the
offending key or value (or of its nearest enclosing one, for a missing key). JSON files use the same
map (JSON is composed by the YAML parser) with ``json`` doing the actual decoding. The positions are
kept on the loaded workflow so later checks (``compile_workflow``) can name lines too.

Input is bounded before anything expensive happens, for workflows and (through the same functions)
inventories: a file above :data:`MAX_FILE_BYTES` is refused unread; a file holding a NUL byte or
bytes that are not UTF-8 is refused as binary; YAML whose collections nest deeper than
:data:`MAX_DEPTH`, or whose aliases would add more than :data:`MAX_NODES` nodes once expanded (the
"billion laughs"), or that holds a recursive alias, is refused while its events are read (before a
node tree is built); JSON nesting deeper than :data:`MAX_DEPTH` is refused before it is decoded.
Each refusal is one located problem, raised as :class:`InputRefused`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sysflow.errors import Problem, WorkflowError
from sysflow.model.base import problems_from_validation
from sysflow.model.workflow import MaintenanceWorkflow

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "InputRefused",
    "check_json_depth",
    "check_text",
    "check_yaml_events",
    "dump_json",
    "dump_yaml",
    "load_file",
    "load_json",
    "load_yaml",
    "read_bounded",
    "yaml_positions",
]

_SUFFIXES = (".yaml", ".yml", ".json")
MAX_FILE_BYTES = 10 * 1024 * 1024  # 10 MiB: larger workflow or inventory files are refused unread
MAX_DEPTH = 100  # deepest nesting of YAML/JSON collections accepted
MAX_NODES = 1_000_000  # most nodes aliases may add to a YAML document once expanded
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~15x faster
_JSON_NEXT = re.compile(r'["\[\]{}]')
_JSON_STRING_REST = re.compile(r'(?:[^"\\]|\\.)*+"', re.S)  # possessive: each character read once


class InputRefused(ValueError):
    """Input refused before it is parsed in full (too large, binary, too deep, an alias bomb)."""

    def __init__(self, message: str, where: str) -> None:
        super().__init__(f"{where}: {message}")
        self.problem = Problem(message, where)


def read_bounded(path: Path, what: str = "file") -> str:
    """The UTF-8 text of ``path`` (a leading BOM dropped); :class:`InputRefused` if it is larger than
    :data:`MAX_FILE_BYTES` or binary; ``OSError`` if it cannot be read."""
    size = path.stat().st_size if path.is_file() else 0
    data = b""
    if size <= MAX_FILE_BYTES:  # a regular file's size is known unread; a pipe's is found by reading
        with path.open("rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
        size = max(size, len(data))
    if size > MAX_FILE_BYTES:
        raise InputRefused(
            f"the {what} is {_megabytes(size)}, above the {_megabytes(MAX_FILE_BYTES)} limit", f"{path}:1:1"
        )
    data = data.removeprefix(b"\xef\xbb\xbf")
    nul = data.find(b"\0")
    if nul >= 0:
        raise InputRefused(f"the {what} is binary (a NUL byte), not text", _offset_mark(data, nul, path))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = _offset_mark(data, exc.start, path)
        raise InputRefused(f"the {what} is not UTF-8 text (byte 0x{data[exc.start]:02x})", where) from None


def check_text(text: str, source: str, what: str = "text") -> None:
    """:class:`InputRefused` if ``text`` (given directly, not read from a file) is too large or holds NUL."""
    if len(text) > MAX_FILE_BYTES // 4 and len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise InputRefused(f"the {what} is above the {_megabytes(MAX_FILE_BYTES)} limit", f"{source}:1:1")
    nul = text.find("\0")
    if nul >= 0:
        raise InputRefused(
            f"the {what} is binary (a NUL character), not text", _offset_mark(text, nul, source)
        )


def check_json_depth(text: str, source: str) -> None:
    """:class:`InputRefused` where JSON ``text`` nests deeper than :data:`MAX_DEPTH` (strings skipped)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return
    depth = pos = 0
    while (m := _JSON_NEXT.search(text, pos)) is not None:
        char, pos = m.group(), m.end()
        if char == '"':
            rest = _JSON_STRING_REST.match(text, pos)
            if rest is None:  # an unterminated string: json reports it
                return
            pos = rest.end()
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise InputRefused(_too_deep(), _offset_mark(text, m.start(), source))
        else:
            depth -= 1


def check_yaml_events(loader: Any, source: str) -> None:
    """Read every event of ``loader`` (a fresh PyYAML loader) and refuse, at the offending event,
    nesting past :data:`MAX_DEPTH`, a recursive alias, or aliases adding more than :data:`MAX_NODES`
    nodes once expanded (literal nodes are bounded by the file size).

    No node is built, so this is linear in the text. A YAML syntax error ends the check quietly: the
    composer, reading the same events with the same parser, reports it at the same event.
    """
    sizes: dict[str, int] = {}  # anchor -> expanded size of its node
    added = 0  # nodes that aliases add to the document once expanded
    stack: list[list[Any]] = [[0, None]]  # open collections: [expanded size so far, anchor]
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.CollectionStartEvent):
                if len(stack) > MAX_DEPTH:
                    raise InputRefused(_too_deep(), _mark(source, event.start_mark))
                stack.append([1, event.anchor])
                continue
            if isinstance(event, yaml.CollectionEndEvent):
                size, anchor = stack.pop()
            elif isinstance(event, yaml.ScalarEvent):
                size, anchor = 1, event.anchor
            elif isinstance(event, yaml.AliasEvent):
                if any(open_anchor == event.anchor for _, open_anchor in stack):
                    raise InputRefused(
                        f"recursive alias *{event.anchor} (it refers to a node that holds it)",
                        _mark(source, event.start_mark),
                    )
                size, anchor = sizes.get(str(event.anchor), 1), None
                added += size - 1  # nodes an alias adds beyond itself
                if added > MAX_NODES:
                    raise InputRefused(
                        f"aliases expand this document by more than {MAX_NODES:,} nodes (an alias bomb?)",
                        _mark(source, event.start_mark),
                    )
            else:
                continue
            if anchor is not None:
                sizes[anchor] = size
            stack[-1][0] += size
    except yaml.YAMLError:
        return
    finally:
        loader.dispose()


def _too_deep() -> str:
    return f"collections nest deeper than {MAX_DEPTH} levels"


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


def _offset_mark(data: bytes | str, offset: int, source: str | Path) -> str:
    """``source:line:col`` of a character (or byte) offset."""
    newline = b"\n" if isinstance(data, bytes) else "\n"
    line = data.count(newline, 0, offset)  # type: ignore[arg-type]
    start = data.rfind(newline, 0, offset) + 1  # type: ignore[arg-type]
    return f"{source}:{line + 1}:{offset - start + 1}"


def load_yaml(text_or_path: str | Path) -> MaintenanceWorkflow:
    """A workflow from YAML text or a YAML file; raises WorkflowError listing every problem."""
    text, source = _read(text_or_path)
    data, positions, problems = _compose(text, source)
    return _validate(data, positions, problems, source)


def load_json(text_or_path: str | Path) -> MaintenanceWorkflow:
    """A workflow from JSON text or a JSON file; raises WorkflowError listing every problem."""
    text, source = _read(text_or_path)
    try:
        check_json_depth(text, source)
    except InputRefused as exc:
        raise WorkflowError([exc.problem]) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkflowError(
            [Problem(f"invalid JSON: {exc.msg}", f"{source}:{exc.lineno}:{exc.colno}")]
        ) from None
    try:
        _, positions, problems = _compose(text, source)
    except WorkflowError:  # valid JSON the YAML 1.1 parser cannot read: positions fall back to 1:1
        positions, problems = {"": f"{source}:1:1"}, []
    return _validate(data, positions, problems, source)


def load_file(path: str | Path) -> MaintenanceWorkflow:
    """A workflow from a ``.json`` file (JSON) or any other file (YAML)."""
    if Path(path).suffix.lower() == ".json":
        return load_json(Path(path))
    return load_yaml(Path(path))


def dump_yaml(workflow: MaintenanceWorkflow) -> str:
    """YAML that :func:`load_yaml` reads back into an equal workflow (defaults left out)."""
    return yaml.safe_dump(_plain(workflow), sort_keys=False, allow_unicode=True, width=110)


def dump_json(workflow: MaintenanceWorkflow, *, indent: int | None = 2) -> str:
    """JSON that :func:`load_json` reads back into an equal workflow (defaults left out)."""
    return json.dumps(_plain(workflow), indent=indent, ensure_ascii=False)


def _plain(workflow: MaintenanceWorkflow) -> dict[str, Any]:
    """Defaults left out; windows and probes written back in their short text forms."""
    data = workflow.model_dump(mode="json", exclude_defaults=True)
    windows = data.get("windows", {})
    for group, specs in windows.get("groups", {}).items():
        windows["groups"][group] = [_short(s, "weekly") for s in specs]
    for spec in data.get("verifications", {}).values():
        commands = spec.get("commands", {})
        for name, probe in commands.items():
            commands[name] = _short(probe, "command")
    return data


def _short(value: Any, key: str) -> Any:
    """``{key: text}`` as just ``text`` (the models read both)."""
    return value[key] if isinstance(value, dict) and value.keys() == {key} else value


def _read(text_or_path: str | Path) -> tuple[str, str]:
    """The text and its source name (the path, or ``<string>``)."""
    if isinstance(text_or_path, str) and ("\n" in text_or_path or not _looks_like_path(text_or_path)):
        try:
            check_text(text_or_path, "<string>", "workflow")
        except InputRefused as exc:
            raise WorkflowError([exc.problem]) from None
        return text_or_path, "<string>"
    path = Path(text_or_path)
    try:
        return read_bounded(path, "workflow file"), str(path)
    except InputRefused as exc:
        raise WorkflowError([exc.problem]) from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise WorkflowError([Problem(f"cannot read workflow: {reason}", str(path))]) from None


def _looks_like_path(text: str) -> bool:
    stripped = text.strip()
    if stripped.startswith(("{", "[")):  # one-line JSON (or YAML flow) text, never a file name
        return False
    if stripped.lower().endswith(_SUFFIXES):
        return True
    try:
        return Path(text).is_file()
    except OSError:  # e.g. a name too long to be a path
        return False


def _mark(source: str, mark: Any) -> str:
    if mark is None:  # pragma: no cover - composed nodes always carry marks
        return f"{source}:1:1"
    return f"{source}:{mark.line + 1}:{mark.column + 1}"


def _compose(text: str, source: str) -> tuple[Any, dict[str, str], list[Problem]]:
    """Data, path -> position map and structural problems (duplicate keys) of a YAML text."""
    try:
        check_yaml_events(_Loader(text), source)
    except InputRefused as exc:
        raise WorkflowError([exc.problem]) from None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(str(x) for x in (exc.context, exc.problem) if x)
        raise WorkflowError([Problem(f"invalid YAML: {message}", _mark(source, mark))]) from None
    except yaml.YAMLError as exc:  # pragma: no cover - PyYAML raises marked errors for text input
        raise WorkflowError([Problem(f"invalid YAML: {exc}", f"{source}:1:1")]) from None
    finally:
        loader.dispose()
    if node is None:
        return data, {"": f"{source}:1:1"}, []
    positions, problems = yaml_positions(node, source)
    return data, positions, problems


def yaml_positions(root: yaml.Node, source: str) -> tuple[dict[str, str], list[Problem]]:
    """Field path -> ``file:line:col`` for every key and item under ``root``; duplicate keys found."""
    positions = {"": _mark(source, root.start_mark)}
    problems: list[Problem] = []
    stack: list[tuple[yaml.Node, str]] = [(root, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, str] = {}
            for key_node, value_node in node.value:
                key = str(key_node.value)
                child = f"{path}.{key}" if path else key
                here = _mark(source, key_node.start_mark)
                if key in seen:
                    problems.append(Problem(f"duplicate key {key!r} (first at {seen[key]})", here))
                    continue
                seen[key] = positions[child] = here
                stack.append((value_node, child))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                child = f"{path}[{i}]"
                positions[child] = _mark(source, item.start_mark)
                stack.append((item, child))
    return positions, problems


def _validate(
    data: Any, positions: dict[str, str], problems: list[Problem], source: str
) -> MaintenanceWorkflow:
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        problems.append(
            Problem(f"a workflow must be a mapping of keys to values, this is {kind}", positions[""])
        )
        raise WorkflowError(problems)
    try:
        workflow = MaintenanceWorkflow.model_validate(data)
    except ValidationError as exc:
        problems.extend(_locate(p, positions) for p in problems_from_validation(exc))
    if problems:
        raise WorkflowError(_unique(problems))
    workflow.set_source(source, positions)
    return workflow


def _locate(problem: Problem, positions: dict[str, str]) -> Problem:
    path = problem.location
    probe = path
    while probe and probe not in positions:
        probe = probe[: probe.rindex("[")] if probe.endswith("]") else probe.rpartition(".")[0]
    where = positions.get(probe, positions[""])
    return Problem(f"{path}: {problem.message}" if path else problem.message, where)


def _unique(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))
