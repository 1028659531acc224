"""Simulated fleet on a virtual clock: durations, failures, partitions; a transport and a loop."""
