"""Keep the collector off a run's long-lived structures while it prepares and runs.

A run of 10,000 hosts holds millions of long-lived objects (graph, plan, records, chains) for its
whole life, and preparing it allocates them in bulk. CPython's full collections rescan every live
object each time enough young ones survived: a fifth of a simulated 10,000-host run went there,
finding nothing to free. During a run the young generation is collected less often
(:data:`RUN_THRESHOLD`), full collections are rare, and the prepared run is frozen
(``gc.freeze``: moved where no collection scans it). The last run of the process to end puts the
thresholds back and unfreezes.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["RUN_THRESHOLD", "collector_for_runs", "freeze_prepared"]

RUN_THRESHOLD = (10_000, 50, 1_000)  # gc thresholds while a run prepares or runs
_active = 0  # runs preparing or running in this process (they share one collector)
_saved: tuple[int, int, int] = gc.get_threshold()


@contextmanager
def collector_for_runs() -> Iterator[None]:
    """Collect less often inside the block (nested and concurrent blocks: the outermost restores)."""
    global _active, _saved
    if _active == 0:
        _saved = gc.get_threshold()
        gc.set_threshold(*RUN_THRESHOLD)
    _active += 1
    try:
        yield
    finally:
        _active -= 1
        if _active == 0:
            gc.set_threshold(*_saved)
            gc.unfreeze()


def freeze_prepared() -> None:
    """A run is prepared: what exists now lives until it ends, so no collection rescans it."""
    if _active:
        gc.freeze()
