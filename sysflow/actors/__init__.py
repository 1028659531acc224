"""Transports (SSH, local), the SSH session pool, the HostPool actor, execution backends."""
