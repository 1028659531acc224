"""The ``sysflow`` command line. Commands import what they need lazily so ``--help`` stays fast."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="sysflow",
    help="Agentless fleet maintenance: plan into windows, roll out in waves, verify, roll back.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """sysflow: plan, run and verify maintenance across a fleet over SSH."""


def main() -> None:
    """Entry point of the ``sysflow`` console script."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
