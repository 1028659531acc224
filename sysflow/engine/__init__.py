"""Runs a plan: dispatch, rollout and gates, rollback, windows at run time, run lifecycle."""
