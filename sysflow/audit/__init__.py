"""sysflow.audit."""
