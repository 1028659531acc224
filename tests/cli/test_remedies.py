"""Every failure reason gets a one-line remedy; read from what the run store keeps."""

from __future__ import annotations

import pytest

from sysflow.cli.remedies import remedy_for


@pytest.mark.parametrize(
    ("error", "exit_status", "stderr", "expected"),
    [
        (
            "HostKeyUnknown: web1: host key unknown: [a]:22 is not in known_hosts (kh)",
            None,
            "",
            "--host-keys accept-new",
        ),
        (
            "HostKeyMismatch: web1: host key changed ...: ssh-keygen -R '[a]:22' -f kh",
            None,
            "",
            "ssh-keygen -R '[a]:22' -f kh",
        ),
        (
            "AuthenticationFailed: web1: authentication failed (keys tried: /k; no agent)",
            None,
            "",
            "(keys tried: /k; no agent)",
        ),
        (None, 126, "", "become: true"),
        (None, 1, "touch: cannot touch '/root/x': Permission denied", "become: true"),
        (None, 127, "sh: 1: yum: not found", "command not found"),
        ("HostUnreachable: web1: connection refused", None, "", "sshd listens"),
    ],
)
def test_each_reason_has_its_remedy(
    error: str | None, exit_status: int | None, stderr: str, expected: str
) -> None:
    found = remedy_for(error, exit_status, stderr)
    assert found is not None and expected in found
    assert "\n" not in found


def test_command_not_found_names_the_os_family_when_known() -> None:
    found = remedy_for(None, 127, "", os_family="RedHat")
    assert found is not None and "the host is RedHat" in found


def test_nothing_to_say_about_a_plain_failure() -> None:
    assert remedy_for(None, 1, "error: disk quota") is None
    assert remedy_for(None, 0, "") is None
