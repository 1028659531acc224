"""One line of remedy for each failure reason, so every failure says what to try next.

Used by the pre-flight table (``sysflow ping``, ``sysflow run``), the run's failure recap and
``sysflow status RUN --failed``. Reasons are read from what is stored (the error text ``Kind:
host: message``, the exit status, stderr), so a run read back from the store gets the same lines.
"""

from __future__ import annotations

import re

__all__ = ["remedy_for"]

EXIT_NOT_EXECUTABLE = 126  # the shell found the command but could not run it
EXIT_NOT_FOUND = 127  # the shell did not find the command
_KEYS_TRIED = re.compile(r"\((keys tried: [^)]*)\)")
_PERMISSION = re.compile(r"permission denied|operation not permitted|must be root|are you root", re.I)
_NOT_FOUND = re.compile(r"command not found|not found$|no such file or directory", re.I | re.M)


def remedy_for(
    error: str | None,
    exit_status: int | None = None,
    stderr: str = "",
    *,
    os_family: str | None = None,
) -> str | None:
    """The remedy for a failure: ``error`` is the stored error text (``AuthenticationFailed: ...``),
    else the command's ``exit_status`` and ``stderr`` tell; None when there is nothing useful to say."""
    if error:
        found = _connection_remedy(error)
        if found is not None:
            return found
    return _command_remedy(exit_status, stderr, os_family)


def _connection_remedy(error: str) -> str | None:
    text = error.lower()
    if "host key unknown" in text or "not in known_hosts" in text:
        return "trust the host's key with --host-keys accept-new (recorded in the audit log), or add it with ssh-keyscan"
    if "host key changed" in text:
        found = re.search(r"ssh-keygen -R \S+ -f \S+", error)
        fix = f"; if the host was reinstalled: {found.group(0)}" if found else ""
        return f"do not accept it blindly: the key changed (possible man-in-the-middle){fix}"
    if "cannot load key" in text:
        return "the key file is not a private key OpenSSH can read, or it is encrypted: give --passphrase-env VAR"
    if "authentication failed" in text or text.startswith("authenticationfailed"):
        tried = _KEYS_TRIED.search(error)
        what = f" ({tried.group(1)})" if tried else ""
        return (
            f"the host refused every credential{what}: pass --key FILE, load the key into"
            " ssh-agent, or add its public key to the user's ~/.ssh/authorized_keys"
        )
    if " free on " in text and ", needs " in text:
        return "free space on that file system (old kernels, apt/yum caches, logs), or lower preflight.disk.min_free"
    if "sudo" in text and ("password" in text or "refused" in text):
        return "give sudo a password with --ask-become-pass (or ansible_become_password), or allow NOPASSWD"
    if "timed out" in text and "connect" in text:
        return "check the host is up and port 22 (or its ansible_port) is reachable from here"
    if "unreachable" in text or "refused" in text or "no route" in text or "resolve" in text:
        return "check the host name/address and that sshd listens on its port (ssh -v HOST)"
    return None


def _command_remedy(exit_status: int | None, stderr: str, os_family: str | None) -> str | None:
    if exit_status == EXIT_NOT_FOUND or (exit_status not in (None, 0) and _NOT_FOUND.search(stderr)):
        where = f"the host is {os_family}: " if os_family else ""
        return f"command not found: {where}check the command's name for this OS, its PATH, or install its package"
    if exit_status == EXIT_NOT_EXECUTABLE or (exit_status not in (None, 0) and _PERMISSION.search(stderr)):
        return "permission denied: run the task as root with become: true (or --become)"
    return None
