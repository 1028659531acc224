"""``python -m sysflow``: the same as the ``sysflow`` command."""

from sysflow.cli import main

main()
