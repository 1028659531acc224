"""Operations for constraint tests: the planner's real ``Operation`` with test defaults."""

from __future__ import annotations

from sysflow.planner.graph import Operation


def make_op(
    host: str,
    task: str = "patch",
    *,
    groups: tuple[str, ...] = ("web",),
    datacenter: str | None = "dc1",
    segment: str | None = None,
    demands: tuple[tuple[str, float], ...] = (),
) -> Operation:
    return Operation(
        id=f"{task}@{host}",
        host=host,
        task=task,
        wave=0,
        index=0,
        group=groups[0],
        groups=groups,
        datacenter=datacenter,
        segment=segment,
        command="true",
        expected_duration=60.0,
        demands=demands,
    )
