"""``python -m sysflow.cli``: the same as the ``sysflow`` command."""

from sysflow.cli.root import main

main()
