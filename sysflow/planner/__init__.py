"""Operation graph, duration model, greedy and CP-SAT schedulers, bounds, forecast, re-planning.

Stages, each a module (nothing is imported here, so ``import sysflow`` stays light: NumPy, OR-Tools
and matplotlib load only when a schedule, a CP-SAT model or a chart is asked for):

* ``graph`` / ``compile``: the ``OpGraph`` of a workflow over an inventory;
* ``durations``: ``DurationModel`` (per task × group, p50/p90, learned, JSON);
* ``problem``: the solver-neutral ``PlanningProblem`` in integer seconds; ``build`` derives it from
  the graph, the calendar, the limits and the durations, and offers ``plan(workflow, inventory)``;
* ``greedy`` and ``cpsat`` (with ``firstwindow``, its stage for the first level of the objective on
  1,000-host models, and ``decompose`` for very large fleets): the schedulers, returning an
  ``Assignment`` (``solution``) compared by one lexicographic ``score``;
* ``bounds`` (the window-aware lower bound, and an upper bound on first-window hosts) and ``check`` (independent re-verification);
* ``plan`` (``Plan`` and its JSON), ``forecast`` (``Forecast``), ``replan``, ``gantt`` (PNG/HTML);
* ``cli``: what ``sysflow plan`` and ``sysflow forecast`` run.
"""
