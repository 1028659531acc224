"""The workflow library: ready, commented workflows and their example inventories, as package data.

``workflows/NAME.yaml`` is a workflow a sysadmin adapts (its header says what it does, the variables
it reads and how to validate and run it); ``inventories/NAME.ini`` is an example inventory it
validates against. ``sysflow init --list`` lists them and ``sysflow init NAME DIR`` writes one into a
directory (:mod:`sysflow.cli.init`). Nothing here is imported by the engine.
"""
