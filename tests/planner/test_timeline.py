"""Timelines: adding thousands of intervals at once gives exactly what adding them one by one gives."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sysflow.planner.timeline import Timeline

SPANS = [(0, 100), (200, 260), (500, 501)]


@st.composite
def intervals(draw: st.DrawFn) -> list[tuple[int, int, int]]:
    out = []
    for _ in range(draw(st.integers(0, 40))):
        a, b = draw(st.sampled_from(SPANS))
        start = draw(st.integers(a, b - 1))
        out.append((start, draw(st.integers(0, b - start)), draw(st.integers(-3, 5))))
    return out


@settings(max_examples=100, deadline=None)
@given(intervals())
def test_add_many_equals_adding_one_by_one(items: list[tuple[int, int, int]]) -> None:
    one, many = Timeline(10, SPANS), Timeline(10, SPANS)
    for start, length, amount in items:
        one.add(start, length, amount)
    many.add_many((i[0] for i in items), (i[1] for i in items), (i[2] for i in items))
    for x, y in zip(one._arrays, many._arrays, strict=True):
        assert np.array_equal(x, y)


def test_an_interval_outside_the_spans_is_refused() -> None:
    with pytest.raises(ValueError, match="outside the resource's spans"):
        Timeline(1, SPANS).add_many([90], [20], [1])
