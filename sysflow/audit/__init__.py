"""sysflow.audit: the tamper-evident audit log.

``log`` (AuditLog: append, query, export, verify), ``records`` (a record and the keyed HMAC-SHA256
chain), ``storage`` (the SQLite file: schema, opening, refusing what is not a log), ``verify`` (the
chain against the signed head: the first breach), ``keys`` (where the audit key lives and how it is
created), ``head`` (the signed head file beside the database), ``observer`` (feeds the log from the
engine's events).
"""
