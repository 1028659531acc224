"""Probes that capture state, comparators, drift, verification reports and the gate hook."""
