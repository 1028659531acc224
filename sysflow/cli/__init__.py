"""The ``sysflow`` command line: every command, the progress view and job submission.

Modules: ``root`` (the typer app and the input commands), ``inputs`` (loading workflow + inventory,
shared options), ``commands`` (run, sim, demo, resume, status, logs, approve, pause, cancel, submit),
``run`` (their bodies), ``backend`` (``--backend``), ``targeting`` (``--limit``, tags, ``-e``),
``become``, ``preflight`` and ``ping``, ``preview`` (``--check``), ``verbose`` (``-v``), ``exec``
(ad-hoc commands), ``control`` and ``views`` (status, logs, the failure recap), ``remedies``,
``actuals`` and ``timefmt`` (forecast vs actual, zones), ``audit`` (the audit commands), ``lab``,
``demo``, ``plan``, ``gantt_html`` and ``gantt_files``, ``schedule``, ``progress`` and ``jobs``
(Ray job submission).
Commands import what they need lazily so ``--help`` stays fast.
"""

from __future__ import annotations

from sysflow.cli.root import app, main

__all__ = ["app", "main"]
