"""What a person reads about hosts and operations of a run: ``sysflow status RUN``, ``sysflow logs``
and the failure recap of ``sysflow run`` / ``sim``.

Everything here reads operation records (:class:`~sysflow.engine.result.OpRecord`): those of a
finished :class:`~sysflow.engine.result.RunResult`, or those in the run store (``RunStore.ops``),
whose outputs were masked before they were stored. Remote output is shown with terminal control
characters made visible, so a host cannot drive the operator's terminal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sysflow.engine.result import HostOutcome, OpRecord
from sysflow.engine.states import OpState

__all__ = [
    "HostView",
    "failure_recap",
    "host_op_lines",
    "host_table",
    "host_views",
    "log_lines",
    "plural",
    "printable",
    "tail",
    "tidy",
]

TAIL_LINES = 5  # lines of stderr (or stdout) shown under a failed host by run / sim
DETAILED_HOSTS = 20  # failed hosts shown with their output by run / sim; the rest only in the recap
NAMES_PER_GROUP = 10  # host names listed per recap line
LOG_LINES = 50  # lines of each stream `sysflow logs` prints per operation by default
FAILED_OUTCOMES = frozenset({"failed", "rolled_back", "unknown"})

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]")
_PLURAL = re.compile(r"\b(\d+) (host|operation|check)(?:s|\(s\))(?=\W|$)")
_PLURAL_MAYBE = re.compile(r"\b(\d+) (host|operation|check)\(s\)")
_ADDRESS = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b")
_NUMBER = re.compile(r"(\d+)")


def plural(n: int, word: str, words: str | None = None) -> str:
    """``1 host``, ``2 hosts`` (``words`` for an irregular plural)."""
    return f"{n} {word if n == 1 else (words or word + 's')}"


def tidy(text: str) -> str:
    """Engine messages with counts made grammatical: ``1 hosts`` and ``1 host(s)`` → ``1 host``,
    ``3 host(s)`` → ``3 hosts``."""
    text = _PLURAL_MAYBE.sub(lambda m: plural(int(m[1]), m[2]), text)
    return _PLURAL.sub(lambda m: plural(int(m[1]), m[2]), text)


def printable(text: str) -> str:
    """Remote output safe for a terminal: CR LF and lone CR as line breaks, tabs kept, every other
    control character (escape sequences included) shown as ``\\x1b``."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", text)


def tail(text: str, lines: int) -> tuple[list[str], int]:
    """The last ``lines`` lines of ``text`` (all for 0) and how many came before them."""
    found = printable(text).rstrip("\n").split("\n") if text.strip() else []
    if lines <= 0 or len(found) <= lines:
        return found, 0
    return found[-lines:], len(found) - lines


def natural_key(name: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in _NUMBER.split(name)]


# -- hosts ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HostView:
    """One host of a run: its wave (0-based), outcome, the operation that failed and why."""

    host: str
    wave: int
    outcome: str
    task: str = ""
    reason: str = ""
    failed_op: OpRecord | None = None

    @property
    def failed(self) -> bool:
        return self.outcome in FAILED_OUTCOMES

    def to_dict(self) -> dict[str, Any]:
        op = self.failed_op
        return {
            "host": self.host,
            "wave": self.wave + 1,
            "outcome": self.outcome,
            "failed_task": self.task or None,
            "reason": self.reason or None,
            "exit_status": op.exit_status if op is not None else None,
        }


def _failing(records: Sequence[OpRecord]) -> OpRecord | None:
    """The first operation (by start) that failed: failed or unknown, or rolled back after an error."""
    bad = [
        r
        for r in records
        if r.state in (OpState.FAILED, OpState.UNKNOWN)
        or (r.state is OpState.ROLLED_BACK and (r.error or r.exit_status not in (None, 0)))
    ]
    bad.sort(key=lambda r: (r.start is None, r.start or datetime.min))
    return bad[0] if bad else None


def _why(op: OpRecord) -> str:
    if op.error:
        return op.error
    if op.exit_status not in (None, 0):
        return f"exit status {op.exit_status}"
    return op.reason or op.state.value


def _outcome_of(records: Sequence[OpRecord], finished: bool) -> str:
    """A host's outcome from its records (the run store keeps no outcome; the engine's resume reads
    them the same way)."""
    states = {r.state for r in records}
    if OpState.ROLLED_BACK in states:
        return HostOutcome.ROLLED_BACK.value
    if OpState.FAILED in states:
        return HostOutcome.FAILED.value
    if OpState.UNKNOWN in states:
        return "unknown"
    if OpState.RUNNING in states or OpState.QUEUED in states:
        return "running"
    if any(r.state is OpState.SKIPPED and r.reason.endswith("did not succeed") for r in records):
        return HostOutcome.FAILED.value
    if any(r.state is OpState.PENDING and r.reason.startswith("deferred") for r in records):
        return HostOutcome.DEFERRED.value
    if states <= {OpState.SUCCEEDED, OpState.SKIPPED} and OpState.SUCCEEDED in states:
        return HostOutcome.SUCCEEDED.value
    if not any(r.start for r in records):
        return HostOutcome.NOT_STARTED.value if finished else "pending"
    return "incomplete" if finished else "running"


def host_views(
    ops: Mapping[str, OpRecord] | Iterable[OpRecord],
    *,
    outcomes: Mapping[str, HostOutcome] | None = None,
    run_reason: str = "",
    finished: bool = True,
    verification_failed: Iterable[str] = (),
    rolled_back_waves: Container[int] = (),
) -> list[HostView]:
    """One view per host (hooks included), by wave then host name. ``outcomes`` (a RunResult's) win
    over what the records say; without them, a host of ``rolled_back_waves`` on which some command
    ran was rolled back (the store keeps no outcome, and a host whose tasks have no rollback command
    keeps its records as they were)."""
    records = list(ops.values()) if isinstance(ops, Mapping) else list(ops)
    by_host: dict[str, list[OpRecord]] = {}
    for rec in records:
        by_host.setdefault(rec.host, []).append(rec)
    for host in outcomes or {}:
        by_host.setdefault(host, [])
    unverified = set(verification_failed)
    views = []
    for host, recs in by_host.items():
        known = (outcomes or {}).get(host)
        outcome = known.value if known is not None else _outcome_of(recs, finished)
        wave = min((r.wave for r in recs), default=0)
        if known is None and wave in rolled_back_waves and any(r.start for r in recs):
            outcome = HostOutcome.ROLLED_BACK.value
        op = _failing(recs)
        task, reason = (op.task, _why(op)) if op is not None else ("", "")
        if op is None and outcome == "failed":
            blocked = [r.reason for r in recs if r.state is OpState.SKIPPED and r.reason]
            reason = "verification failed" if host in unverified else (blocked[0] if blocked else "")
        elif op is None and outcome == "rolled_back":
            reason = "rolled back with its wave" + (f"; {run_reason}" if run_reason else "")
        elif op is None and outcome in ("not_started", "deferred"):
            reason = next((r.reason for r in recs if r.reason), "")
            if not reason and outcome == "not_started" and run_reason:
                reason = f"the rollout stopped first: {run_reason}"
        views.append(HostView(host, wave, outcome, task, tidy(reason), op))
    views.sort(key=lambda v: (v.wave, natural_key(v.host)))
    return views


def _counts(views: Iterable[HostView]) -> str:
    counts: dict[str, int] = {}
    for v in views:
        counts[v.outcome] = counts.get(v.outcome, 0) + 1
    return ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(counts.items()))


def _aligned(rows: Sequence[Sequence[str]], indent: str = "") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        (indent + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))).rstrip() for row in rows
    ]


def host_table(views: Sequence[HostView], every: Sequence[HostView] | None = None) -> list[str]:
    """Hosts per wave: a heading per wave (its size and outcomes, counted over ``every`` host of the
    run when ``views`` are some of them), then host, wave, outcome, failed task, reason, aligned
    across waves; when ``views`` are some of them (``status --failed``), a remedy line under a host."""
    remedies = every is not None and every is not views
    every = views if every is None else every
    if not views:
        return ["no hosts"]
    header = ("HOST", "WAVE", "OUTCOME", "FAILED TASK", "REASON")
    rows = [header, *((v.host, str(v.wave + 1), v.outcome, v.task or "-", v.reason or "-") for v in views)]
    body = _aligned(rows, "  ")
    lines = [body[0]]
    for i, view in enumerate(views):
        if i == 0 or views[i - 1].wave != view.wave:
            members = [v for v in every if v.wave == view.wave]
            lines.append(f"wave {view.wave + 1}: {plural(len(members), 'host')} ({_counts(members)})")
        lines.append(body[i + 1])
        if remedies:  # status --failed: why, in the host's own words, and what to do
            lines.extend(tail_lines_of(view, "    ", TAIL_LINES))
            lines.extend(remedy_lines(view, "    "))
    return lines


def tail_lines_of(view: HostView, indent: str, count: int) -> list[str]:
    """The last ``count`` lines of a failed host's stderr (its stdout when stderr is empty)."""
    op = view.failed_op
    if op is None:
        return []
    name = "stderr" if op.stderr.strip() else "stdout"
    found, _ = tail(op.stderr if name == "stderr" else op.stdout, count)
    return [f"{indent}{name} | {line}" for line in found]


def remedy_lines(view: HostView, indent: str) -> list[str]:
    """``remedy: ...`` under a failed host whose failure has a known remedy (sysflow.cli.remedies)."""
    from sysflow.cli.remedies import remedy_for

    op = view.failed_op
    if not view.failed or op is None:
        return []
    found = remedy_for(op.error, op.exit_status, op.stderr)
    return [f"{indent}remedy: {found}"] if found else []


def _fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def ordered_ops(records: Iterable[OpRecord], task_order: Sequence[str] = ()) -> list[OpRecord]:
    """Operations in the order they ran (started first, by start), the rest in task order."""
    rank = {t: i for i, t in enumerate(task_order)}
    return sorted(
        records,
        key=lambda r: (r.start is None, r.start or datetime.min, rank.get(r.task, len(rank)), r.task),
    )


def host_op_lines(host: str, records: Sequence[OpRecord]) -> list[str]:
    """One host's operations: task, state, exit, duration, attempts, error (or why it did not run)."""
    if not records:
        return [f"no operations of {host}"]
    rows = [("TASK", "STATE", "EXIT", "DURATION", "ATTEMPTS", "ERROR")]
    for r in records:
        exit_ = "-" if r.exit_status is None else str(r.exit_status)
        why = r.error or r.reason or ("-" if r.exit_status in (None, 0) else f"exit status {r.exit_status}")
        rows.append((r.task, r.state.value, exit_, _fmt_duration(r.duration), str(r.attempts), tidy(why)))
    return _aligned(rows)


def views_json(run: Mapping[str, Any], views: Sequence[HostView]) -> str:
    return json.dumps({"run": dict(run), "hosts": [v.to_dict() for v in views]}, indent=2)


def host_ops_json(run: Mapping[str, Any], host: str, records: Sequence[OpRecord]) -> str:
    ops = [{**r.to_dict(), "duration": r.duration} for r in records]
    return json.dumps({"run": dict(run), "host": host, "ops": ops}, indent=2)


# -- logs -----------------------------------------------------------------------------------------


def _header(r: OpRecord) -> str:
    status = r.state.value if r.exit_status is None else f"{r.state.value}, exit {r.exit_status}"
    return f"== {r.host} {r.task} ({status}) =="


def log_lines(records: Iterable[OpRecord], lines: int = LOG_LINES, keep: int | None = None) -> list[str]:
    """Each operation's stored output under ``== host task (state, exit N) ==``: the command, the
    error, the last ``lines`` lines of stdout and of stderr (all for 0). ``keep``: the store's cap, to
    say when an output was cut there."""
    out: list[str] = []
    for r in records:
        out.append(_header(r))
        if r.command:
            out.append(f"$ {printable(r.command)}")
        if r.error and r.error != f"exit status {r.exit_status}":
            out.append(f"error: {printable(r.error)}")
        shown = False
        for name, text in (("stdout", r.stdout), ("stderr", r.stderr)):
            found, before = tail(text, lines)
            if not found:
                continue
            shown = True
            cut = " (the store keeps the first {keep} characters)" if keep and len(text) >= keep else ""
            out.append(f"-- {name}{cut.format(keep=keep)} --")
            if before:
                out.append(f"... {plural(before, 'earlier line')} not shown (--lines 0 shows all)")
            out.extend(found)
        if not shown:
            out.append("(no output)")
        out.append("")
    return out[:-1] if out else out


# -- the recap of run / sim -----------------------------------------------------------------------


def _group_key(view: HostView) -> str:
    reason = _ADDRESS.sub("<address>", view.reason.replace(view.host, "<host>"))
    return f"{reason} in {view.task}" if view.task else reason


def failure_recap(
    views: Sequence[HostView], *, tail_lines: int = TAIL_LINES, detailed: int = DETAILED_HOSTS
) -> list[str]:
    """Under each failed host (the first ``detailed``) its reason and the last lines of its stderr
    (stdout when stderr is empty); then the failures grouped by reason, largest group first."""
    failed = [v for v in views if v.failed]
    if not failed:
        return []
    lines = [f"  {plural(len(failed), 'failed host')}:"]
    own = [v for v in failed if v.failed_op is not None or v.outcome != "rolled_back"]
    for view in own[:detailed]:
        what = f"{view.task}: {view.reason}" if view.task else view.reason or view.outcome
        lines.append(f"    {view.host} (wave {view.wave + 1}, {view.outcome.replace('_', ' ')}): {what}")
        lines.extend(tail_lines_of(view, "      ", tail_lines))
        lines.extend(remedy_lines(view, "      "))
    if len(own) > detailed:
        lines.append(f"    ... and {plural(len(own) - detailed, 'more host')}")
    groups: dict[str, list[str]] = {}
    for view in failed:
        groups.setdefault(_group_key(view), []).append(view.host)
    lines.append("  recap:")
    for key, hosts in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        names = ", ".join(hosts[:NAMES_PER_GROUP])
        more = f" and {len(hosts) - NAMES_PER_GROUP} more" if len(hosts) > NAMES_PER_GROUP else ""
        lines.append(f"    {plural(len(hosts), 'host')}: {key or 'failed'} \u2014 {names}{more}")
    return lines


# -- times ----------------------------------------------------------------------------------------


def run_times_line(state: Any, run_id: str, tz: str | None = None) -> str:
    """``  times in ZONE: created ..., updated ...`` for a stored run, in ``tz`` or its windows' zone."""
    from sysflow.cli.timefmt import display_zone
    from sysflow.engine.store import RunStore
    from sysflow.model.workflow import MaintenanceWorkflow

    with RunStore(state) as store:
        row = store.run(run_id)
    try:
        workflow: Any = MaintenanceWorkflow.model_validate_json(row.workflow_json)
    except ValueError:  # a stored workflow this version no longer reads: its times still show
        workflow = None
    zone = display_zone(tz, workflow)
    created, updated = datetime.fromisoformat(row.created), datetime.fromisoformat(row.updated)
    return f"  {zone.header()}: created {zone.fmt(created)}, updated {zone.fmt(updated)}"
