"""Workflow files: YAML and JSON in, YAML and JSON out, with every problem at its ``file:line:col``.

YAML is composed into PyYAML's node tree first, which keeps the start mark of every key and item;
walking it gives a map from field path (``tasks[3].depends_on``) to position. Pydantic reports errors
by ``loc`` tuples, which become the same field paths, so each error is shown at the line of the
offending key or value (or of its nearest enclosing one, for a missing key). JSON files use the same
map (JSON is composed by the YAML parser) with ``json`` doing the actual decoding. The positions are
kept on the loaded workflow so later checks (``compile_workflow``) can name lines too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sysflow.errors import Problem, WorkflowError
from sysflow.model.workflow import MaintenanceWorkflow, problems_from_validation

__all__ = ["dump_json", "dump_yaml", "load_file", "load_json", "load_yaml", "yaml_positions"]

_SUFFIXES = (".yaml", ".yml", ".json")


def load_yaml(text_or_path: str | Path) -> MaintenanceWorkflow:
    """A workflow from YAML text or a YAML file; raises WorkflowError listing every problem."""
    text, source = _read(text_or_path)
    data, positions, problems = _compose(text, source)
    return _validate(data, positions, problems, source)


def load_json(text_or_path: str | Path) -> MaintenanceWorkflow:
    """A workflow from JSON text or a JSON file; raises WorkflowError listing every problem."""
    text, source = _read(text_or_path)
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
        return text_or_path, "<string>"
    path = Path(text_or_path)
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
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


def _mark(source: str, mark: yaml.Mark | None) -> str:
    if mark is None:  # pragma: no cover - composed nodes always carry marks
        return f"{source}:1:1"
    return f"{source}:{mark.line + 1}:{mark.column + 1}"


def _compose(text: str, source: str) -> tuple[Any, dict[str, str], list[Problem]]:
    """Data, path -> position map and structural problems (duplicate keys) of a YAML text."""
    loader = yaml.SafeLoader(text)
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
