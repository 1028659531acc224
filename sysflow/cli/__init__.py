"""The ``sysflow`` command line: every command, the progress view and job submission.

Modules: ``root`` (the typer app and the input commands), ``inputs`` (loading workflow + inventory),
``commands`` (run, sim, demo, resume, status, logs, approve, cancel, submit, audit), ``run`` (their
bodies), ``backend`` (``--backend``), ``control`` and ``views`` (status, logs, the failure recap),
``audit``, ``demo``, ``plan``, ``schedule``, ``progress`` and ``jobs`` (Ray job submission).
Commands import what they need lazily so ``--help`` stays fast.
"""

from __future__ import annotations

from sysflow.cli.root import app, main

__all__ = ["app", "main"]
