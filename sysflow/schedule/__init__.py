"""Recurring maintenance: schedules that start runs in their windows, once, with history.

* :mod:`~sysflow.schedule.recurrence`: when a schedule fires (cron, n-th weekday window of the month,
  every window), DST-correct through the constraints layer's calendar;
* :mod:`~sysflow.schedule.model`: the schedule spec, missed-run policies, claims and history values;
* :mod:`~sysflow.schedule.schedules`: ``Schedules(store)``, the schedules, claims and history in the run store;
* :mod:`~sysflow.schedule.scheduler`: ``Scheduler(store).run()``, the resident scheduler;
* :mod:`~sysflow.schedule.systemd`: systemd service and timer export;
* :mod:`~sysflow.cli.schedule`: ``sysflow schedule ...`` and ``sysflow scheduler``.

Nothing is imported here, so ``import sysflow.cli.schedule`` (the CLI) stays light.
"""
