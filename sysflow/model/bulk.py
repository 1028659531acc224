"""Keep the collector quiet while a large inventory is built.

Loading a 60,000-host inventory allocates about a million objects that all live on (YAML nodes while
a file is read, then hosts and their variables): with CPython's default thresholds the young
generations are collected every few hundred allocations and rescan what keeps growing, which took
over half of composing a YAML inventory and finds nothing to free. Inside :func:`bulk_build` the
thresholds are those a run uses (``sysflow.engine.heap.RUN_THRESHOLD``); a block nested in a run, or
in another such block, leaves them as they are, and the thresholds are put back only if nothing else
changed them meanwhile.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["BULK_THRESHOLD", "bulk_build"]

BULK_THRESHOLD = (10_000, 50, 1_000)  # gc thresholds while an inventory is built


@contextmanager
def bulk_build() -> Iterator[None]:
    """Collect less often inside the block (see the module docstring)."""
    before = gc.get_threshold()
    if before[0] >= BULK_THRESHOLD[0]:  # already raised (a run, or an enclosing block)
        yield
        return
    gc.set_threshold(*BULK_THRESHOLD)
    try:
        yield
    finally:
        if gc.get_threshold() == BULK_THRESHOLD:
            gc.set_threshold(*before)
