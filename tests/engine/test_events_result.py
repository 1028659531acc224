"""Events reach every observer, a failing observer never breaks the run, results aggregate hosts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sysflow.engine.events import Event, EventBus, EventKind, RecordingObserver
from sysflow.engine.result import HostOutcome, OpRecord, RunResult
from sysflow.engine.states import OpState, RunStatus
from sysflow.errors import RunFailed

T0 = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)


class Exploding:
    def on_event(self, event: Event) -> None:
        raise RuntimeError("notification service down")


def test_a_failing_observer_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    rec = RecordingObserver()
    bus.subscribe(Exploding())
    bus.subscribe(rec)
    bus.emit(Event(EventKind.RUN_STARTED, "r1", T0))
    assert [e.kind for e in rec.events] == [EventKind.RUN_STARTED]
    assert "observer" in caplog.text
    bus.unsubscribe(rec)
    bus.emit(Event(EventKind.RUN_FINISHED, "r1", T0))
    assert len(rec.of(EventKind.RUN_FINISHED)) == 0
    assert Event(EventKind.OP_STARTED, "r1", T0, host="h1").to_dict()["kind"] == "op_started"


def _result(status: RunStatus, hosts: dict[str, HostOutcome]) -> RunResult:
    ops = {
        "t@a": OpRecord("t@a", "a", "t", 0, OpState.SUCCEEDED, start=T0, end=T0.replace(minute=1)),
        "t@b": OpRecord("t@b", "b", "t", 0, OpState.FAILED),
    }
    return RunResult("r1", "wf", status, hosts, ops, T0, T0)


def test_failures_are_values_and_raising_is_opt_in() -> None:
    result = _result(RunStatus.COMPLETED, {"a": HostOutcome.SUCCEEDED, "b": HostOutcome.FAILED})
    assert result.successful_servers == ["a"]
    assert result.failed_servers == result.failed_hosts == ["b"]
    assert result.ops["t@a"].duration == 60.0
    assert result.ops["t@b"].duration is None
    with pytest.raises(RunFailed) as info:
        result.raise_on_error()
    assert info.value.failed_hosts == ("b",)
    assert result.summary()["hosts"] == {"succeeded": 1, "failed": 1}


def test_a_clean_run_returns_itself_from_raise_on_error() -> None:
    result = _result(RunStatus.COMPLETED, {"a": HostOutcome.SUCCEEDED})
    assert result.raise_on_error() is result
    assert [r.op_id for r in result.ops_of("a")] == ["t@a"]
    assert RunStatus.ROLLED_BACK.finished
    assert not RunStatus.PAUSED.finished
    assert OpState.SKIPPED.done
    assert not OpState.UNKNOWN.done


def test_a_results_repr_is_a_summary_not_every_record() -> None:
    result = _result(RunStatus.COMPLETED_WITH_FAILURES, {"a": HostOutcome.SUCCEEDED, "b": HostOutcome.FAILED})
    text = repr(result)
    assert text == (
        "RunResult(run_id='r1', workflow='wf', status=completed_with_failures,"
        " hosts=2 (succeeded 1, failed 1), ops=2)"
    )
    assert "OpRecord" not in text


def test_asyncio_run_of_a_large_result_stays_cheap() -> None:
    """asyncio.run formats its finished main task, result included (CPython gh-112559): a
    10,000-host run's records are not part of that text."""
    import asyncio

    hosts = {f"h{i}": HostOutcome.SUCCEEDED for i in range(10_000)}
    ops = {
        f"t@h{i}": OpRecord(f"t@h{i}", f"h{i}", "t", 0, OpState.SUCCEEDED, stdout="x" * 100)
        for i in range(10_000)
    }
    big = RunResult("r1", "wf", RunStatus.COMPLETED, hosts, ops, T0, T0)

    async def main() -> RunResult:
        return big

    assert asyncio.run(main()) is big
    assert len(repr(big)) < 200
