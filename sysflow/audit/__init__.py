"""sysflow.audit: the tamper-evident audit log.

``log`` (AuditLog: keyed HMAC-SHA256 chain in SQLite, verify, query, export), ``keys`` (where the
audit key lives and how it is created), ``head`` (the signed head file beside the database),
``observer`` (feeds the log from the engine's events).
"""
