"""Re-planning keeps started work where it is and stays feasible."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sysflow.planner.build import plan
from sysflow.planner.check import check
from sysflow.planner.durations import DurationModel
from sysflow.planner.greedy import greedy
from sysflow.planner.problem import remaining_problem
from sysflow.planner.replan import replan, replan_assignment
from sysflow.planner.solution import score

from .instances import random_problem
from .test_build import MONDAY, brief


@pytest.mark.parametrize("split", [False, True])
@pytest.mark.parametrize("limit", [0.0, 0.5])
def test_replan_assignment_keeps_started_hosts_and_is_feasible(split: bool, limit: float) -> None:
    for seed in range(12):
        p = random_problem(seed, hosts=6, split=split)
        a = greedy(p).assignment
        ends = sorted(a.end(c) for c in p.chains if c.host in a.starts)
        if not ends:
            continue
        now = ends[len(ends) // 2]
        new = replan_assignment(p, a, now, time_limit=limit, num_workers=1)
        assert check(p, new) == []
        assert score(p, new) <= score(p, a)
        for host, starts in a.starts.items():
            if starts[0] < now:
                assert new.starts[host] == starts
            elif host in new.starts:
                assert new.starts[host][0] >= now


def test_remaining_problem_waits_for_fixed_earlier_waves() -> None:
    p = random_problem(3, hosts=6)
    a = greedy(p).assignment
    first_wave = {c.host: a.starts[c.host] for c in p.chains if c.wave == 0 and c.host in a.starts}
    rest = remaining_problem(p, first_wave, 0)
    assert len(rest.background) > 0
    for c in rest.chains:
        fixed_ends = [a.end(p.by_host[h]) + p.gate(0) for h in first_wave if p.by_host[h].stage == c.stage]
        if c.wave > 0 and fixed_ends:
            assert c.release >= max(fixed_ends)


def test_replan_on_wall_clock_times_with_new_durations() -> None:
    inventory, wf = brief()
    before = plan(wf, inventory, start=MONDAY)
    ops = {op.op: op for op in before.ops()}
    done = {k: (o.start, o.end) for k, o in ops.items() if o.host == "web01.example.com"}
    running = {k: o.start for k, o in ops.items() if o.host == "web02.example.com" and o.task == "backup"}
    now = max(o.start for o in ops.values() if o.host == "web02.example.com") - timedelta(seconds=1)
    now = max(now, max(running.values()) + timedelta(seconds=1))
    model = DurationModel()
    for _ in range(10):
        model.observe("upgrade_packages", "db_servers", 900.0)
    after = replan(before, done, running, model, now)
    assert after.solver == "replan-greedy"
    assert check(after.problem, after) == []
    for k, (start, _end) in done.items():
        i = after.problem.by_host["web01.example.com"].ops.index(k)
        assert after.at(after.assignment.starts["web01.example.com"][i]) == start
    db = after.problem.by_host["db01.example.com"]
    assert db.durations[db.tasks.index("upgrade_packages")] >= 500  # clipped updates: robust, not instant
    again = replan(before, done, running, None, now, solver="cpsat", time_limit=0.5, num_workers=1)
    assert check(again.problem, again) == []
