"""sysflow.notify."""
