"""Tests of the workflow library (sysflow/library/): each workflow run end to end."""
