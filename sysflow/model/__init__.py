"""What users write: inventories, workflows, windows, parallelism; loading and validation."""
