"""The collector during runs: fewer collections while a run prepares and runs, and the process's own
settings back afterwards (also when runs overlap)."""

from __future__ import annotations

import gc

from sysflow.engine.heap import RUN_THRESHOLD, collector_for_runs, freeze_prepared


def test_thresholds_are_raised_for_runs_and_restored_after_the_last() -> None:
    before = gc.get_threshold()
    with collector_for_runs():
        assert gc.get_threshold() == RUN_THRESHOLD
        with collector_for_runs():  # a second run in the same process
            freeze_prepared()
            assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == RUN_THRESHOLD and gc.get_freeze_count() > 0  # the first still runs
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_garbage_made_during_a_run_is_still_collected() -> None:
    class Cycle:
        def __init__(self) -> None:
            self.me = self

    with collector_for_runs():
        freeze_prepared()
        for _ in range(3 * RUN_THRESHOLD[0]):  # cycles only the collector can reclaim
            Cycle()
        alive = sum(isinstance(o, Cycle) for o in gc.get_objects())
        assert alive <= RUN_THRESHOLD[0]  # young collections still ran, without being asked
