"""The targeting options of ``sysflow run`` and ``exec``: ``--limit`` (patterns, ``@FILE``,
``@failed:RUN``), ``--tags``/``--skip-tags``/``--start-at-task``, ``-e`` and ``--forks``.

This module parses what the operator typed; :mod:`sysflow.model.selection` does the narrowing.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sysflow.errors import InventoryError, Problem, WorkflowError

if TYPE_CHECKING:
    from sysflow.model.inventory import Inventory
    from sysflow.model.workflow import MaintenanceWorkflow

__all__ = [
    "ExtraVarsOpt",
    "ForceOpt",
    "ForksOpt",
    "LimitOpt",
    "SkipTagsOpt",
    "StartAtOpt",
    "TagsOpt",
    "Targeting",
    "checked_lines",
    "limit_terms",
    "narrow",
    "parse_extra_vars",
]

FAILED_PREFIX = "@failed:"

LimitOpt = Annotated[
    str | None,
    typer.Option(
        "--limit",
        "-l",
        help="Only these hosts: Ansible patterns ('web*:!web03', 'dc1:&db', a,b), @FILE (one host a "
        "line) or @failed:RUN (the hosts that failed in a stored run). Rollout batches and percentages "
        "apply to the limited set; a task still runs only where its own targets select.",
    ),
]
TagsOpt = Annotated[
    list[str] | None,
    typer.Option("--tags", "-t", help="Only tasks with one of these tags (comma list; repeatable)."),
]
SkipTagsOpt = Annotated[
    list[str] | None,
    typer.Option("--skip-tags", help="Skip tasks with one of these tags (comma list; repeatable)."),
]
StartAtOpt = Annotated[
    str | None,
    typer.Option("--start-at-task", help="Skip the tasks before this one (in dependency order)."),
]
ExtraVarsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--extra-vars",
        "-e",
        help="Variables over the inventory's: KEY=VALUE, @vars.yaml or a JSON/YAML mapping; repeatable.",
    ),
]
ForksOpt = Annotated[
    int | None,
    typer.Option(
        "--forks",
        "--max-parallel",
        help="At most N hosts at once (lowers the workflow's max_parallel_servers; higher needs --force).",
    ),
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Let --forks exceed the workflow's own limit.")]


@dataclass(frozen=True)
class Targeting:
    """What the targeting options asked for (all optional)."""

    limit: str | None = None
    tags: Sequence[str] = ()
    skip_tags: Sequence[str] = ()
    start_at: str | None = None
    extra_vars: Sequence[str] = ()
    forks: int | None = None
    force: bool = False
    store: Path | None = None  # where @failed:RUN is read
    limit_name: str = "--limit"  # how messages name the limit (``exec`` calls it the pattern)
    warnings: list[str] = field(default_factory=list)


def _tag_set(values: Sequence[str]) -> frozenset[str]:
    return frozenset(t.strip() for v in values for t in v.split(",") if t.strip())


def narrow(
    workflow: MaintenanceWorkflow, inventory: Inventory, targeting: Targeting
) -> tuple[MaintenanceWorkflow, Inventory]:
    """Apply every targeting option (before planning); warnings land in ``targeting.warnings``."""
    from sysflow.model import selection

    wf, inv = workflow, inventory
    if targeting.tags or targeting.skip_tags or targeting.start_at is not None:
        tags = selection.TagSelection(
            _tag_set(targeting.tags), _tag_set(targeting.skip_tags), targeting.start_at
        )
        wf = selection.select_tasks(wf, tags)
        targeting.warnings.extend(tags.warnings)
    if targeting.limit is not None:
        hosts = selection.limit_hosts(
            inv, limit_terms(targeting.limit, inv, targeting.store, targeting.limit_name)
        )
        wf = selection.pinned_targets(wf, inv, hosts)
        inv = selection.limited_inventory(inv, hosts)
        wf = _fit_rollout(wf, inv, targeting.warnings)
    if targeting.extra_vars:
        inv = selection.with_extra_vars(inv, parse_extra_vars(targeting.extra_vars))
    if targeting.forks is not None:
        wf = selection.lower_parallelism(wf, targeting.forks, force=targeting.force)
    return wf, inv


def _fit_rollout(
    workflow: MaintenanceWorkflow, inventory: Inventory, warnings: list[str]
) -> MaintenanceWorkflow:
    """Fit approvals and failure counts to the waves and hosts the limit leaves (compiled once
    without them, to count the waves)."""
    from sysflow.model.selection import fit_rollout
    from sysflow.planner.compile import compile_workflow

    rollout = workflow.rollout
    loose: dict[str, Any] = {"approval": []} if isinstance(rollout.approval, list) else {}
    loose |= {k: None if k == "failure_budget" else "100%" for k in ("max_failures", "failure_budget")
              if isinstance(getattr(rollout, k), int)}  # fmt: skip
    if not loose:
        return workflow
    graph = compile_workflow(
        workflow.model_copy(update={"rollout": rollout.model_copy(update=loose)}), inventory
    )
    fitted, notes = fit_rollout(workflow, len(graph.waves), len(graph.hosts))
    warnings.extend(notes)
    return fitted


def checked_lines(source: Path, workflow: MaintenanceWorkflow, inventory: Inventory) -> list[str]:
    """``sysflow validate``'s summary of the narrowed inputs (``run --dry-run`` with targeting)."""
    from sysflow.cli.root import summary_lines
    from sysflow.planner.compile import compile_workflow

    graph = compile_workflow(workflow, inventory)
    return [f"{source}: valid", *(f"  {line}" for line in summary_lines(workflow, graph, inventory))]


def limit_terms(text: str, inventory: Inventory, store: Path | None, name: str = "--limit") -> list[str]:
    """The ``--limit`` text as one pattern's terms, ``@FILE`` and ``@failed:RUN`` replaced by
    their host names; a term that matches no host is an error naming it."""
    from sysflow.model.patterns import split_host_pattern

    terms: list[str] = []
    for term in split_host_pattern(text) if not text.startswith("@") else [text]:
        if term.startswith(FAILED_PREFIX):
            terms.extend(failed_hosts(term[len(FAILED_PREFIX) :], inventory, store, name))
        elif term.startswith("@"):
            terms.extend(_retry_file(Path(term[1:]), name))
        else:
            terms.append(term)
    unmatched = inventory.unmatched(terms)
    if unmatched:
        raise InventoryError([Problem(f"{name} {text!r}: {', '.join(map(repr, unmatched))} matches no host")])
    if not inventory.select(terms):
        raise InventoryError([Problem(f"{name} {text!r} matches no host of the inventory")])
    return terms


def _retry_file(path: Path, name: str) -> list[str]:
    """Host names of a retry file: one a line; blank lines and ``#`` comments ignored."""
    from sysflow.model.loader import read_bounded

    hosts = [ln.strip() for ln in read_bounded(path, "limit file").splitlines()]
    found = [h for h in hosts if h and not h.startswith("#")]
    if not found:
        raise InventoryError([Problem(f"{name} @{path}: the file names no host")])
    return found


def failed_hosts(run_id: str, inventory: Inventory, store: Path | None, name: str = "--limit") -> list[str]:
    """The hosts ``sysflow status RUN --failed`` lists (failed, rolled back, unknown), in the inventory."""
    from sysflow.cli.control import run_status_lines
    from sysflow.engine.store import default_store_path

    state = store if store is not None else default_store_path()
    document = json.loads(run_status_lines(state, run_id, failed=True, as_json=True)[0])
    hosts = [str(h["host"]) for h in document["hosts"] if str(h["host"]) in inventory]
    if not hosts:
        raise InventoryError([Problem(f"{name} @failed:{run_id}: run {run_id} has no failed host")])
    return hosts


def parse_extra_vars(items: Sequence[str]) -> dict[str, Any]:
    """``-e`` values merged left to right: ``@FILE`` (YAML/JSON), a mapping, or ``KEY=VALUE ...``."""
    merged: dict[str, Any] = {}
    for item in items:
        merged.update(_one_extra(item))
    return merged


def _one_extra(item: str) -> dict[str, Any]:
    import yaml

    from sysflow.model.loader import read_bounded

    text = item.strip()
    if text.startswith(("@", "{", "[")):
        source = read_bounded(Path(text[1:]), "vars file") if text.startswith("@") else text
        try:
            return _mapping(yaml.safe_load(source), item)
        except yaml.YAMLError as exc:
            first = str(exc).splitlines()[0]
            raise WorkflowError([Problem(f"-e {item!r}: not a JSON/YAML mapping: {first}")]) from None
    pairs = shlex.split(text)
    bad = [p for p in pairs if "=" not in p or not p.split("=", 1)[0].isidentifier()]
    if bad or not pairs:
        raise WorkflowError([Problem(f"-e {item!r}: expected KEY=VALUE, @FILE or a JSON mapping")])
    return dict(p.split("=", 1) for p in pairs)


def _mapping(value: Any, item: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise WorkflowError([Problem(f"-e {item!r}: extra vars must be a mapping of names to values")])
    return value
