"""Maintenance windows and calendars, capacity pools, rate limits, disruption budgets, admission."""
