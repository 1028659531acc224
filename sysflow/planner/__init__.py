"""Operation graph, duration model, greedy and CP-SAT schedulers, bounds, forecast, re-planning."""
