"""The objective a sysadmin plans by: first-window hosts in steps of 1 % of the fleet, then the finish.

A list scheduler fills this window with whoever asks first; a group of long chains that shares a
link with a group of short ones is left a few hosts short and finishes days later, in its next
window. Counting first-window hosts in steps lets the planner move a few short hosts to *their*
next window (which comes sooner) and finish everything days earlier; a slack of 0 keeps the plain
lexicographic order (every first-window host counts).
"""

from __future__ import annotations

from dataclasses import replace

from sysflow.planner.check import check
from sysflow.planner.cpsat import solve_cpsat
from sysflow.planner.greedy import DispatchRule, greedy
from sysflow.planner.problem import Chain, PlanningProblem, Resource, ResourceKind, Use, Window
from sysflow.planner.solution import hosts_done_per_window, score


def _fleet(slack: float) -> PlanningProblem:
    # Two lanes of a shared uplink. 12 app hosts (90 s) may run 0-600, then 2,000-3,000; 12 db hosts
    # (100 s) 0-1,000, then 5,000-6,000. Shortest first: the app hosts take 0-540, the db hosts get
    # 540-1,000 (8 of them) and 4 wait until 5,000.
    def chain(host: str, group: str, seconds: int, windows: tuple[Window, ...]) -> Chain:
        return Chain(
            host, group, None, 0, group, (f"t@{host}",), ("t",), (seconds,), windows, ((Use(0, 1),),)
        )

    app = (Window(0, 600, 600), Window(2000, 3000, 3000))
    db = (Window(0, 1000, 1000), Window(5000, 6000, 6000))
    chains = [chain(f"app{i}", "app", 90, app) for i in range(12)]
    chains += [chain(f"db{i}", "db", 100, db) for i in range(12)]
    return PlanningProblem(
        tuple(chains), (Resource("uplink", ResourceKind.POOL, 2),), first_window_slack=slack
    )


def test_a_few_hosts_move_to_their_next_window_when_that_ends_the_plan_days_sooner() -> None:
    strict, slack = _fleet(0.0), _fleet(0.25)  # 25 % of 24 hosts: steps of 6
    kept = greedy(strict, [DispatchRule.SHORTEST_FIRST])
    assert hosts_done_per_window(strict, kept.assignment) == [20, 4]
    assert kept.score.makespan > 5000  # four db hosts wait for next week's window

    moved = greedy(slack, [DispatchRule.SHORTEST_FIRST])
    done = hosts_done_per_window(slack, moved.assignment)
    assert done[0] >= 20 - slack.first_window_step + 1  # gives up less than one step
    assert moved.score.makespan < 3000  # every db host in its first window; app spill ends by 3,000
    assert all(moved.assignment.end(c) <= 1000 for c in slack.chains if c.group == "db")
    assert check(slack, moved.assignment) == []
    assert moved.score < score(slack, kept.assignment)  # the same plans, ranked by the slack objective


def test_the_default_slack_is_one_percent_of_the_fleet_and_zero_means_every_host_counts() -> None:
    p = _fleet(0.01)
    assert p.first_window_step == 1  # 24 hosts: 1 % is less than one host
    big = replace(p, chains=p.chains * 1, first_window_slack=0.5)
    assert big.first_window_step == 12
    assert _fleet(0.0).first_window_step == 1


def test_cpsat_optimises_the_same_objective() -> None:
    p = _fleet(0.25)
    g = greedy(p, [DispatchRule.SHORTEST_FIRST])
    c = solve_cpsat(p, time_limit=5.0, num_workers=1, random_seed=0, baseline=g)
    assert c.score <= g.score
    assert c.score.makespan < 3000
    assert check(p, c.assignment) == []


def test_deferring_hosts_never_scores_better_than_placing_them_even_when_it_ends_sooner() -> None:
    """Leaving the last hosts out of a plan makes it finish sooner, but they are not done: a plan that
    places every host it can beats it, and CP-SAT does not defer a host that fits."""
    p = _fleet(0.25)
    planned = greedy(p, [DispatchRule.SHORTEST_FIRST])
    full = planned.assignment
    last = max(p.chains, key=full.end)
    cut = replace(
        full,
        starts={h: s for h, s in full.starts.items() if h != last.host},
        deferred={last.host: "left out"},
    )
    assert score(p, cut).makespan < score(p, full).makespan  # sooner...
    assert score(p, full) < score(p, cut)  # ...but one host short: worse
    assert score(p, full).placed == 24 and score(p, cut).placed == 23
    solved = solve_cpsat(p, time_limit=5.0, baseline=replace(planned, assignment=cut, score=score(p, cut)))
    assert not solved.assignment.deferred and check(p, solved.assignment) == []
