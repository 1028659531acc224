"""The ``sysflow`` command line: every command, the progress view and job submission.

Modules: ``app`` (the typer app and the input commands), ``inputs`` (loading workflow + inventory),
``commands`` (run, sim, demo, resume, status, approve, cancel, submit, audit), ``run`` (their bodies),
``control``, ``audit``, ``demo``, ``plan``, ``schedule``, ``progress`` and ``jobs`` (Ray job submission).
Commands import what they need lazily so ``--help`` stays fast.
"""

from __future__ import annotations

from sysflow.cli.app import app, main

__all__ = ["app", "main"]
